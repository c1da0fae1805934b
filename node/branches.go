package node

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/store"
)

// Branches returns the head block of every branch this node's store holds
// blocks of (its own and those it replicates records of), in byte order of
// the branch ID. Reading it costs one seek per branch, not a scan of the
// blocks, so the dashboard may ask for it every few seconds.
func (n *Node) Branches() ([]BlockRef, error) {
	ids, err := n.store.Branches()
	if err != nil {
		return nil, err
	}
	out := make([]BlockRef, 0, len(ids))
	for _, id := range ids {
		no, raw, err := n.store.Head(id)
		if errors.Is(err, store.ErrNotFound) {
			continue // its blocks went between the two reads
		}
		if err != nil {
			return nil, err
		}
		var head struct {
			Hash ledger.Hash `json:"hash"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return nil, fmt.Errorf("head block %d of branch %x: %w", no, id, err)
		}
		out = append(out, BlockRef{Branch: ledger.Key(id), No: no, Hash: head.Hash})
	}
	return out, nil
}
