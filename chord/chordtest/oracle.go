package chordtest

import (
	"slices"

	"github.com/flownode/flownode/chord"
)

// Oracle is the truth a ring is checked against: the live node IDs in ring
// order.
type Oracle []chord.ID

// NewOracle sorts ids around the ring; ids is not modified.
func NewOracle(ids []chord.ID) Oracle {
	o := slices.Clone(ids)
	slices.SortFunc(o, func(a, b chord.ID) int { return a.Cmp(b) })
	return Oracle(o)
}

// Successor returns successor(k): the first ID at or after k, clockwise
// (the zero ID in an empty ring).
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

// Next returns the k IDs after position i (fewer in a ring of fewer than
// k+1; nil when there are none).
func (o Oracle) Next(i, k int) []chord.ID {
	var out []chord.ID
	for j := 1; j <= k && j < len(o); j++ {
		out = append(out, o[(i+j)%len(o)])
	}
	return out
}

// Prev returns the ID before position i.
func (o Oracle) Prev(i int) chord.ID { return o[(i+len(o)-1)%len(o)] }
