package ringledger

import (
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/store"
)

// ownIndex writes the index entries of records this node signs that fall in
// its own range — txID pointers and history entries at positions it owns —
// in the same durable write as the records (ledger.AppendIndexed): one sync
// per put instead of two, and no check of records the node has just signed.
// The entries at other nodes' positions are left for the pointer writer.
// On a ring of one every entry is local.
type ownIndex struct {
	d     *Ledger
	local func(ledger.Key) bool

	// Set by index, for the caller once the write is durable: what was
	// written here (to replicate with the records), and which records the
	// write indexed (resent readings answered from the store are not).
	pointers []store.Pointer
	history  []wireHistory
	indexed  map[ledger.Hash]bool
}

func newOwnIndex(d *Ledger, local func(ledger.Key) bool) *ownIndex {
	return &ownIndex{d: d, local: local, indexed: map[ledger.Hash]bool{}}
}

// index is the ledger.IndexFunc: the local pointers and history entries of
// rcs. The extremes positions among them stay locked until the write is over,
// as storeIndex does, so that they never hold more than two entries.
func (o *ownIndex) index(rcs []ledger.Receipt) (store.Write, func(), error) {
	var w store.Write
	atExtremes := map[ledger.Key][]store.HistoryEntry{}
	for _, r := range rcs {
		o.indexed[r.TxID] = true
		if o.local(keyOf(r.TxID)) {
			w.Pointers = append(w.Pointers, store.Pointer{TxID: r.TxID, Key: r.Key})
		}
		for _, it := range historyItems(r.Thing, r.Time, r.TxID, nil) {
			if !o.local(it.Pos) {
				continue
			}
			e := store.HistoryEntry{HistoryRef: it.HistoryRef, Value: r.Record}
			if it.extremes {
				atExtremes[it.Pos] = append(atExtremes[it.Pos], e)
			} else {
				w.History = append(w.History, e) // a new record: its bucket entry is new
			}
		}
	}
	var release func()
	if len(atExtremes) > 0 {
		poss := make([]ledger.Key, 0, len(atExtremes))
		for pos := range atExtremes {
			poss = append(poss, pos)
		}
		release = o.d.extremesLocks.lock(poss)
		put, drop, err := o.d.extremesChanges(atExtremes)
		if err != nil {
			release()
			return store.Write{}, nil, err
		}
		w.History, w.DropHistory = append(w.History, put...), drop
	}
	o.pointers = w.Pointers
	for _, e := range w.History {
		o.history = append(o.history, wireHistory{Pos: e.Pos, Record: e.Value})
	}
	return w, release, nil
}

// remote returns the pointers and history items of rcs that index did not
// write: those of other nodes' positions, and all of a record it did not
// index (a resend answered with a record stored before).
func (o *ownIndex) remote(rcs []ledger.Receipt) ([]store.Pointer, []historyItem) {
	var ps []store.Pointer
	var hs []historyItem
	for _, r := range rcs {
		done := o.indexed[r.TxID]
		if !done || !o.local(keyOf(r.TxID)) {
			ps = append(ps, store.Pointer{TxID: r.TxID, Key: r.Key})
		}
		for _, it := range historyItems(r.Thing, r.Time, r.TxID, r.Record) {
			if !done || !o.local(it.Pos) {
				hs = append(hs, it)
			}
		}
	}
	return ps, hs
}
