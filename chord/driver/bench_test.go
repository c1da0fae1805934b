package driver_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/flownode/flownode/chord/chordtest"
	"github.com/flownode/flownode/chord/driver"
	"github.com/flownode/flownode/rpc"
)

// BenchmarkLookup measures lookup latency and hops in a live ring on
// loopback, after the ring is Ideal: each iteration is one lookup of a random
// key from a random node. It prints p50 / p99 latency and the mean hops
// (armon/go-chord over TCP, fixed: p50 37 µs / 109 µs for 16 / 64 nodes).
func BenchmarkLookup(b *testing.B) {
	for _, k := range []chordtest.Kind{chordtest.WS, chordtest.WSTLS, chordtest.CoAP, chordtest.CoAPS} {
		for _, n := range []int{16, 64} {
			b.Run(fmt.Sprintf("%s/%d", k, n), func(b *testing.B) {
				if k == chordtest.CoAPS && n > 16 {
					// Known defect, not a figure: 64 in-process coaps nodes on
					// 2 cores do not settle: after the joins the ring drops a
					// growing number of sends (see issue 13's closing note).
					b.Skip("coaps rings of 64 in-process nodes do not settle yet")
				}
				prof := chordtest.LocalProfile(b)
				// Maintenance traffic grows with N; on a small machine 64
				// nodes at the local tick saturate the CPU (and the ring
				// then never settles), so the bigger ring ticks slower.
				prof.Tick *= time.Duration(n / 16)
				nodes := startRing(b, k, n, uint64(n), prof)
				chordtest.WaitIdeal(b, nodes, 90*time.Second, uint64(n))
				r := rand.New(rand.NewPCG(1, 2))
				lat := make([]time.Duration, 0, b.N)
				hops := 0
				dropped0 := droppedMessages(nodes)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					var key [20]byte
					for j := range key {
						key[j] = byte(r.UintN(256))
					}
					d := nodes[r.IntN(len(nodes))].Driver
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					start := time.Now()
					_, h, err := d.Lookup(ctx, key)
					lat = append(lat, time.Since(start))
					cancel()
					if err != nil {
						b.Fatalf("lookup: %v", err)
					}
					hops += h
				}
				b.StopTimer()
				dropped := droppedMessages(nodes) - dropped0
				slices.Sort(lat)
				p50, p99, worst := lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
				b.ReportMetric(float64(p50.Microseconds()), "p50-µs")
				b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
				b.ReportMetric(float64(hops)/float64(b.N), "hops")
				b.ReportMetric(float64(dropped), "dropped")
				b.Logf("%s %d nodes (tick %v), %d lookups: p50 %v p99 %v (%.1f× p50) max %v, mean hops %.2f, %d messages dropped by the ring meanwhile (%s/%s, %d CPUs)",
					k, n, prof.Tick, b.N, p50, p99, float64(p99)/float64(p50), worst, float64(hops)/float64(b.N), dropped, runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
			})
		}
	}
}

// droppedMessages sums what the nodes' drivers lost: full send queues and
// failed sends.
func droppedMessages(nodes []*chordtest.Node) uint64 {
	var n uint64
	for _, nd := range nodes {
		n += nd.Driver.Dropped()
	}
	return n
}

// BenchmarkMaintenance measures what ring maintenance costs each node in
// bytes per second at the gateway profile: 16 nodes with the gateway's
// timers, driven by fast injected ticks, and the envelope bytes their
// transports send over a fixed number of ticks once the ring is Ideal,
// scaled to the gateway's tick period.
func BenchmarkMaintenance(b *testing.B) {
	for _, k := range []chordtest.Kind{chordtest.WS, chordtest.CoAP} {
		b.Run(string(k), func(b *testing.B) {
			const n, window = 16, 200
			prof := driver.GatewayProfile()
			gatewayTick := prof.Tick
			prof.Tick = 20 * time.Millisecond // only used for send timeouts here
			prof.SendTimeout = 200 * time.Millisecond
			ticks := make([]chan time.Time, n)
			for i := range ticks {
				ticks[i] = make(chan time.Time, 1)
			}
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				t := time.NewTicker(prof.Tick)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case now := <-t.C:
						for _, c := range ticks {
							select {
							case c <- now:
							default:
							}
						}
					}
				}
			}()
			defer func() { close(stop); <-done }()
			nodes := startRingTicks(b, k, n, 9, prof, ticks)
			chordtest.WaitIdeal(b, nodes, 60*time.Second, 9)
			// One fixed window whatever b.N is: run with -benchtime=1x.
			{
				before := bytesOut(nodes)
				t0 := nodes[0].Driver.State().Tick
				for nodes[0].Driver.State().Tick < t0+window {
					time.Sleep(prof.Tick)
				}
				sent := bytesOut(nodes) - before
				perNodePerTick := float64(sent) / n / window
				perSec := perNodePerTick / gatewayTick.Seconds()
				b.ReportMetric(perSec, "B/node/s")
				b.Logf("%s: %d nodes, gateway profile (tick %v): %.0f bytes per node per tick, %.0f bytes per node per second",
					k, n, gatewayTick, perNodePerTick, perSec)
			}
		})
	}
}

func bytesOut(nodes []*chordtest.Node) uint64 {
	var sum uint64
	for _, nd := range nodes {
		if s, ok := nd.Driver.Transport().(interface{ Stats() rpc.Stats }); ok {
			sum += s.Stats().BytesOut
		}
	}
	return sum
}
