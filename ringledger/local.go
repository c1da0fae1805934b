package ringledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/store"
)

// putLocal signs readings into this node's branch (a ring of one) and
// returns their receipts once they are durable. Invalid input returns a
// *ledger.InputError and stores nothing.
func (d *Ledger) putLocal(ctx context.Context, readings []ledger.Reading) ([]Receipt, error) {
	if err := d.check(ctx, readings); err != nil {
		return nil, err
	}
	// A ring of one owns every position: the index entries are its own,
	// written with the records.
	own := newOwnIndex(d, func(ledger.Key) bool { return true })
	rs, err := d.ledger.AppendIndexed(ctx, readings, own.index)
	if err != nil {
		return nil, err
	}
	// A resent reading answered with a record stored before gets its
	// entries again (storeIndex keeps what is held).
	if _, items := own.remote(rs); len(items) > 0 {
		hs := make([]historyEntry, len(items))
		for i, it := range items {
			hs[i] = historyEntry{HistoryEntry: store.HistoryEntry{HistoryRef: it.HistoryRef, Value: it.raw}, extremes: it.extremes}
		}
		if err := d.storeIndex(ctx, nil, hs); err != nil {
			return nil, fmt.Errorf("records stored, not their history entries: %w", err)
		}
	}
	d.recorded(rs, d.cfg.Self, []Peer{})
	out := make([]Receipt, len(rs))
	self := d.cfg.Self
	for i, r := range rs {
		out[i] = Receipt{TxID: r.TxID, Key: r.Key, Owner: self, Record: r.Record,
			Block: BlockRef{Branch: r.Block.Branch, No: r.Block.No, Hash: r.Block.Hash}, Replicas: []Peer{}}
	}
	return out, nil
}

// LocalRecord returns a record's stored bytes from this node's store only, checked
// (stored.go): bytes that no longer verify are a *ledger.TamperedError.
func (d *Ledger) LocalRecord(txID ledger.Hash) ([]byte, error) {
	b, err := d.checkedRecord(txID, ledger.Location{})
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	return b, err
}

// localByKey returns the records this node stores under a data key.
func (d *Ledger) localByKey(key ledger.Key, limit int) ([][]byte, error) {
	ids, err := d.store.RecordsByKey(key, limit)
	if err != nil {
		return nil, err
	}
	return d.fetch(ids, ledger.Location{Key: key.String()})
}

// localByThing returns the Thing's records this node stores with from ≤ time < to
// (to 0: no bound), in time order.
func (d *Ledger) localByThing(thing string, from, to int64, limit int) ([][]byte, error) {
	ids, err := d.store.RecordsByThing(thing, from, to, limit)
	if err != nil {
		return nil, err
	}
	return d.fetch(ids, ledger.Location{Thing: thing})
}

// LocalRecordsByThing returns the Thing's records this node stores with from ≤ time
// < to (to 0: no bound), in time order, checked (stored.go): no message is sent.
func (d *Ledger) LocalRecordsByThing(thing string, from, to int64, limit int) ([][]byte, error) {
	return d.localByThing(thing, from, to, limit)
}

// fetch reads the records ids from this node's store, checked; hint is what the
// index they came from knows of them.
func (d *Ledger) fetch(ids [][32]byte, hint ledger.Location) ([][]byte, error) {
	out := make([][]byte, 0, len(ids))
	for _, id := range ids {
		b, err := d.checkedRecord(id, hint)
		if tampered(err) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("index names record %x: %w", id, err)
		}
		out = append(out, b)
	}
	return out, nil
}
