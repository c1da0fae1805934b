package chordsim

import (
	"fmt"
	"slices"
	"strings"
)

// Report describes a failed run: the violation, the outside-assumption flags
// and the last steps before it.
func (s *Sim) Report() string {
	var b strings.Builder
	if s.violation != nil {
		fmt.Fprintf(&b, "%v\n", s.violation)
	}
	if len(s.flags) > 0 {
		var ks []string
		for k, v := range s.flags {
			ks = append(ks, fmt.Sprintf("  %s: %d", k, v))
		}
		slices.Sort(ks)
		fmt.Fprintf(&b, "outside the assumptions (not counted):\n%s\n", strings.Join(ks, "\n"))
	}
	fmt.Fprintf(&b, "last %d steps:\n", len(s.tr))
	for _, e := range s.tr {
		switch e.kind {
		case traceAction:
			fmt.Fprintf(&b, "  t=%d %s\n", e.at, e.info)
		case traceDrop:
			fmt.Fprintf(&b, "  t=%d lost %s\n", e.at, s.describe(packet{from: e.from, to: e.to, msg: e.msg, app: e.app}))
		default:
			fmt.Fprintf(&b, "  t=%d %s\n", e.at, s.describe(packet{from: e.from, to: e.to, msg: e.msg, app: e.app}))
		}
	}
	fmt.Fprintf(&b, "state:\n")
	for _, n := range s.sorted {
		if n.alive {
			fmt.Fprintf(&b, "  %s %s pred=%s succs=%s primary=%d\n", n.name, n.core.Status(), s.nameOf(n.core.Pred().ID), s.names(n.core.Successors()), len(n.store.primary))
		}
	}
	return b.String()
}

// Shrink looks for a shorter script that still fails (fails reports whether
// a finished simulation counts as failing): it drops chunks of commands,
// halving the chunk size down to single commands, keeping every removal after
// which the run still fails. It gives up after maxRuns runs.
func Shrink(sc Script, opt Options, fails func(*Sim) bool, maxRuns int) Script {
	runs := 0
	for chunk := len(sc) / 2; chunk >= 1; chunk /= 2 {
		for i := 0; i+chunk <= len(sc) && runs < maxRuns; {
			cand := append(append(Script(nil), sc[:i]...), sc[i+chunk:]...)
			runs++
			if s, _ := cand.Run(opt); fails(s) {
				sc = cand
				continue
			}
			i += chunk
		}
	}
	return sc
}
