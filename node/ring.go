package node

import (
	"context"
	"fmt"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ringledger"
)

// Ring is the node's live view of its Chord ring and its way to the other
// nodes (chord/driver.Driver in the daemon). The driver must hand the
// application MESSAGEs it receives to Node.HandleMessage.
type Ring = ringledger.Ring

// AttachRing gives the node its ring and starts the background work of a
// ring member (anti-entropy, block catch-up); call it once, before serving.
func (n *Node) AttachRing(r Ring) {
	n.ring = r
	n.dist.Attach(r)
}

// Neighbours is the ring as this node sees it, with peers addressed by their
// RPC URLs (ws://host:port, coaps://host:port).
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
	nb := Neighbours{Status: st.Status, RPC: st.Self.Addr, Successors: ringledger.PeerList(st.Succs), Fingers: ringledger.PeerList(st.DistinctFingers())}
	if !st.Pred.IsZero() {
		p := st.Pred
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
	return ringledger.PeerList(ps), err
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
