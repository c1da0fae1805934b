package node

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
)

// Ring is the node's live view of its Chord ring and its way to the other
// nodes (chord/driver.Driver in the daemon). The driver must hand the
// application MESSAGEs it receives to Node.HandleMessage.
type Ring interface {
	State() chord.State
	Walk(ctx context.Context, limit int) ([]chord.Peer, error)
	// Lookup finds successor(key).
	Lookup(ctx context.Context, key chord.ID) (owner chord.Peer, hops int, err error)
	// Call sends an application MESSAGE and returns its reply's data.
	Call(ctx context.Context, p chord.Peer, data json.RawMessage) (json.RawMessage, error)
	// Leave tells the neighbours this node goes.
	Leave(ctx context.Context) error
}

// AttachRing gives the node its ring and starts the background work of a
// ring member (anti-entropy, block catch-up); call it once, before serving.
func (n *Node) AttachRing(r Ring) {
	n.ring = r
	n.dist.start()
}

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
