package chordsim

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// defaultSeeds is how many random scenarios TestRandomSeeds runs; with the
// scripts (several seeds each) that is well over 200 seeds per `go test`.
const defaultSeeds = 160

// TestRandomSeeds runs random scenarios: every safety invariant after every
// step, every liveness property once churn stops.
func TestRandomSeeds(t *testing.T) {
	runSeeds(t, 1, defaultSeeds)
}

// TestSoak runs CHORDSIM_SEEDS random scenarios (make soak sets 10000);
// CHORDSIM_SEED=S replays one seed and prints its script and report.
func TestSoak(t *testing.T) {
	if v := os.Getenv("CHORDSIM_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CHORDSIM_SEED=%q: want a number", v)
		}
		sc := Generate(seed)
		s, _ := sc.Run(Options{Seed: seed})
		t.Logf("seed %d script:\n%s\n%s", seed, sc, s.Report())
		if s.Violation() != nil {
			t.Fatal(s.Violation())
		}
		return
	}
	n, _ := strconv.Atoi(os.Getenv("CHORDSIM_SEEDS"))
	if n <= 0 {
		t.Skip("set CHORDSIM_SEEDS=N to soak N seeds (make soak uses 10000)")
	}
	runSeeds(t, 1_000_001, n)
}

// runSeeds runs seeds [first, first+count) on every CPU and reports each
// failure with its seed and the shortest script that still fails.
func runSeeds(t *testing.T, first uint64, count int) {
	start := time.Now()
	var mu sync.Mutex
	failures, outside := 0, 0
	var idealRounds []int
	flags := map[string]int{}
	seeds := make(chan uint64)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seed := range seeds {
				sc := Generate(seed)
				opt := Options{Seed: seed}
				s, _ := sc.Run(opt)
				mu.Lock()
				for k, v := range s.Flags() {
					flags[k] += v
				}
				if s.WentOutside() {
					outside++
				}
				idealRounds = append(idealRounds, s.LastIdealRounds)
				mu.Unlock()
				if s.Violation() == nil && !s.WentOutside() && s.Flags()[flagKeyLost] > 0 {
					// Within the assumptions (at most r-1 = k-1 failures at a
					// time, the detector given time to catch up) a key that
					// had time to be replicated must survive.
					s.fail("Placement", fmt.Sprintf("%d replicated keys lost within the assumptions", s.Flags()[flagKeyLost]))
				}
				if s.Violation() == nil {
					continue
				}
				mu.Lock()
				failures++
				t.Logf("seed %d: %v", seed, s.Violation())
				mu.Unlock()
				if os.Getenv("CHORDSIM_NOSHRINK") != "" {
					continue
				}
				report := s.Report() + shrinkReport(sc, opt)
				mu.Lock()
				if failures <= 3 {
					t.Errorf("seed %d: %v\nreplay: CHORDSIM_SEED=%d go test ./chord/chordsim -run TestSoak -v\n%s", seed, s.Violation(), seed, report)
				}
				mu.Unlock()
			}
		}()
	}
	for i := range count {
		seeds <- first + uint64(i)
	}
	close(seeds)
	wg.Wait()
	slices.Sort(idealRounds)
	if len(idealRounds) > 0 {
		t.Logf("rounds to Ideal once churn stopped: median %d, p99 %d, max %d",
			idealRounds[len(idealRounds)/2], idealRounds[len(idealRounds)*99/100], idealRounds[len(idealRounds)-1])
	}
	t.Logf("%d seeds in %v, %d failed. %d runs left the protocol's assumptions for a while (partition, r consecutive failures); events outside the assumptions, not counted: %v",
		count, time.Since(start).Round(time.Millisecond), failures, outside, fmt.Sprint(flags))
}

// TestDeterministic runs one seed twice: every step, message and final state
// must be the same, or a failing seed could not be replayed.
func TestDeterministic(t *testing.T) {
	fingerprint := func() string {
		s, _ := Generate(7).Run(Options{Seed: 7})
		var b strings.Builder
		fmt.Fprintf(&b, "steps=%d now=%d msgs=%v\n", s.Stats.Steps, s.now, s.Stats.Messages)
		for _, n := range s.live() {
			fmt.Fprintf(&b, "%s %v %s %s %d\n", n.name, n.status(), s.nameOf(n.pred().ID), s.names(n.succs()), len(n.store.primary))
		}
		return b.String()
	}
	if a, b := fingerprint(), fingerprint(); a != b {
		t.Fatalf("two runs of seed 7 differ:\n%s\n---\n%s", a, b)
	}
}
