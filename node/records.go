package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/store"
)

// ErrNotFound is returned for a record, key or block this node does not hold.
var ErrNotFound = errors.New("not found")

// Receipt is what a client gets once its record is durable.
type Receipt struct {
	TxID     ledger.Hash `json:"txID"`
	Key      ledger.Key  `json:"key"`
	Owner    Peer        `json:"owner"`
	Block    BlockRef    `json:"block"`
	Replicas []Peer      `json:"replicas"`
}

// BlockRef names a block in API answers (numbers, not the signed format's strings).
type BlockRef struct {
	Branch ledger.Key  `json:"branch"`
	No     uint64      `json:"no"`
	Hash   ledger.Hash `json:"hash"`
}

// putLocal signs readings into this node's branch (a node without a ring) and
// returns their receipts once they are durable. Invalid input returns a
// *ledger.InputError and stores nothing.
func (n *Node) putLocal(ctx context.Context, readings []ledger.Reading) ([]Receipt, error) {
	rs, err := n.ledger.Append(ctx, readings)
	if err != nil {
		return nil, err
	}
	out := make([]Receipt, len(rs))
	self := n.Self()
	for i, r := range rs {
		out[i] = Receipt{TxID: r.TxID, Key: r.Key, Owner: self,
			Block: BlockRef{Branch: r.Block.Branch, No: r.Block.No, Hash: r.Block.Hash}, Replicas: []Peer{}}
	}
	return out, nil
}

// LocalRecord returns a record's stored bytes from this node's store only.
func (n *Node) LocalRecord(txID ledger.Hash) ([]byte, error) {
	b, err := n.store.Record(txID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNotFound
	}
	return b, err
}

// localByKey returns the records this node stores under a data key.
func (n *Node) localByKey(key ledger.Key, limit int) ([][]byte, error) {
	ids, err := n.store.RecordsByKey(key, limit)
	if err != nil {
		return nil, err
	}
	return n.fetch(ids)
}

// localByThing returns the Thing's records this node stores with from ≤ time < to
// (to 0: no bound), in time order.
func (n *Node) localByThing(thing string, from, to int64, limit int) ([][]byte, error) {
	ids, err := n.store.RecordsByThing(thing, from, to, limit)
	if err != nil {
		return nil, err
	}
	return n.fetch(ids)
}

func (n *Node) fetch(ids [][32]byte) ([][]byte, error) {
	out := make([][]byte, 0, len(ids))
	for _, id := range ids {
		b, err := n.store.Record(id)
		if err != nil {
			return nil, fmt.Errorf("index names record %x: %w", id, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// Blocks returns up to limit stored blocks of a branch from number from.
func (n *Node) Blocks(branch ledger.Key, from uint64, limit int) ([][]byte, error) {
	return n.store.Blocks(branch, from, limit)
}

// Verify checks the node's whole store (live).
func (n *Node) Verify(ctx context.Context) (*ledger.Report, error) {
	return ledger.Verify(ctx, n.store, n.ledger.Genesis(), ProofCheck(n.ledger.Genesis()), n.id.ID)
}
