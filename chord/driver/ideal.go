package driver

import (
	"fmt"
	"slices"

	"github.com/flownode/flownode/chord"
)

// This file is what node/ring_test.go still uses of the ring checks, which
// have moved to the test-helper package chord/chordtest (which production
// code must not import, and which imports this package). Remove it when
// node's tests use chordtest.

// Oracle is the truth a live ring is checked against: the live node IDs in
// ring order.
//
// Deprecated: use chordtest.Oracle; this copy stays until node's tests move.
type Oracle []chord.ID

// NewOracle sorts ids around the ring.
//
// Deprecated: use chordtest.NewOracle.
func NewOracle(ids []chord.ID) Oracle {
	o := slices.Clone(ids)
	slices.SortFunc(o, func(a, b chord.ID) int { return a.Cmp(b) })
	return Oracle(o)
}

// Successor returns successor(k): the first ID at or after k, clockwise.
func (o Oracle) Successor(k chord.ID) chord.ID {
	if len(o) == 0 {
		return chord.ID{}
	}
	i, _ := slices.BinarySearchFunc(o, k, func(a, b chord.ID) int { return a.Cmp(b) })
	return o[i%len(o)]
}

// Index returns the position of id, or -1.
func (o Oracle) Index(id chord.ID) int {
	i, ok := slices.BinarySearchFunc(o, id, func(a, b chord.ID) int { return a.Cmp(b) })
	if !ok {
		return -1
	}
	return i
}

// Next returns the k IDs after position i (fewer in a ring of fewer than k+1).
func (o Oracle) Next(i, k int) []chord.ID {
	var out []chord.ID
	for j := 1; j <= k && j < len(o); j++ {
		out = append(out, o[(i+j)%len(o)])
	}
	return out
}

// Prev returns the ID before position i.
func (o Oracle) Prev(i int) chord.ID { return o[(i+len(o)-1)%len(o)] }

// IdealErr reports why the ring made of these node states is not Ideal
// (docs/chord.md, invariant 5), or nil: every node a member, its predecessor the
// true previous node, its successor list the true next r nodes.
//
// Deprecated: use chordtest.IdealErr (with chordtest.FromStates), the one
// Ideal check; this copy of it stays until node's tests move.
func IdealErr(states []chord.State) error {
	ids := make([]chord.ID, len(states))
	for i, s := range states {
		ids[i] = s.Self.ID
	}
	o := NewOracle(ids)
	for _, s := range states {
		i := o.Index(s.Self.ID)
		if s.Status != chord.StatusMember.String() {
			return fmt.Errorf("%s is %s", s.Self, s.Status)
		}
		want := o.Next(i, s.R)
		if len(o) == 1 {
			want = []chord.ID{s.Self.ID}
		}
		if got := peerIDs(s.Succs); !slices.Equal(got, want) {
			return fmt.Errorf("%s has successors %v, want %v", s.Self, shorts(got), shorts(want))
		}
		if len(o) > 1 && s.Pred.ID != o.Prev(i) {
			return fmt.Errorf("%s has predecessor %s, want %s", s.Self, s.Pred, o.Prev(i).Short())
		}
	}
	return nil
}

func peerIDs(ps []chord.Peer) []chord.ID {
	var out []chord.ID
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func shorts(ids []chord.ID) []string {
	var out []string
	for _, id := range ids {
		out = append(out, id.Short())
	}
	return out
}
