package chordsim

import "github.com/flownode/flownode/chord/chordtest"

// oracle returns the truth the invariants compare against: the live node
// IDs in ring order (s.sorted is in ID order already).
func (s *Sim) oracle() chordtest.Oracle {
	var o chordtest.Oracle
	for _, n := range s.sorted {
		if n.alive {
			o = append(o, n.peer.ID)
		}
	}
	return o
}
