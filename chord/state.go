package chord

import (
	"bytes"
	"slices"
)

// State is a read-only snapshot of a node, for invariant checkers and for
// GET /api/v1/node.
type State struct {
	Self    Peer   `json:"self"`
	Status  string `json:"status"`
	Tick    uint64 `json:"tick"`
	R       int    `json:"r"`
	Pred    Peer   `json:"predecessor,omitzero"`
	Succs   []Peer `json:"successors"`
	Fingers []Peer `json:"fingers"` // Bits entries; the zero Peer where unknown
	TTL     []TTL  `json:"ttl"`
	Dead    []ID   `json:"dead,omitempty"` // peers currently known dead
}

// TTL is a neighbour's remaining TTL.
type TTL struct {
	Peer ID  `json:"id"`
	TTL  int `json:"ttl"`
}

// State returns a snapshot of the node.
func (n *Node) State() State {
	st := State{
		Self:    n.self,
		Status:  n.status.String(),
		Tick:    n.now,
		R:       n.r,
		Pred:    n.pred,
		Succs:   clonePeers(n.succ),
		Fingers: n.fingers[:],
	}
	st.Fingers = slices.Clone(st.Fingers)
	for id, t := range n.ttl {
		st.TTL = append(st.TTL, TTL{Peer: id, TTL: t})
	}
	slices.SortFunc(st.TTL, func(a, b TTL) int { return bytes.Compare(a.Peer[:], b.Peer[:]) })
	st.Dead = sortedIDs(n.dead)
	return st
}

// DistinctFingers returns the distinct finger peers in finger order, the
// compact form the HTTP API shows.
func (s State) DistinctFingers() []Peer {
	var out []Peer
	for _, f := range s.Fingers {
		if !f.IsZero() && (len(out) == 0 || out[len(out)-1].ID != f.ID) {
			out = append(out, f)
		}
	}
	return out
}

// Self returns the node's own peer.
func (n *Node) Self() Peer { return n.self }

// Status returns where the node stands.
func (n *Node) Status() Status { return n.status }

// Pred returns the predecessor (the zero Peer if none).
func (n *Node) Pred() Peer { return n.pred }

// Successors returns a copy of the successor list.
func (n *Node) Successors() []Peer { return clonePeers(n.succ) }

// Finger returns finger i (the zero Peer if unknown).
func (n *Node) Finger(i int) Peer {
	if i < 0 || i >= Bits {
		return Peer{}
	}
	return n.fingers[i]
}

// R returns the current successor list length.
func (n *Node) R() int { return n.r }

// Now returns the node's tick count.
func (n *Node) Now() uint64 { return n.now }

// sortedIDs returns the keys of m in numeric order, for deterministic output.
func sortedIDs[V any](m map[ID]V) []ID {
	ids := make([]ID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b ID) int { return a.Cmp(b) })
	return ids
}
