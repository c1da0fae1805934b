package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/flownode/flownode/ledger"
)

// AttachedRecord is one record attached to a block, as this node's store holds
// it: its position and txID from the attachment index, and its bytes when the
// store still holds them (nil when only the index entry is left). Key is the
// data key of a record the store does not hold, when the ring's txID pointer
// still names it: the key names the nodes that should hold the record.
type AttachedRecord struct {
	Seq    uint64
	TxID   ledger.Hash
	Record []byte
	Key    *ledger.Key
}

// BlockRecords lists the records attached to block no of branch (0: those
// attached to genesis), from this node's store only, in position order. The
// owner of a branch holds every record of it; another node holds those it was
// given. Its answer is what an auditor checks the next block's seal against.
func (n *Node) BlockRecords(ctx context.Context, branch ledger.Key, no uint64) ([]AttachedRecord, error) {
	attached, err := n.store.BlockRecords(branch, no)
	if err != nil {
		return nil, err
	}
	out := make([]AttachedRecord, len(attached))
	for i, a := range attached {
		out[i] = AttachedRecord{Seq: a.Seq, TxID: a.TxID}
		raw, err := n.dist.LocalRecord(a.TxID) // checked: altered bytes are never listed
		switch {
		case err == nil:
			out[i].Record = raw // its key is in it
		case errors.Is(err, ErrNotFound):
			// Listed but not held: the ring's pointer still names its key.
			if key, kerr := n.dist.RecordKey(ctx, a.TxID); kerr == nil {
				out[i].Key = &key
			}
		default:
			return nil, fmt.Errorf("record %s attached to block %d of branch %s: %w", ledger.Hash(a.TxID), no, branch, err)
		}
	}
	return out, nil
}
