package witness

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/checkpoint"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
	"github.com/flownode/flownode/store"
)

// addBody is the owner's request to a witness: a checkpoint, and the proofs that
// it extends the one the owner believes the witness holds (Old blocks) and that its
// head line names the tree's last leaf.
type addBody struct {
	Checkpoint  string        `json:"checkpoint"`
	Old         uint64        `json:"old"`
	Consistency []ledger.Hash `json:"consistency"`
	HeadProof   []ledger.Hash `json:"headProof"`
}

// addAnswer is the witness's: the checkpoint with its cosignature, or the size it
// holds when that is not Old (the owner proves again from there), as in C2SP
// tlog-witness.
type addAnswer struct {
	Cosigned string  `json:"cosigned,omitempty"`
	Size     *uint64 `json:"size,omitempty"`
}

func storeMeta(name string, v []byte) store.Write {
	return store.Write{Meta: map[string][]byte{name: v}}
}

func (s *Service) publishLoop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, 4*s.cfg.Interval)
		if err := s.Publish(pctx); err != nil && ctx.Err() == nil {
			s.log.Debug("publish checkpoint", zap.Error(err))
		}
		cancel()
	}
}

// witnesses are the node's first k-1 successors: the members that replicate its
// branch.
func (s *Service) witnesses() []node.Peer {
	self := s.n.ID()
	var out []node.Peer
	seen := map[ledger.Key]bool{self: true}
	for _, p := range s.n.Neighbours().Successors {
		if len(out) == s.n.Replicas()-1 {
			break
		}
		if !seen[p.ID] {
			seen[p.ID] = true
			out = append(out, p)
		}
	}
	return out
}

// Publish signs a checkpoint of the branch as it is now, if it grew, and has each
// witness that has not cosigned it yet cosign it.
func (s *Service) Publish(ctx context.Context) error {
	witnesses := s.witnesses()
	if len(witnesses) == 0 {
		return nil // a ring of one: proofs sign a checkpoint when they need one
	}
	own, err := s.current()
	if err != nil || own == nil {
		return err
	}
	var errs []error
	for _, w := range witnesses {
		s.mu.Lock()
		done := s.witnessed[w.ID] == own.Size && cosignedBy(s.own, w.ID)
		s.mu.Unlock()
		if done {
			continue
		}
		if err := s.publishTo(ctx, w, own); err != nil {
			errs = append(errs, fmt.Errorf("witness %s: %w", w.ID.Short(), err))
		}
	}
	return errors.Join(errs...)
}

func cosignedBy(c *checkpoint.Signed, id ledger.Key) bool {
	if c == nil {
		return false
	}
	for _, w := range c.Cosigners {
		if w == id {
			return true
		}
	}
	return false
}

// current is the checkpoint of the branch's tree as it is now, signed anew when the
// branch grew since the last one; nil while the branch has no block.
func (s *Service) current() (*checkpoint.Signed, error) {
	size := s.l.TreeSize()
	s.mu.Lock()
	own := s.own
	s.mu.Unlock()
	if size == 0 || (own != nil && own.Size == size) {
		return own, nil
	}
	c, err := s.sign(size)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.own == nil || s.own.Size < c.Size {
		s.own = c
		if err := s.saveMeta(metaOwn, c.Note); err != nil {
			return nil, err
		}
	}
	return s.own, nil
}

// sign makes this branch's checkpoint of size blocks.
func (s *Service) sign(size uint64) (*checkpoint.Signed, error) {
	id := s.l.Identity()
	root, err := s.l.TreeRoot(size)
	if err != nil {
		return nil, err
	}
	head := s.g.Hash
	if size > 0 {
		raw, err := s.l.Store().Block(id.ID, size)
		if err != nil {
			return nil, err
		}
		b, err := ledger.ParseBlock(raw)
		if err != nil {
			return nil, err
		}
		head = b.Hash
	}
	note, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: checkpoint.Origin(s.g.Hash, id.ID), Size: size, Root: root, Head: head}, id)
	if err != nil {
		return nil, err
	}
	return checkpoint.Open(note, s.g.Hash, s.keys)
}

// publishTo has one witness cosign own, proving consistency from the size it holds.
func (s *Service) publishTo(ctx context.Context, w node.Peer, own *checkpoint.Signed) error {
	s.mu.Lock()
	old := s.witnessed[w.ID]
	s.mu.Unlock()
	for attempt := 0; attempt < 2; attempt++ {
		body, err := s.addBody(own, old)
		if err != nil {
			return err
		}
		var ans addAnswer
		s.stats.Published.Add(1)
		if err := s.call(ctx, w, opAdd, body, &ans); err != nil {
			return err
		}
		if ans.Size != nil {
			if *ans.Size > own.Size {
				s.log.Error("a witness holds a larger checkpoint of this node's branch than the branch: this branch lost blocks it had published (a restored or replaced data dir); its witnesses refuse it",
					zap.Stringer("witness", w.ID), zap.Uint64("witnessSize", *ans.Size), zap.Uint64("size", own.Size))
				return fmt.Errorf("the witness holds %d blocks, the branch has %d", *ans.Size, own.Size)
			}
			old = *ans.Size
			continue
		}
		return s.merge(w, own, []byte(ans.Cosigned))
	}
	return errors.New("the witness's size kept changing")
}

func (s *Service) addBody(own *checkpoint.Signed, old uint64) (addBody, error) {
	cons, err := s.l.BlockConsistency(old, own.Size)
	if err != nil {
		return addBody{}, err
	}
	head, err := s.l.BlockInclusion(own.Size, own.Size)
	if err != nil {
		return addBody{}, err
	}
	return addBody{Checkpoint: string(own.Note), Old: old, Consistency: cons, HeadProof: head}, nil
}

// merge adds a witness's cosignature to the branch's checkpoint.
func (s *Service) merge(w node.Peer, own *checkpoint.Signed, cosigned []byte) error {
	got, err := checkpoint.Open(cosigned, s.g.Hash, s.keys)
	if err != nil {
		return fmt.Errorf("its cosigned checkpoint: %w", err)
	}
	if got.Checkpoint != own.Checkpoint || !cosignedBy(got, w.ID) {
		return errors.New("its answer is not this checkpoint with its cosignature")
	}
	s.stats.Cosigned.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.witnessed[w.ID] = own.Size
	if s.own.Checkpoint != own.Checkpoint {
		return nil // a newer checkpoint replaced it meanwhile
	}
	merged, err := checkpoint.Merge(s.own.Note, cosigned)
	if err != nil {
		return err
	}
	c, err := checkpoint.Open(merged, s.g.Hash, s.keys)
	if err != nil {
		return err
	}
	s.own = c
	return s.saveMeta(metaOwn, c.Note)
}
