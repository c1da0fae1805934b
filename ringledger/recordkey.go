package ringledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/store"
)

// RecordKey returns the data key of the record with txID from its txID pointer:
// this node's own, else the pointer owner's (one lookup and one round trip). It
// works when no node holds the record any more, which is when an auditor needs
// it: the key names the nodes that should hold the record.
func (d *Ledger) RecordKey(ctx context.Context, txID ledger.Hash) (ledger.Key, error) {
	if key, err := d.store.Pointer(txID); err == nil {
		return ledger.Key(key), nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return ledger.Key{}, err
	}
	if !d.attached.Load() {
		return ledger.Key{}, ErrNotFound
	}
	p, err := d.owner(ctx, keyOf(txID))
	if err != nil {
		return ledger.Key{}, fmt.Errorf("find the owner of txID %s's pointer: %w", txID, err)
	}
	ans, err := d.getFrom(ctx, p, getBody{TxID: &txID})
	if err != nil {
		return ledger.Key{}, err
	}
	if ans.Pointer != nil {
		return *ans.Pointer, nil
	}
	if raw := d.pickRecord(ctx, p, ans.Records, txID); raw != nil {
		if r, err := ledger.ParseRecord(raw); err == nil {
			return r.Key, nil
		}
	}
	return ledger.Key{}, ErrNotFound
}
