package chordsim

import (
	"fmt"
	"strings"

	"github.com/flownode/flownode/chord"
)

// The actions a scenario performs on the network. Each is one step: the
// safety checks run after it.

func (s *Sim) create(n *simNode) {
	s.action("create %s", n.name)
	n.start()
	n.core.Create()
	n.drain()
	s.afterStep(n)
}

func (s *Sim) join(n *simNode, via []*simNode) error {
	if n.alive && n.inRing() {
		return fmt.Errorf("%s is already in a ring", n.name)
	}
	s.action("join %s", n.name)
	if !n.alive {
		n.start()
	}
	var boots []chord.Peer
	for _, v := range via {
		boots = append(boots, v.peer)
	}
	n.remember(boots) // as a real node keeps its --join addresses
	err := n.core.Join(boots...)
	n.drain()
	s.afterStep(n)
	return err
}

func (s *Sim) crash(ns ...*simNode) {
	var names []string
	for _, n := range ns {
		if n.alive {
			n.alive = false
			n.ticking = 0
			n.dirty = true
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return
	}
	s.action("crash %s", strings.Join(names, " "))
	for _, id := range sortedOps(s.ops) {
		if op := s.ops[id]; !op.origin.alive {
			s.endOp(op) // the client died with its node
		}
	}
	s.crashStep = true
	s.excuseLostKeys()
	s.afterStep(nil)
}

// restart runs a crashed node again: same ID and stored keys, fresh protocol
// state; it rejoins through its peer cache.
func (s *Sim) restart(n *simNode) {
	if n.alive || n.left || n.core == nil {
		return
	}
	s.action("restart %s", n.name)
	n.start()
	n.rejoin()
	n.drain()
	s.crashStep = true
	s.afterStep(n)
}

func (s *Sim) leave(ns ...*simNode) {
	for _, n := range ns {
		if !n.alive {
			continue
		}
		s.action("leave %s", n.name)
		n.core.Leave()
		n.drain()
		s.afterStep(n)
	}
}

// partition splits the network; nodes not named are on side 0.
func (s *Sim) partition(sides [][]*simNode) {
	for _, n := range s.sorted {
		n.side = 0
	}
	for i, side := range sides {
		for _, n := range side {
			n.side = i
		}
	}
	s.partitioned = true
	s.outside, s.outsideAt = true, s.now
	s.action("partition")
	s.afterStep(nil)
}

func (s *Sim) heal() {
	if !s.partitioned {
		return
	}
	s.partitioned = false
	s.outsideAt = s.now
	s.action("heal")
	s.afterStep(nil)
}

// write starts a client write of key at origin.
func (s *Sim) write(origin *simNode, key chord.ID) {
	s.startOp(s.newOp(opWrite, origin, key))
	s.afterStep(origin)
}

// describe renders a message for scripts and traces.
func (s *Sim) describe(p packet) string {
	from, to := "?", p.to.name
	if p.from != nil {
		from = p.from.name
	}
	if p.app != nil {
		return fmt.Sprintf("%s→%s app:%s keys=%d", from, to, p.app.kind, len(p.app.keys))
	}
	m := p.msg
	var b strings.Builder
	fmt.Fprintf(&b, "%s→%s %s", from, to, m.Type)
	pl := m.Payload
	switch m.Type {
	case chord.NotifyPredecessor:
		fmt.Fprintf(&b, " pred=%s succs=%s", s.nameOf(pl.Pred.ID), s.names(pl.Succs))
		if !pl.Hint.IsZero() {
			fmt.Fprintf(&b, " hint=%s", s.nameOf(pl.Hint.ID))
		}
	case chord.NotifyEdge:
		fmt.Fprintf(&b, " pred=%s succs=%s", s.nameOf(pl.Pred.ID), s.names(pl.Succs))
	case chord.FindSuccessor:
		fmt.Fprintf(&b, " key=%s", s.keyName(m.Key))
	case chord.FoundSuccessor:
		if pl.Done {
			fmt.Fprintf(&b, " owner=%s", s.nameOf(pl.Owner.ID))
		} else {
			fmt.Fprintf(&b, " next=%s", s.names(pl.Next))
		}
	}
	return b.String()
}

// keyName shows a key as a node name when it is one (or one past it, as join
// lookups are), else as hex.
func (s *Sim) keyName(k chord.ID) string {
	if n := s.nodes[k]; n != nil {
		return n.name
	}
	for _, n := range s.sorted {
		if n.peer.ID.AddPow2(0) == k {
			return n.name + "+1"
		}
	}
	return k.Short()
}
