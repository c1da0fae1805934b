package chordsim

import (
	"fmt"
	"math"
	"strings"
)

// Manual-mode commands: build a ring, run one protocol operation on one node,
// deliver or drop chosen messages, and print what the nodes hold. They let a
// script replay an exact order of join, stabilize, notify and fail.

// cmdBuild makes a ring through the protocol itself: the first node creates
// it, the others join through it one by one, then the ring settles to Ideal
// with correct fingers. "build n=K" names the nodes n1..nK.
func (s *Sim) cmdBuild(c Cmd) (string, error) {
	names := c.Args
	if k, err := intArg(c, "n", 0); err != nil {
		return "", err
	} else if k > 0 {
		prefix := c.KV["prefix"]
		if prefix == "" {
			prefix = "n"
		}
		for i := 1; i <= k; i++ {
			names = append(names, fmt.Sprintf("%s%d", prefix, i))
		}
	}
	if len(names) == 0 {
		return "", fmt.Errorf("build: name the nodes or give n=K")
	}
	first := s.node(names[0])
	s.create(first)
	for _, name := range names[1:] {
		if err := s.join(s.node(name), []*simNode{first}); err != nil {
			return "", err
		}
		if !s.auto {
			s.deliverAll()
		}
	}
	ok := func() error {
		if err := s.idealErr(); err != nil {
			return err
		}
		return s.fingersErr()
	}
	limit := 20*len(names) + 200
	if s.auto {
		if !s.runUntilOK(ok, limit) {
			s.fail("Ideal", fmt.Sprintf("build: ring did not settle: %v", ok()))
			return "", nil
		}
	} else {
		for r := 0; ok() != nil; r++ {
			if s.violation != nil {
				return "", nil
			}
			if r > limit {
				s.fail("Ideal", fmt.Sprintf("build: ring did not settle: %v", ok()))
				return "", nil
			}
			for _, n := range s.live() {
				n.core.Tick()
				n.drain()
				s.afterStep(n)
			}
			s.deliverAll()
		}
	}
	if _, ok := c.KV["n"]; ok {
		return "", nil
	}
	return s.ringWalk(), nil
}

func (s *Sim) cmdJoin(c Cmd) error {
	via := s.nodesNamed([]string{c.KV["via"]})
	if len(via) == 0 {
		return fmt.Errorf("join: via=NODE names no node")
	}
	for _, a := range c.Args {
		if err := s.join(s.node(a), via); err != nil {
			return err
		}
	}
	return nil
}

// cmdStep runs one protocol operation on the named nodes (all live nodes if
// none is named), without delivering anything.
func (s *Sim) cmdStep(c Cmd) error {
	ns := s.nodesNamed(c.Args)
	if len(c.Args) == 0 {
		ns = s.live()
	}
	for _, n := range ns {
		if !n.alive {
			return fmt.Errorf("%s: %s is not running", c.Name, n.name)
		}
		switch c.Name {
		case "stabilize":
			n.core.Stabilize()
		case "checkttl":
			n.core.Check()
		case "fixfingers":
			n.core.FixFingers()
		case "tick":
			n.core.Tick()
		}
		n.drain()
		s.afterStep(n)
	}
	return nil
}

// cmdDeliver delivers (or drops) the pending messages that match from=, to=
// and type=, in the order they were sent; n= limits how many.
func (s *Sim) cmdDeliver(c Cmd) string {
	limit, _ := intArg(c, "n", math.MaxInt)
	quiet := len(c.Args) > 0 && c.Args[0] == "quiet"
	match := func(p packet) bool {
		if f := c.KV["from"]; f != "" && (p.from == nil || p.from.name != f) {
			return false
		}
		if t := c.KV["to"]; t != "" && p.to.name != t {
			return false
		}
		if ty := c.KV["type"]; ty != "" && (p.app != nil || string(p.msg.Type) != ty) {
			return false
		}
		return true
	}
	var lines []string
	count := 0
	for i := 0; i < len(s.manual) && count < limit && s.violation == nil; {
		p := s.manual[i]
		if !match(p) {
			i++
			continue
		}
		s.manual = append(s.manual[:i], s.manual[i+1:]...)
		count++
		if c.Name == "drop" {
			lines = append(lines, "dropped "+s.describe(p))
			continue
		}
		line := s.describe(p)
		if !p.to.alive || p.to.inc != p.inc {
			line += " (lost: receiver is down)"
		} else {
			s.deliver(p.to, p)
			s.afterStep(p.to)
		}
		lines = append(lines, line)
	}
	if quiet {
		return ""
	}
	return strings.Join(lines, "\n")
}

// deliverAll delivers every pending message, and whatever they produce.
func (s *Sim) deliverAll() {
	for n := 0; len(s.manual) > 0 && s.violation == nil && n < 1_000_000; n++ {
		p := s.manual[0]
		s.manual = s.manual[1:]
		if p.to.alive && p.to.inc == p.inc {
			s.deliver(p.to, p)
			s.afterStep(p.to)
		}
	}
}

func (s *Sim) cmdState(c Cmd) string {
	var lines []string
	for _, n := range s.nodesNamed(c.Args) {
		if !n.alive {
			lines = append(lines, n.name+" down")
			continue
		}
		lines = append(lines, fmt.Sprintf("%s %s pred=%s succs=%s", n.name, n.core.Status(), s.nameOf(n.core.Pred().ID), s.names(n.core.Successors())))
	}
	return strings.Join(lines, "\n")
}

// ringWalk follows bestSucc from the lowest ring member.
func (s *Sim) ringWalk() string {
	mem := s.members()
	if len(mem) == 0 {
		return "no ring"
	}
	seen := map[*simNode]bool{}
	parts := []string{}
	n := mem[0]
	for n != nil && !seen[n] {
		seen[n] = true
		parts = append(parts, n.name)
		n = s.bestSucc(n)
	}
	if n != nil {
		parts = append(parts, n.name)
	} else {
		parts = append(parts, "(dead end)")
	}
	out := strings.Join(parts, " → ")
	if len(seen) < len(mem) {
		var rest []string
		for _, m := range mem {
			if !seen[m] {
				rest = append(rest, m.name)
			}
		}
		out += " (not on it: " + strings.Join(rest, " ") + ")"
	}
	return out
}
