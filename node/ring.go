package node

import (
	"context"
	"fmt"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
)

// Ring is the node's live view of its Chord ring (chord/driver.Driver in the
// daemon). The ledger does not depend on it yet: every node still signs the
// readings it receives into its own branch; routing them to their owners is
// the next step.
type Ring interface {
	State() chord.State
	Walk(ctx context.Context, limit int) ([]chord.Peer, error)
}

// AttachRing gives the node its ring; call it before serving.
func (n *Node) AttachRing(r Ring) { n.ring = r }

// Neighbours is the ring as this node sees it, with peers addressed by their
// RPC URLs (ws://host:port, coap://host:port).
type Neighbours struct {
	Status      string
	RPC         string // this node's advertised RPC address
	Predecessor *Peer
	Successors  []Peer
	Fingers     []Peer
}

// Neighbours returns the node's live neighbours; a node without a ring is a
// ring of one.
func (n *Node) Neighbours() Neighbours {
	if n.ring == nil {
		self := n.Self()
		return Neighbours{Status: "member", Predecessor: &self, Successors: []Peer{self}, Fingers: []Peer{}}
	}
	st := n.ring.State()
	nb := Neighbours{Status: st.Status, RPC: st.Self.Addr, Successors: peers(st.Succs), Fingers: peers(st.DistinctFingers())}
	if !st.Pred.IsZero() {
		p := peer(st.Pred)
		nb.Predecessor = &p
	}
	return nb
}

// maxWalk bounds a ring walk: the walk asks every node in turn.
const maxWalk = 1024

// WalkRing lists the ring by successors from this node.
func (n *Node) WalkRing(ctx context.Context) ([]Peer, error) {
	if n.ring == nil {
		return []Peer{n.Self()}, nil
	}
	ps, err := n.ring.Walk(ctx, maxWalk)
	return peers(ps), err
}

// ringReady says why the node is not a ring member yet, or nil.
func (n *Node) ringReady() error {
	if n.ring == nil {
		return nil
	}
	if s := n.ring.State().Status; s != chord.StatusMember.String() {
		return fmt.Errorf("not a ring member yet (%s)", s)
	}
	return nil
}

func peer(p chord.Peer) Peer { return Peer{ID: ledger.Key(p.ID), Addr: p.Addr} }

func peers(ps []chord.Peer) []Peer {
	out := make([]Peer, 0, len(ps))
	for _, p := range ps {
		out = append(out, peer(p))
	}
	return out
}
