package witness

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/flownode/flownode/checkpoint"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/store"
)

// A witness is one of the branch's replicas, so it usually stores a prefix of the
// branch already: every block up to the newest one its records need (a replica
// takes a block only with its parent). Before it has cosigned any checkpoint of the
// branch, those blocks, each signed by the owner, are what it holds the owner's
// first checkpoint to, instead of taking it on trust.

// maxHeldCheck bounds the blocks read for that check (about 1 KB each): beyond it,
// the first checkpoint is taken on trust, as by a witness that holds none.
const maxHeldCheck = 100_000

// heldTree is the branch tree of the blocks 1..size this node stores.
type heldTree struct {
	size  uint64
	root  ledger.Hash
	block []byte // block size as stored: signed by the owner, the evidence if it is not in the tree
}

// heldTree reads the blocks of branch this node stores, up to at most limit, and
// returns their tree; nil when it stores none (or more than maxHeldCheck).
func (s *Service) heldTree(branch ledger.Key, limit uint64) (*heldTree, error) {
	st := s.l.Store()
	top, _, err := st.Head(branch)
	if errors.Is(err, store.ErrNotFound) || top == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	size := min(top, limit)
	s.heldMu.Lock()
	cached := s.held[branch]
	s.heldMu.Unlock()
	if cached != nil && cached.size == size {
		return cached, nil // a member that keeps sending does not make this node read again
	}
	if size > maxHeldCheck {
		s.log.Info("first checkpoint of a long branch taken on trust", zap.Stringer("branch", branch), zap.Uint64("blocks", size))
		return nil, nil
	}
	leaves := make([]ledger.Hash, 0, size)
	var last []byte
	for next := uint64(1); next <= size; {
		raws, err := st.Blocks(branch, next, int(min(size-next+1, 1000)))
		if err != nil {
			return nil, err
		}
		if len(raws) == 0 {
			return nil, fmt.Errorf("block %d of branch %s is missing below block %d", next, branch.Short(), top)
		}
		for _, raw := range raws {
			b, err := ledger.ParseBlock(raw)
			if err != nil {
				return nil, err
			}
			if b.No != next {
				return nil, fmt.Errorf("block %d of branch %s is missing below block %d", next, branch.Short(), top)
			}
			leaves = append(leaves, ledger.BlockLeaf(b.Hash))
			last = raw
			next++
		}
	}
	h := &heldTree{size: size, root: ledger.MerkleRoot(leaves), block: last}
	s.heldMu.Lock()
	if s.held == nil || len(s.held) >= 1024 {
		s.held = map[ledger.Key]*heldTree{}
	}
	s.held[branch] = h
	s.heldMu.Unlock()
	return h, nil
}

// equivocatedHeld keeps the evidence that the owner's checkpoint does not hold a
// block of its branch this node stores (s.mu held): that block and the
// checkpoint, both signed by the owner.
func (s *Service) equivocatedHeld(held *heldTree, got *checkpoint.Signed, reason string) error {
	b, err := ledger.ParseBlock(held.block)
	if err != nil {
		return err
	}
	first := &checkpoint.Signed{Checkpoint: checkpoint.Checkpoint{Origin: got.Origin, Size: held.size, Root: held.root, Head: b.Hash}}
	first.Note = held.block
	return s.equivocated("fork", first, got, reason)
}

// stored is a block of another branch this node stores.
type stored struct {
	raw  []byte
	hash ledger.Hash
}

// storedBlock is block no of branch as this node stores it, or nil.
func (s *Service) storedBlock(branch ledger.Key, no uint64) *stored {
	raw, err := s.l.Store().Block(branch, no)
	if err != nil {
		return nil
	}
	b, err := ledger.ParseBlock(raw)
	if err != nil || b.CheckSelf() != nil {
		return nil
	}
	return &stored{raw: raw, hash: b.Hash}
}
