package chordsim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// Generate writes a random scenario for seed: a ring of 6–20 nodes, client
// writes, a series of churn steps (joins, bursts, crashes — single, random and
// consecutive, within the r−1 the protocol tolerates —, graceful leaves,
// restarts, partitions that heal, network changes) and finally converge.
// Every node is named, so the scenario replays exactly and shrinks well.
func Generate(seed uint64) Script {
	g := &gen{seed: seed, r: rand.New(rand.NewPCG(seed, 0x5eed))}
	return g.script()
}

type gen struct {
	seed    uint64
	r       *rand.Rand
	sc      Script
	live    []string // names of live nodes
	crashed []string
	next    int
	minR    int
	// sinceLoss counts rounds since the last crash or leave: a new one waits
	// until the failure detector has caught up and the keys are replicated
	// again (MaxTTL + 2·ReplicateEvery + 2 rounds), so that failures of at
	// most r-1 nodes at a time stay within the protocol's assumptions.
	sinceLoss int
	cooldown  int
}

func (g *gen) add(format string, args ...any) {
	c, err := ParseCmd(fmt.Sprintf(format, args...))
	if err != nil {
		panic(err)
	}
	g.sc = append(g.sc, c)
}

func (g *gen) pick(xs ...int) int { return xs[g.r.IntN(len(xs))] }

func (g *gen) script() Script {
	r := g.pick(0, 0, 4, 5, 6)
	loss := []float64{0, 0, 0, 0.01, 0.03}[g.r.IntN(5)]
	ttl := 3
	if loss > 0 {
		ttl = 4
	}
	g.minR = max(r, 4)
	if r == 0 {
		g.minR = 4
	}
	// k = r: failures of up to r-1 nodes at a time must not lose a key
	// that had time to be replicated (runSeeds checks it).
	g.add("config r=%d maxttl=%d replicas=%d", r, ttl, g.minR)
	g.cooldown = ttl + 2*2 + 2
	g.add("net delay=1-%d loss=%g dup=%g reorder=%g", g.pick(8, 10, 20, 40), loss,
		[]float64{0, 0, 0.02}[g.r.IntN(3)], []float64{0, 0, 0.05}[g.r.IntN(3)])
	n := 6 + g.r.IntN(15)
	g.add("build n=%d", n)
	for i := 1; i <= n; i++ {
		g.live = append(g.live, fmt.Sprintf("n%d", i))
	}
	g.add("writes n=%d", 10+g.r.IntN(20))
	g.add("run rounds=2")
	partitioned := 0
	g.sinceLoss = 10
	for range 5 + g.r.IntN(10) {
		g.churn(&partitioned)
		rounds := 1 + g.r.IntN(4)
		g.sinceLoss += rounds
		g.add("run rounds=%d", rounds)
		if partitioned > 0 {
			if partitioned--; partitioned == 0 {
				g.add("heal")
			}
		}
	}
	if partitioned > 0 {
		g.add("heal")
	}
	g.add("converge")
	return g.sc
}

// churn adds one random churn step.
func (g *gen) churn(partitioned *int) {
	floor := g.minR + 1 // keep at least r+1 nodes
	canLose := len(g.live) - floor
	if g.sinceLoss < g.cooldown {
		canLose = 0
	}
	w := g.r.IntN(100)
	switch {
	case w < 20:
		k := 1 + g.r.IntN(3)
		names := g.newNames(k)
		g.add("join %s via=%s", strings.Join(names, " "), g.any())
		g.live = append(g.live, names...)
	case w < 28:
		k := 2 + g.r.IntN(6)
		names := g.newNames(k)
		g.add("join %s via=%s", strings.Join(names, " "), g.any())
		g.live = append(g.live, names...)
	case w < 65:
		if canLose <= 0 {
			g.add("writes n=%d", 5+g.r.IntN(20))
			return
		}
		g.sinceLoss = 0
		switch {
		case w < 45:
			g.crash(g.randomLive(1 + g.r.IntN(min(g.minR-1, canLose))))
		case w < 55:
			g.crash(g.consecutive(1 + g.r.IntN(min(g.minR-1, canLose))))
		default:
			names := g.randomLive(1 + g.r.IntN(min(2, canLose)))
			g.add("leave %s", strings.Join(names, " "))
			g.drop(names)
		}
	case w < 73 && len(g.crashed) > 0:
		i := g.r.IntN(len(g.crashed))
		name := g.crashed[i]
		g.crashed = slices.Delete(g.crashed, i, i+1)
		g.add("restart %s", name)
		g.live = append(g.live, name)
	case w >= 73 && w < 76 && *partitioned == 0 && len(g.live) >= 2*floor:
		perm := g.r.Perm(len(g.live))
		var a, b []string
		for i, j := range perm {
			if i < len(perm)/2 {
				a = append(a, g.live[j])
			} else {
				b = append(b, g.live[j])
			}
		}
		g.add("partition %s|%s", strings.Join(a, ","), strings.Join(b, ","))
		*partitioned = 1 + g.r.IntN(3)
	case w >= 90:
		g.add("net delay=1-%d reorder=%g", g.pick(8, 20, 40), []float64{0, 0.1}[g.r.IntN(2)])
	default:
		g.add("writes n=%d", 5+g.r.IntN(20))
	}
}

func (g *gen) newNames(k int) []string {
	var out []string
	for range k {
		g.next++
		out = append(out, fmt.Sprintf("g%d", g.next))
	}
	return out
}

func (g *gen) any() string { return g.live[g.r.IntN(len(g.live))] }

func (g *gen) randomLive(k int) []string {
	perm := g.r.Perm(len(g.live))
	var out []string
	for _, i := range perm[:k] {
		out = append(out, g.live[i])
	}
	return out
}

// consecutive picks k nodes adjacent on the ring.
func (g *gen) consecutive(k int) []string {
	sorted := slices.Clone(g.live)
	slices.SortFunc(sorted, func(a, b string) int { return NodeID(g.seed, a).Cmp(NodeID(g.seed, b)) })
	start := g.r.IntN(len(sorted))
	var out []string
	for i := range k {
		out = append(out, sorted[(start+i)%len(sorted)])
	}
	return out
}

func (g *gen) crash(names []string) {
	g.add("crash %s", strings.Join(names, " "))
	g.drop(names)
	g.crashed = append(g.crashed, names...)
}

func (g *gen) drop(names []string) {
	g.live = slices.DeleteFunc(g.live, func(n string) bool { return slices.Contains(names, n) })
}
