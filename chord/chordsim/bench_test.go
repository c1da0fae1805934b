package chordsim

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"testing"

	"github.com/flownode/flownode/chord"
)

// The benchmarks print figures (b.ReportMetric, b.Log); they never fail on
// them. Run with: go test ./chord/chordsim -run '^$' -bench . -benchtime 1x
//
// A round is one tick period: every node ticks once, so it stabilizes once,
// runs one check and starts one finger lookup. Messages take 1–10 time units
// of a 100-unit round, so a request and its reply fit in a round.

// convergedRing makes a ring of n nodes through the protocol — n1 creates it
// and the others join through it in one burst — and runs it until it is
// Ideal and every finger is right. r = 0 is the adaptive default.
func convergedRing(b *testing.B, seed uint64, n, r int) (*Sim, int) {
	b.Helper()
	s := New(Options{Seed: seed, NoSafetyChecks: n > 64})
	s.cfg.R = r
	s.create(s.node("n1"))
	for i := 2; i <= n; i++ {
		s.join(s.node(fmt.Sprintf("n%d", i)), []*simNode{s.byName["n1"]})
	}
	rounds, ok := s.RoundsToIdeal(20 * int(math.Log2(float64(n))+1))
	if !ok {
		b.Fatalf("N=%d seed %d: not Ideal after %d rounds: %v", n, seed, rounds, s.idealErr())
	}
	if !s.runUntilOK(s.fingersErr, 400) {
		b.Fatalf("N=%d: fingers: %v", n, s.fingersErr())
	}
	return s, rounds
}

// lookups runs count lookups of random keys from random live nodes, spread
// over one round, until all finish; it returns their results.
func lookups(s *Sim, count int) []LookupResult {
	before := len(s.Stats.Lookups)
	live := s.live()
	for range count {
		n := live[s.clientRand.IntN(len(live))]
		s.startOp(s.newOp(opLookup, n, s.randomKey()))
	}
	s.runUntilOK(func() error {
		for _, op := range s.ops {
			if op.kind == opLookup {
				return fmt.Errorf("pending")
			}
		}
		return nil
	}, 200)
	return s.Stats.Lookups[before:]
}

func env(b *testing.B) {
	b.Logf("environment: %s/%s, %d CPUs, GOMAXPROCS %d, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
}

// BenchmarkLookupHops reports mean and p99 lookup hops on converged rings of
// 16, 64, 256 and 1024 nodes (adaptive r). Hops count the remote nodes asked
// until the owner is known; the confirmation sent to the owner itself is not
// counted. Target: mean ≤ ½·log2 N.
func BenchmarkLookupHops(b *testing.B) {
	for _, n := range []int{16, 64, 256, 1024} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			env(b)
			var hops []int
			failed, r := 0, 0
			for i := range b.N {
				s, _ := convergedRing(b, uint64(i+1), n, 0)
				r = s.byName["n1"].core.R()
				for _, res := range lookups(s, 2000) {
					hops = append(hops, res.Hops)
					if !res.Correct {
						failed++
					}
				}
			}
			mean, p99 := meanP99(hops)
			b.ReportMetric(mean, "hops/lookup")
			b.ReportMetric(p99, "p99-hops")
			b.ReportMetric(float64(failed), "wrong-lookups")
			b.Logf("N=%d r=%d: mean %.2f hops, p99 %.0f (target mean ≤ ½·log2 N = %.1f), %d of %d lookups wrong",
				n, r, mean, p99, 0.5*math.Log2(float64(n)), failed, len(hops))
		})
	}
}

