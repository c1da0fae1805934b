package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"

	"github.com/flownode/flownode/store"
)

// The store's meta entries of incremental verification.
const (
	// metaVerified holds the verifiedState of the last verification that passed.
	metaVerified = "verified"
	// metaCopiesDropped is rewritten by every DropCopies, in the same write as the
	// deletions: Badger may forget a deletion (compaction drops tombstones), not
	// that this entry changed, so an incremental verification that sees it newer
	// than its state knows copies went and verifies everything instead.
	metaCopiesDropped = "copies-dropped"
)

// verifiedFormat is the version of verifiedState's encoding.
const verifiedFormat = 1

// verifiedState is what an incremental verification resumes from: the store version
// of the last verification that passed and what it found there.
type verifiedState struct {
	Format   int           `json:"format"`
	Genesis  Hash          `json:"genesis"`
	Self     Key           `json:"self"`
	At       uint64        `json:"at,string"` // the store version verified
	Records  int           `json:"records"`
	Branches []branchState `json:"branches"`
}

// branchState is one branch as verified: its highest block (0: records attached to
// genesis only) with that block's hash, and its blocks whose seal covers records
// this node does not hold.
type branchState struct {
	Branch  Key      `json:"branch"`
	Top     uint64   `json:"top,string"`
	Hash    Hash     `json:"hash"`
	Partial []uint64 `json:"partial,omitempty"`
}

// loadState reads the remembered state; why says why it cannot be resumed from.
func loadState(st *store.Reader, g *Genesis, self Key) (s *verifiedState, why string, err error) {
	raw, err := st.Meta(metaVerified)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "no verification of this store has passed before", nil
	}
	if err != nil {
		return nil, "", err
	}
	s = &verifiedState{}
	if err := json.Unmarshal(raw, s); err != nil || s.Format != verifiedFormat {
		return nil, "the remembered verification is unreadable", nil
	}
	switch {
	case s.Genesis != g.Hash:
		return nil, "the remembered verification is of another network", nil
	case s.Self != self:
		return nil, "the remembered verification was made for another node", nil
	}
	return s, "", nil
}

// stateOf is the state a passed verification leaves: v's branches at rep's version.
func stateOf(v *verifier, rep *Report, g *Genesis, self Key) *verifiedState {
	s := &verifiedState{Format: verifiedFormat, Genesis: g.Hash, Self: self, At: rep.At, Records: rep.Records}
	branches := map[Key]*branchState{}
	for b, top := range v.tops {
		h, _ := v.heads[blockPos{b, top}]
		branches[b] = &branchState{Branch: b, Top: top, Hash: h}
	}
	for b := range v.recordBranches {
		if _, ok := branches[b]; !ok {
			branches[b] = &branchState{Branch: b, Hash: g.Hash}
		}
	}
	for p := range v.partial {
		if bs, ok := branches[p.branch]; ok {
			bs.Partial = append(bs.Partial, p.no)
		}
	}
	for _, bs := range branches {
		sort.Slice(bs.Partial, func(i, j int) bool { return bs.Partial[i] < bs.Partial[j] })
		s.Branches = append(s.Branches, *bs)
	}
	sort.Slice(s.Branches, func(i, j int) bool { return s.Branches[i].Branch.String() < s.Branches[j].Branch.String() })
	return s
}

// saveState remembers a passed verification.
func saveState(ctx context.Context, st *store.Store, s *verifiedState) error {
	raw, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return st.Write(ctx, store.Write{Meta: map[string][]byte{metaVerified: raw}})
}

// verifyLocks serializes the verifications that remember their result, per store:
// each resumes from what the one before it saved.
var verifyLocks sync.Map // *store.Store → *sync.Mutex

func verifyLock(st *store.Store) *sync.Mutex {
	mu, _ := verifyLocks.LoadOrStore(st, &sync.Mutex{})
	return mu.(*sync.Mutex)
}

// sameState reports whether next says nothing prev does not (but a later version): an
// incremental run that found nothing new need not write, so that an idle node's
// periodic verification does not commit.
func sameState(prev, next *verifiedState) bool {
	if prev == nil || next == nil {
		return false
	}
	moved := *next
	moved.At = prev.At
	a, errA := json.Marshal(prev)
	b, errB := json.Marshal(&moved)
	return errA == nil && errB == nil && bytes.Equal(a, b)
}
