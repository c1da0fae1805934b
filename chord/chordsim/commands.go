package chordsim

import (
	"fmt"
	"strconv"
	"strings"
)

// The commands, shared by the scripts in testdata and by Generate:
//
//	seeds N                          how many seeds a script runs with (read by the test)
//	config r= maxttl= fingers= timeout= replicas= probe= replicate=
//	net delay=MIN-MAX loss= dup= reorder=
//	build A B C | build n=K          a ring made through the protocol, settled
//	create A | join A B via=C        one node creates a ring; nodes join through C
//	stabilize A | checkttl A | fixfingers A | tick [A..]   one operation, nothing delivered
//	deliver [from= to= type= n=] [quiet] | drop [...] | pending
//	round [n=K]                      manual round: every node ticks, all is delivered
//	run rounds=K                     automatic: ticks, delays, loss, for K rounds
//	crash A B | crash n=K | crash frac=F | crash run=K (consecutive) | restart A
//	leave A B | leave n=K
//	joins n=K [via=A] | burst n=K via=A
//	writes n=K | lookup A key=B
//	partition A,B|C,D | partition | heal
//	shrink to=K [every=ROUNDS]
//	state A.. | ring | check | ideal | converge
//	lost                             acknowledged, replicated keys of which every copy died

// Exec runs one command and returns what it prints. A violation of an
// invariant is printed too, and stops the simulation.
func (s *Sim) Exec(c Cmd) (string, error) {
	if s.violation != nil {
		return "skipped: an invariant is already violated", nil
	}
	out, err := s.exec(c)
	if err != nil {
		out = strings.TrimSpace(out + "\nerror: " + err.Error())
	}
	if s.violation != nil {
		out = strings.TrimSpace(out + "\nVIOLATION " + s.violation.Error())
	}
	return out, err
}

func (s *Sim) exec(c Cmd) (string, error) {
	switch c.Name {
	case "seeds":
		return "", nil // read by the test runner
	case "config":
		return "", s.configure(c)
	case "net":
		return "", s.setNet(c)
	case "build":
		return s.cmdBuild(c)
	case "create":
		for _, a := range c.Args {
			s.create(s.node(a))
		}
		return "", nil
	case "join":
		return "", s.cmdJoin(c)
	case "stabilize", "checkttl", "fixfingers", "tick":
		return "", s.cmdStep(c)
	case "deliver", "drop":
		return s.cmdDeliver(c), nil
	case "pending":
		var lines []string
		for _, p := range s.manual {
			lines = append(lines, s.describe(p))
		}
		return strings.Join(lines, "\n"), nil
	case "crash":
		return s.cmdCrash(c)
	case "restart":
		for _, n := range s.nodesNamed(c.Args) {
			s.restart(n)
		}
		return "", nil
	case "leave":
		return s.cmdLeave(c)
	case "state":
		return s.cmdState(c), nil
	case "ring":
		return s.ringWalk(), nil
	case "check":
		for _, n := range s.sorted {
			n.dirty = true
		}
		if v := s.checkSafety(nil); v != nil {
			v.Step, v.Time = s.steps, s.now
			s.violation = v
			return "", nil
		}
		return "safety ok", nil
	case "ideal":
		if err := s.idealErr(); err != nil {
			return "not ideal: " + err.Error(), nil
		}
		return "ideal", nil
	case "round":
		// Manual mode: every live node ticks once, in ID order, then every
		// message is delivered.
		k, err := intArg(c, "n", 1)
		for range k {
			for _, n := range s.live() {
				n.core.Tick()
				n.drain()
				s.afterStep(n)
			}
			s.deliverAll()
		}
		return "", err
	case "run":
		rounds, err := intArg(c, "rounds", 1)
		s.runUntil(s.now + int64(rounds)*s.opt.Round)
		return "", err
	case "joins", "burst":
		return s.cmdJoins(c)
	case "writes":
		return s.cmdWrites(c)
	case "lookup":
		return s.cmdLookup(c)
	case "partition":
		return s.cmdPartition(c)
	case "heal":
		s.heal()
		return "", nil
	case "shrink":
		return s.cmdShrink(c)
	case "lost":
		return fmt.Sprintf("replicated keys lost: %d", s.flags[flagKeyLost]), nil
	case "converge":
		if v := s.Converge(); v != nil {
			return "", nil
		}
		return "converged", nil
	}
	return "", fmt.Errorf("unknown command %q", c.Name)
}

func intArg(c Cmd, key string, def int) (int, error) {
	v, ok := c.KV[key]
	if !ok {
		return def, nil
	}
	i, err := strconv.Atoi(v)
	if err != nil {
		return def, fmt.Errorf("%s=%q: want an integer", key, v)
	}
	return i, nil
}

func floatArg(c Cmd, key string) (float64, bool, error) {
	v, ok := c.KV[key]
	if !ok {
		return 0, false, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 {
		return 0, true, fmt.Errorf("%s=%q: want a fraction between 0 and 1", key, v)
	}
	return f, true, nil
}

// configure sets the chord config for nodes started from now on, and the
// simulation's application options.
func (s *Sim) configure(c Cmd) error {
	set := map[string]*int{
		"r": &s.cfg.R, "maxttl": &s.cfg.MaxTTL, "fingers": &s.cfg.FingersPerTick,
		"timeout": &s.cfg.RequestTimeout, "replicas": &s.opt.Replicas,
		"probe": &s.opt.ProbeEvery, "replicate": &s.opt.ReplicateEvery,
	}
	for k, v := range c.KV {
		p, ok := set[k]
		if !ok {
			return fmt.Errorf("config: unknown key %q", k)
		}
		i, err := strconv.Atoi(v)
		if err != nil || i < 0 {
			return fmt.Errorf("config %s=%q: want a non-negative integer", k, v)
		}
		*p = i
	}
	return nil
}

func (s *Sim) setNet(c Cmd) error {
	if d, ok := c.KV["delay"]; ok {
		lo, hi, _ := strings.Cut(d, "-")
		a, err1 := strconv.ParseInt(lo, 10, 64)
		b, err2 := strconv.ParseInt(hi, 10, 64)
		if err1 != nil || err2 != nil || a < 1 || b < a {
			return fmt.Errorf("net delay=%q: want MIN-MAX time units, 1 <= MIN <= MAX", d)
		}
		s.net.minDelay, s.net.maxDelay = a, b
	}
	for k, p := range map[string]*float64{"loss": &s.net.loss, "dup": &s.net.dup, "reorder": &s.net.reorder} {
		f, ok, err := floatArg(c, k)
		if err != nil {
			return err
		}
		if ok {
			*p = f
		}
	}
	return nil
}

func (s *Sim) nodesNamed(names []string) []*simNode {
	var out []*simNode
	for _, a := range names {
		for _, name := range strings.Split(a, ",") {
			if n := s.byName[name]; n != nil {
				out = append(out, n)
			}
		}
	}
	return out
}