// BenchmarkBurstJoin reports the stabilize rounds to Ideal after N nodes join
// through one node (a ring of one) at the same instant. Rounds are counted
// from the burst until every list, predecessor and successor is the true one.
// Target: within 3·log2 N.
func BenchmarkBurstJoin(b *testing.B) {
	for _, n := range []int{16, 64, 256} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			env(b)
			var rounds []int
			for i := range b.N {
				for seed := uint64(1); seed <= 5; seed++ {
					_, r := convergedRing(b, uint64(i)*5+seed, n+1, 0)
					rounds = append(rounds, r)
				}
			}
			mean, _ := meanP99(rounds)
			b.ReportMetric(mean, "rounds")
			b.ReportMetric(float64(slices.Max(rounds)), "max-rounds")
			b.Logf("N=%d: rounds to Ideal %v (mean %.1f; target ≤ 3·log2 N = %.0f)", n, rounds, mean, 3*math.Log2(float64(n)))
		})
	}
}

// BenchmarkFailedLookups reports the share of lookups that fail (error or
// wrong owner, judged against the live ring when they finish) when 10, 25 or
// 50 % of 256 nodes fail at once, with r = 2·log2 N = 16. The lookups start
// at the instant of the failure, before any node has noticed it. Target: none.
func BenchmarkFailedLookups(b *testing.B) {
	const n, r = 256, 16
	for _, frac := range []float64{0.10, 0.25, 0.50} {
		b.Run(fmt.Sprintf("fail=%.0f%%", 100*frac), func(b *testing.B) {
			env(b)
			total, failed := 0, 0
			why := map[string]int{}
			var hops []int
			for i := range b.N {
				s, _ := convergedRing(b, uint64(i+1), n, r)
				live := s.live()
				perm := s.clientRand.Perm(len(live))
				var victims []*simNode
				for _, j := range perm[:int(frac*float64(n))] {
					victims = append(victims, live[j])
				}
				s.crash(victims...)
				for _, res := range lookups(s, 1000) {
					total++
					hops = append(hops, res.Hops)
					if !res.Correct {
						failed++
						if res.Err != nil {
							why[res.Err.Error()]++
						} else {
							why["wrong owner"]++
						}
					}
				}
			}
			mean, _ := meanP99(hops)
			if failed > 0 {
				b.Logf("failures: %v", why)
			}
			b.ReportMetric(100*float64(failed)/float64(total), "%failed")
			b.ReportMetric(mean, "hops/lookup")
			b.Logf("N=%d r=%d, %.0f%% failed at once: %d of %d lookups failed (%.2f%%), mean hops %.2f",
				n, r, 100*frac, failed, total, 100*float64(failed)/float64(total), mean)
		})
	}
}

// BenchmarkMaintenance reports the messages each node sends per round in a
// converged ring with no lookups: stabilize (3), checks (2 per neighbour:
// predecessor and r successors) and fix-fingers lookups.
func BenchmarkMaintenance(b *testing.B) {
	for _, n := range []int{16, 64, 256} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			env(b)
			var perNode float64
			byType := map[chord.MsgType]int{}
			const rounds = 20
			r := 0
			for i := range b.N {
				s, _ := convergedRing(b, uint64(i+1), n, 0)
				r = s.byName["n1"].core.R()
				clear(s.Stats.Messages)
				s.runUntil(s.now + rounds*s.opt.Round)
				total := 0
				for t, c := range s.Stats.Messages {
					total += c
					byType[t] += c
				}
				perNode += float64(total) / float64(n*rounds)
			}
			perNode /= float64(b.N)
			b.ReportMetric(perNode, "msgs/node/round")
			var parts []string
			for _, t := range slices.Sorted(mapsKeys(byType)) {
				parts = append(parts, fmt.Sprintf("%s %.2f", t, float64(byType[t])/float64(b.N*n*rounds)))
			}
			b.Logf("N=%d r=%d: %.1f messages per node per round: %v", n, r, perNode, parts)
		})
	}
}

func meanP99(xs []int) (mean, p99 float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	sum := 0
	for _, x := range s {
		sum += x
	}
	return float64(sum) / float64(len(s)), float64(s[(len(s)*99)/100])
}

func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
