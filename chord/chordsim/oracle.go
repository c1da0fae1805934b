package chordsim

import (
	"slices"

	"github.com/flownode/flownode/chord"
)

// oracle is the truth the invariants compare against: the live node IDs in
// ring order.
type oracle struct{ ids []chord.ID }

func (s *Sim) oracle() oracle {
	var o oracle
	for _, n := range s.sorted {
		if n.alive {
			o.ids = append(o.ids, n.peer.ID)
		}
	}
	return o
}

// successor returns the first live ID at or after k, clockwise.
func (o oracle) successor(k chord.ID) chord.ID {
	if len(o.ids) == 0 {
		return chord.ID{}
	}
	i, _ := slices.BinarySearchFunc(o.ids, k, func(a, b chord.ID) int { return a.Cmp(b) })
	return o.ids[i%len(o.ids)]
}

func (o oracle) index(id chord.ID) int {
	i, ok := slices.BinarySearchFunc(o.ids, id, func(a, b chord.ID) int { return a.Cmp(b) })
	if !ok {
		return -1
	}
	return i
}

// next returns the k live IDs after position i.
func (o oracle) next(i, k int) []chord.ID {
	out := make([]chord.ID, 0, k)
	for j := 1; j <= k && j < len(o.ids); j++ {
		out = append(out, o.ids[(i+j)%len(o.ids)])
	}
	return out
}

func (o oracle) prev(i int) chord.ID { return o.ids[(i+len(o.ids)-1)%len(o.ids)] }
