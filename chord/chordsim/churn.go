package chordsim

import (
	"fmt"
	"math"
	"strings"
)

// Churn commands: crashes, leaves, joins, writes, lookups, partitions.

// cmdCrash crashes the named nodes; n=K picks K random live nodes, frac=F a
// fraction of them, run=K K consecutive ones (in ring order) from a random one.
func (s *Sim) cmdCrash(c Cmd) (string, error) {
	live := s.live()
	var victims []*simNode
	switch {
	case len(c.Args) > 0:
		victims = s.nodesNamed(c.Args)
	case c.KV["run"] != "":
		k, err := intArg(c, "run", 1)
		if err != nil || len(live) == 0 {
			return "", err
		}
		start := s.clientRand.IntN(len(live))
		for i := range min(k, len(live)-1) {
			victims = append(victims, live[(start+i)%len(live)])
		}
	default:
		k, err := intArg(c, "n", 0)
		if err != nil {
			return "", err
		}
		if f, ok, err := floatArg(c, "frac"); err != nil {
			return "", err
		} else if ok {
			k = int(math.Round(f * float64(len(live))))
		}
		k = min(k, len(live)-1)
		perm := s.clientRand.Perm(len(live))
		for _, i := range perm[:max(k, 0)] {
			victims = append(victims, live[i])
		}
	}
	s.crash(victims...)
	return "", nil
}

func (s *Sim) cmdLeave(c Cmd) (string, error) {
	if len(c.Args) > 0 {
		s.leave(s.nodesNamed(c.Args)...)
		return "", nil
	}
	k, err := intArg(c, "n", 1)
	if err != nil {
		return "", err
	}
	live := s.live()
	k = min(k, len(live)-1)
	perm := s.clientRand.Perm(len(live))
	var ns []*simNode
	for _, i := range perm[:max(k, 0)] {
		ns = append(ns, live[i])
	}
	s.leave(ns...)
	return "", nil
}

// cmdJoins adds n=K new nodes. "joins" spreads them over one round through
// random members (or via=X); "burst" sends them all at once through via=X.
func (s *Sim) cmdJoins(c Cmd) (string, error) {
	k, err := intArg(c, "n", 1)
	if err != nil {
		return "", err
	}
	via := s.nodesNamed([]string{c.KV["via"]})
	prefix := "j"
	if c.Name == "burst" {
		prefix = "b"
		if len(via) == 0 {
			return "", fmt.Errorf("burst: via=NODE names no node")
		}
	}
	for range k {
		s.joinSeq++
		n := s.node(fmt.Sprintf("%s%d", prefix, s.joinSeq))
		boot := via
		if len(boot) == 0 {
			mem := s.members()
			if len(mem) == 0 {
				return "", fmt.Errorf("joins: no ring to join")
			}
			boot = []*simNode{mem[s.clientRand.IntN(len(mem))]}
		}
		if c.Name == "burst" || !s.auto {
			if err := s.join(n, boot); err != nil {
				return "", err
			}
			continue
		}
		s.after(1+s.clientRand.Int64N(s.opt.Round), func() {
			if !n.alive && boot[0].alive {
				s.join(n, boot)
			}
		})
	}
	return "", nil
}

// cmdWrites issues n=K client writes of random keys from random members,
// spread over one round.
func (s *Sim) cmdWrites(c Cmd) (string, error) {
	k, err := intArg(c, "n", 1)
	if err != nil {
		return "", err
	}
	for range k {
		key := s.randomKey()
		s.after(1+s.clientRand.Int64N(s.opt.Round), func() {
			if mem := s.members(); len(mem) > 0 {
				s.write(mem[s.clientRand.IntN(len(mem))], key)
			}
		})
	}
	return "", nil
}

// cmdLookup looks a node's ID (key=NAME) or random keys (n=K) up from the
// named node, delivers everything (manual mode) and prints the answers.
func (s *Sim) cmdLookup(c Cmd) (string, error) {
	from := s.nodesNamed(c.Args)
	if len(from) != 1 {
		return "", fmt.Errorf("lookup: name one node")
	}
	target := s.nodesNamed([]string{c.KV["key"]})
	if len(target) != 1 {
		return "", fmt.Errorf("lookup: key=NODE names no node")
	}
	before := len(s.Stats.Lookups)
	s.checkLookups = true
	s.startOp(s.newOp(opLookup, from[0], target[0].peer.ID))
	if s.auto {
		s.runUntilOK(func() error {
			if len(s.Stats.Lookups) == before {
				return fmt.Errorf("pending")
			}
			return nil
		}, 40)
	} else {
		s.deliverAll()
	}
	s.checkLookups = false
	if len(s.Stats.Lookups) == before {
		return "lookup did not finish", nil
	}
	r := s.Stats.Lookups[len(s.Stats.Lookups)-1]
	if r.Err != nil {
		return "lookup failed: " + r.Err.Error(), nil
	}
	return fmt.Sprintf("owner=%s hops=%d", target[0].name, r.Hops), nil
}

// cmdPartition splits the network into the sides given as comma lists
// separated by "|" (nodes not named stay on the first side), or into two
// random halves.
func (s *Sim) cmdPartition(c Cmd) (string, error) {
	var sides [][]*simNode
	if len(c.Args) > 0 {
		for _, part := range strings.Split(strings.Join(c.Args, ""), "|") {
			sides = append(sides, s.nodesNamed([]string{part}))
		}
	} else {
		live := s.live()
		perm := s.clientRand.Perm(len(live))
		var a, b []*simNode
		for i, j := range perm {
			if i%2 == 0 {
				a = append(a, live[j])
			} else {
				b = append(b, live[j])
			}
		}
		sides = [][]*simNode{a, b}
	}
	s.partition(sides)
	return "", nil
}

// cmdShrink crashes random nodes one at a time, every=K rounds apart, until
// to=K remain.
func (s *Sim) cmdShrink(c Cmd) (string, error) {
	to, err := intArg(c, "to", 0)
	if err != nil {
		return "", err
	}
	every, err := intArg(c, "every", 2)
	if err != nil {
		return "", err
	}
	for s.violation == nil {
		live := s.live()
		if len(live) <= max(to, 1) {
			break
		}
		s.crash(live[s.clientRand.IntN(len(live))])
		s.runUntil(s.now + int64(every)*s.opt.Round)
	}
	return "", nil
}
