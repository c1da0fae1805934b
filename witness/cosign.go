package witness

import (
	"context"
	"encoding/json"
	"fmt"

	"go.uber.org/zap"

	"github.com/flownode/flownode/checkpoint"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

// handleAdd is the witness side: it cosigns a branch's new checkpoint once it has
// checked that the checkpoint is its owner's, that its head line is its tree's last
// leaf, and that it extends the one this node cosigned before. A checkpoint that
// does not is kept with that one as evidence.
//
// A witness that holds no checkpoint of a branch yet holds the first one it is
// given to the blocks of the branch it stores as a replica (held.go): the tree must
// hold them. Only a witness that stores none of the branch takes its first
// checkpoint on trust (as every witness of C2SP tlog-witness does). From then on the
// branch can only grow.
func (s *Service) handleAdd(ctx context.Context, from node.Peer, body json.RawMessage) (any, error) {
	var b addBody
	if err := node.DecodeOp(opAdd, body, &b); err != nil {
		return nil, err
	}
	if len(b.Checkpoint) > 16<<10 || len(b.Consistency) > 128 || len(b.HeadProof) > 64 {
		return nil, node.Refuse(node.CodeRefused, "checkpoint or proofs too large")
	}
	raw := []byte(b.Checkpoint)
	c, err := checkpoint.Open(raw, s.g.Hash, s.keys)
	if err != nil {
		s.stats.Refused.Add(1)
		return nil, node.Refuse(node.CodeRefused, "%v", err)
	}
	branch := c.Branch()
	switch {
	case branch != from.ID:
		s.stats.Refused.Add(1)
		return nil, node.Refuse(node.CodeRefused, "a checkpoint of branch %s sent by node %s: only a branch's owner publishes its checkpoints", branch, from.ID)
	case branch == s.n.ID():
		return nil, node.Refuse(node.CodeRefused, "a node does not witness its own branch")
	case c.Size == 0:
		return nil, node.Refuse(node.CodeRefused, "a checkpoint of no blocks")
	}
	if err := ledger.VerifyBlockInclusion(c.Head, c.Size, c.Size, b.HeadProof, c.Root); err != nil {
		s.stats.Refused.Add(1)
		return nil, node.Refuse(node.CodeRefused, "its head line is not the tree's last leaf: %v", err)
	}

	// Before any checkpoint of the branch, the blocks of it this node stores are
	// what it holds the owner to (read outside the lock: it may take a while).
	s.mu.Lock()
	first := s.seen[branch] == nil
	s.mu.Unlock()
	var held *heldTree
	if first {
		if held, err = s.heldTree(branch, c.Size); err != nil {
			return nil, node.Refuse(node.CodeUnavailable, "read the blocks of the branch this node holds: %v", err)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.evidence[branch]; e != nil {
		s.stats.Refused.Add(1)
		return nil, node.Refuse(node.CodeRefused, "branch %s equivocated (%s at %s): this node cosigns none of its checkpoints", branch, e.Kind, e.Detected.Format("2006-01-02T15:04:05Z07:00"))
	}
	if have := s.seen[branch]; have != nil {
		switch {
		case c.Size < have.Size:
			// An older checkpoint that arrives late (a request that timed out on
			// the way) is no evidence: it may well be a prefix of the newer one.
			// It is when its head is not the owner's block at that number, which
			// this node stores as a replica; else the owner is asked for a tree
			// at least as large, which an owner whose branch lost blocks cannot give.
			if blk := s.storedBlock(branch, c.Size); blk != nil && blk.hash != c.Head {
				return nil, s.equivocatedHeld(&heldTree{size: c.Size, block: blk.raw}, c,
					fmt.Sprintf("its checkpoint of %d blocks ends at %s; block %d of the branch, which this node stores and the owner signed, is %s (it had cosigned %d blocks)",
						c.Size, c.Head.String()[:16], c.Size, blk.hash.String()[:16], have.Size))
			}
			size := have.Size
			return addAnswer{Size: &size}, nil
		case c.Size == have.Size && c.Checkpoint != have.Checkpoint:
			return nil, s.equivocated("fork", have, c, fmt.Sprintf("two different trees of %d blocks", c.Size))
		case c.Size > have.Size && b.Old != have.Size:
			size := have.Size
			return addAnswer{Size: &size}, nil
		case c.Size > have.Size:
			if err := ledger.VerifyConsistency(have.Size, c.Size, b.Consistency, have.Root, c.Root); err != nil {
				return nil, s.equivocated("fork", have, c, fmt.Sprintf("the tree of %d blocks does not extend the one of %d: %v", c.Size, have.Size, err))
			}
		}
	} else if held != nil {
		switch {
		case held.size < c.Size && b.Old != held.size:
			size := held.size
			return addAnswer{Size: &size}, nil
		case held.size == c.Size && held.root != c.Root,
			held.size < c.Size && ledger.VerifyConsistency(held.size, c.Size, b.Consistency, held.root, c.Root) != nil:
			return nil, s.equivocatedHeld(held, c, fmt.Sprintf("its checkpoint of %d blocks does not hold blocks 1..%d of the branch, which this node stores", c.Size, held.size))
		}
	}
	cosigned, err := checkpoint.Cosign(raw, s.l.Identity(), s.g.Hash, s.cfg.Now)
	if err != nil {
		return nil, err
	}
	kept, err := checkpoint.Open(cosigned, s.g.Hash, s.keys)
	if err != nil {
		return nil, err
	}
	if err := s.saveMeta(metaSeen+branch.String(), cosigned); err != nil {
		return nil, node.Refuse(node.CodeUnavailable, "keep the checkpoint: %v", err)
	}
	s.seen[branch] = kept
	s.stats.CosignedOther.Add(1)
	return addAnswer{Cosigned: string(cosigned)}, nil
}

// equivocated keeps the evidence (s.mu held), refuses the branch's new blocks from
// now on, and raises the alert; it returns the refusal for the owner.
func (s *Service) equivocated(kind string, have, got *checkpoint.Signed, reason string) error {
	branch := have.Branch()
	e := &Evidence{Branch: branch, Kind: kind, First: string(have.Note), Second: string(got.Note), Reason: reason,
		Detected: s.cfg.Now().UTC(), FirstHead: have.Head, SecondHead: got.Head}
	b, err := json.Marshal(e)
	if err == nil {
		err = s.saveMeta(metaEvidence+branch.String(), b)
	}
	if err != nil {
		s.log.Error("keep the evidence of an equivocation", zap.Stringer("branch", branch), zap.Error(err))
	}
	s.evidence[branch] = e
	s.stats.Equivocations.Add(1)
	s.l.RefuseBranch(branch, "its owner equivocated: "+reason)
	s.log.Error("ALERT equivocation: a branch's owner signed two checkpoints that do not extend each other; its new blocks are refused",
		zap.Stringer("branch", branch), zap.String("kind", kind), zap.String("reason", reason),
		zap.Stringer("firstHead", have.Head), zap.Uint64("firstSize", have.Size),
		zap.Stringer("secondHead", got.Head), zap.Uint64("secondSize", got.Size))
	return node.Refuse(node.CodeRefused, "equivocation (%s): %s; this node keeps both checkpoints as evidence and refuses the branch", kind, reason)
}
