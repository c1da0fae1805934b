package chordsim

import (
	"fmt"
	"strings"

	"github.com/flownode/flownode/chord"
)

// Violation is a broken invariant.
type Violation struct {
	Invariant string
	Node      string
	Detail    string
	Step      int
	Time      int64
}

func (v *Violation) Error() string {
	return fmt.Sprintf("%s violated at %s (step %d, t=%d): %s", v.Invariant, v.Node, v.Step, v.Time, v.Detail)
}

// checkSafety checks the safety invariants after a step that touched node t
// (nil for timers and actions, which may touch anyone). Only what the step
// can have changed is rechecked: the lists and store of dirty nodes, and the
// ring when any list changed.
func (s *Sim) checkSafety(t *simNode) *Violation {
	if s.crashStep {
		s.flagStranded()
	}
	ringDirty := s.crashStep
	for _, n := range s.sorted {
		if !n.dirty {
			continue
		}
		n.dirty = false
		ringDirty = true
		if !n.alive || n.core == nil {
			continue
		}
		if v := checkOrdered(n); v != nil {
			return v
		}
		if v := checkPlacement(n); v != nil {
			return v
		}
	}
	if ringDirty {
		return s.checkRing()
	}
	return nil
}

// flagStranded marks nodes whose successor lists hold no live ring member
// right after nodes crashed or left: the failures broke the protocol's
// assumption (fewer than r consecutive failures), so OneLiveSuccessor does not
// count them. A node is unflagged once it has a live successor again.
func (s *Sim) flagStranded() {
	for _, n := range s.members() {
		if !n.flagged && s.bestSucc(n) == nil {
			n.flagged = true
			s.flag("all successors failed at once (outside the assumptions)")
			s.outside, s.outsideAt = true, s.now
		}
	}
}

// bestSucc is Zave's bestSucc: the first entry of n's list that is live and
// in the ring. A lone node is its own.
func (s *Sim) bestSucc(n *simNode) *simNode {
	for _, p := range n.succs() {
		if p.ID == n.peer.ID {
			return n
		}
		if o := s.nodes[p.ID]; o != nil && o.alive && o.inRing() {
			return o
		}
	}
	return nil
}

// checkOrdered is OrderedSuccessorLists: strictly clockwise from the node,
// without the node itself (unless alone) and without duplicates, at most r.
func checkOrdered(n *simNode) *Violation {
	l := n.succs()
	if len(l) == 1 && l[0].ID == n.peer.ID {
		return nil
	}
	if len(l) > n.r() {
		return &Violation{Invariant: "OrderedSuccessorLists", Node: n.name, Detail: fmt.Sprintf("%d entries, r=%d", len(l), n.r())}
	}
	var last chord.ID
	for i, p := range l {
		if p.IsZero() || p.ID == n.peer.ID {
			return &Violation{Invariant: "OrderedSuccessorLists", Node: n.name, Detail: fmt.Sprintf("entry %d is %s", i, p)}
		}
		if i > 0 && !chord.Between(last, p.ID, n.peer.ID) {
			return &Violation{Invariant: "OrderedSuccessorLists", Node: n.name, Detail: fmt.Sprintf("list %s is not strictly clockwise", n.s.names(l))}
		}
		last = p.ID
	}
	return nil
}

// checkPlacement is the first half of Placement: every key a node holds as
// primary lies in (pred, node].
func checkPlacement(n *simNode) *Violation {
	pred := n.pred()
	if pred.IsZero() || !n.inRing() {
		return nil
	}
	for k := range n.store.primary {
		if !chord.BetweenRightIncl(pred.ID, k, n.peer.ID) {
			return &Violation{Invariant: "Placement", Node: n.name,
				Detail: fmt.Sprintf("primary key %s outside its range (%s, %s]", k.Short(), n.s.nameOf(pred.ID), n.name)}
		}
	}
	return nil
}

// checkRing is OneLiveSuccessor and OneOrderedRing: following bestSucc from
// every ring member reaches exactly one cycle, which goes round the ring once
// in ID order; every member reaches it. From a partition until the ring is
// Ideal again neither is counted (see Sim.merging).
func (s *Sim) checkRing() *Violation {
	mem := s.members()
	if len(mem) == 0 {
		return nil
	}
	idx := make(map[*simNode]int, len(mem))
	for i, n := range mem {
		idx[n] = i
	}
	next := make([]int, len(mem))
	anyFlagged := false
	for i, n := range mem {
		next[i] = -1
		b := s.bestSucc(n)
		if b != nil {
			next[i] = idx[b]
			if n.flagged {
				n.flagged = false
			}
			continue
		}
		if n.flagged || s.outside {
			anyFlagged = true
			continue
		}
		return &Violation{Invariant: "OneLiveSuccessor", Node: n.name,
			Detail: fmt.Sprintf("no live ring member in %s", s.names(n.succs()))}
	}
	// Find the cycles of the functional graph i → next[i].
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]int8, len(mem))
	var cycles [][]int
	for i := range mem {
		var path []int
		j := i
		for j >= 0 && state[j] == unseen {
			state[j] = onPath
			path = append(path, j)
			j = next[j]
		}
		if j >= 0 && state[j] == onPath {
			k := len(path) - 1
			for path[k] != j {
				k--
			}
			cycles = append(cycles, append([]int(nil), path[k:]...))
		}
		for _, p := range path {
			state[p] = done
		}
	}
	if s.outside {
		return nil // see Sim.outside
	}
	for _, c := range cycles {
		wraps := 0
		for _, v := range c {
			if !mem[v].peer.ID.Less(mem[next[v]].peer.ID) {
				wraps++
			}
		}
		if wraps != 1 {
			return &Violation{Invariant: "OneOrderedRing", Node: mem[c[0]].name,
				Detail: fmt.Sprintf("cycle %s goes round the ring %d times", s.cycleNames(mem, c), wraps)}
		}
	}
	if anyFlagged {
		return nil
	}
	if len(cycles) != 1 {
		var parts []string
		for _, c := range cycles {
			parts = append(parts, s.cycleNames(mem, c))
		}
		return &Violation{Invariant: "OneOrderedRing", Node: mem[0].name,
			Detail: fmt.Sprintf("%d rings: %s", len(cycles), strings.Join(parts, " and "))}
	}
	return nil
}

func (s *Sim) cycleNames(mem []*simNode, c []int) string {
	var b strings.Builder
	for _, v := range c {
		b.WriteString(mem[v].name)
		b.WriteString("→")
	}
	b.WriteString(mem[c[0]].name)
	return b.String()
}

func (s *Sim) nameOf(id chord.ID) string {
	if id.IsZero() {
		return "none"
	}
	if n := s.nodes[id]; n != nil {
		return n.name
	}
	return id.Short()
}

func (s *Sim) names(ps []chord.Peer) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = s.nameOf(p.ID)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
