package witness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/flownode/flownode/checkpoint"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

type proofBody struct {
	TxID ledger.Hash `json:"txID"`
}

// proofAnswer is the owner's: the proof, or why there is none yet.
type proofAnswer struct {
	Proof     *checkpoint.Proof `json:"proof,omitempty"`
	NotSealed string            `json:"notSealed,omitempty"`
}

// NotSealedError is a record its branch has not sealed (or checkpointed) yet.
type NotSealedError struct{ Reason string }

func (e *NotSealedError) Error() string { return e.Reason }

// ErrNoOwner is a record whose branch's owner is not in the ring now: only the
// owner holds every record its seals cover, so only it can build the path.
var ErrNoOwner = errNoOwner

// Proof returns the inclusion proof of record txID: built here for a record of this
// node's branch, asked of the branch's owner otherwise, and checked here, as an
// auditor will check it, before it is handed out.
func (s *Service) Proof(ctx context.Context, txID ledger.Hash) (*checkpoint.Proof, error) {
	raw, err := s.n.Record(ctx, txID)
	if err != nil {
		return nil, err
	}
	rec, err := ledger.ParseRecord(raw)
	if err != nil {
		return nil, err
	}
	return s.proofOf(ctx, rec, raw)
}

func (s *Service) proofOf(ctx context.Context, rec *ledger.Record, raw []byte) (*checkpoint.Proof, error) {
	txID := rec.TxID
	branch := rec.Block.Branch
	var err error
	var p *checkpoint.Proof
	if branch == s.n.ID() {
		if p, err = s.build(rec, raw); err != nil {
			return nil, err
		}
	} else {
		owner, err := s.owner(ctx, branch)
		if err != nil {
			return nil, err
		}
		var ans proofAnswer
		if err := s.call(ctx, owner, opProof, proofBody{TxID: txID}, &ans); err != nil {
			return nil, fmt.Errorf("ask the branch's owner %s: %w", owner.ID.Short(), err)
		}
		if ans.NotSealed != "" {
			return nil, &NotSealedError{Reason: ans.NotSealed}
		}
		if ans.Proof == nil {
			return nil, fmt.Errorf("the branch's owner %s answered no proof", owner.ID.Short())
		}
		p = ans.Proof
	}
	v, err := p.Verify(s.n.Members().Description())
	if err != nil {
		return nil, fmt.Errorf("the proof of branch %s's owner does not verify: %w", branch.Short(), err)
	}
	if v.Record.TxID != txID {
		return nil, fmt.Errorf("the branch's owner proved record %s, not %s", v.Record.TxID, txID)
	}
	return p, nil
}

func (s *Service) owner(ctx context.Context, branch ledger.Key) (node.Peer, error) {
	peers, err := s.n.RingMembers(ctx)
	if err != nil {
		return node.Peer{}, err
	}
	for _, p := range peers {
		if p.ID == branch {
			return p, nil
		}
	}
	return node.Peer{}, fmt.Errorf("branch %s: %w", branch.Short(), errNoOwner)
}

// handleProof builds the proof of a record of this node's branch for a peer.
func (s *Service) handleProof(ctx context.Context, from node.Peer, body json.RawMessage) (any, error) {
	var b proofBody
	if err := node.DecodeOp(opProof, body, &b); err != nil {
		return nil, err
	}
	raw, err := s.n.LocalRecord(b.TxID)
	if err != nil {
		return nil, node.Refuse(node.CodeRefused, "record %s: %v", b.TxID, err)
	}
	rec, err := ledger.ParseRecord(raw)
	if err != nil {
		return nil, err
	}
	if rec.Block.Branch != s.n.ID() {
		return nil, node.Refuse(node.CodeRefused, "record %s is of branch %s, not this node's", b.TxID, rec.Block.Branch)
	}
	p, err := s.build(rec, raw)
	var ns *NotSealedError
	if errors.As(err, &ns) {
		return proofAnswer{NotSealed: ns.Reason}, nil
	}
	if errors.Is(err, errBusy) {
		return nil, node.Refuse(node.CodeUnavailable, "%v", err)
	}
	if err != nil {
		return nil, err
	}
	return proofAnswer{Proof: p}, nil
}

// errBusy is a proof not built because as many are being built as the node allows.
var errBusy = errors.New("this node is building as many proofs as it allows; ask again")

// build makes the proof of a record of this node's branch, waiting at most a
// second for a turn.
func (s *Service) build(rec *ledger.Record, raw []byte) (*checkpoint.Proof, error) {
	select {
	case s.building <- struct{}{}:
		defer func() { <-s.building }()
	case <-time.After(time.Second):
		return nil, errBusy
	}
	self := s.n.ID()
	st := s.l.Store()
	no := rec.Block.No + 1 // the block that seals it
	if s.l.TreeSize() < no {
		return nil, &NotSealedError{Reason: fmt.Sprintf("record %s is not sealed yet: block %d of branch %s will seal it, expected within %s",
			rec.TxID, no, self, 2*s.g.Mining.MeanBlockTime)}
	}
	blockRaw, err := st.Block(self, no)
	if err != nil {
		return nil, err
	}
	blk, err := ledger.ParseBlock(blockRaw)
	if err != nil {
		return nil, err
	}
	attached, err := st.BlockRecords(self, rec.Block.No)
	if err != nil {
		return nil, err
	}
	sort.Slice(attached, func(i, j int) bool { return attached[i].Seq < attached[j].Seq })
	leaves := make([]ledger.Hash, len(attached))
	index := -1
	for i, a := range attached {
		b, err := st.Record(a.TxID)
		if err != nil {
			return nil, fmt.Errorf("record %x of block %d: %w", a.TxID, rec.Block.No, err)
		}
		leaves[i] = ledger.LeafHash(b)
		if ledger.Hash(a.TxID) == rec.TxID {
			index = i
		}
	}
	if index < 0 || uint64(len(leaves)) != blk.Sealed {
		return nil, fmt.Errorf("block %d seals %d records, this node holds %d of block %d (the record among them: %v)", no, blk.Sealed, len(leaves), rec.Block.No, index >= 0)
	}
	path, err := ledger.RecordInclusion(leaves, uint64(index))
	if err != nil {
		return nil, err
	}
	cp := s.Own()
	if cp == nil || cp.Size < no {
		// Newer than the last checkpoint: sign one that covers it; its witnesses
		// cosign it at the next round.
		if cp, err = s.current(); err != nil {
			return nil, err
		}
		if cp == nil || cp.Size < no {
			return nil, &NotSealedError{Reason: fmt.Sprintf("record %s is sealed by block %d, which no checkpoint covers yet", rec.TxID, no)}
		}
	}
	blockPath, err := s.l.BlockInclusion(no, cp.Size)
	if err != nil {
		return nil, err
	}
	var members [][]byte
	for _, id := range append([]ledger.Key{self}, cp.Cosigners...) {
		if m, ok := s.n.Members().Membership(id); ok {
			members = append(members, m.DER())
		}
	}
	return &checkpoint.Proof{
		Record:     raw,
		Proof:      checkpoint.Path{Index: uint64(index), Size: blk.Sealed, Path: path},
		Block:      blockRaw,
		BlockProof: checkpoint.Path{Index: no - 1, Size: cp.Size, Path: blockPath},
		Checkpoint: string(cp.Note),
		Members:    members,
	}, nil
}
