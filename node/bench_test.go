package node

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flownode/flownode/ledger"
)

// Benchmarks of the distributed ledger on loopback WebSocket, k = 3, the
// local profile. They print figures; they never fail on time.

// BenchmarkRingIngest: durable records/s through random nodes of 1, 3 and 5
// node rings, answered once durable on the owner or on every replica. One op
// is one batch of 100 readings; 16 clients put concurrently.
func BenchmarkRingIngest(b *testing.B) {
	for _, size := range []int{1, 3, 5} {
		for _, wait := range []bool{false, true} {
			name := fmt.Sprintf("nodes=%d/wait=owner", size)
			if wait {
				name = fmt.Sprintf("nodes=%d/wait=replicas", size)
			}
			b.Run(name, func(b *testing.B) {
				r := newTestRing(b, size, 3)
				live := r.live()
				var next atomic.Int64
				const batch, clients = 100, 16
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for c := 0; c < clients; c++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := int(next.Add(1)) - 1
							if i >= b.N {
								return
							}
							rs := make([]ledger.Reading, batch)
							for j := range rs {
								rs[j] = reading(i*batch + j)
							}
							rn := live[rand.IntN(len(live))]
							if _, err := rn.n.Put(context.Background(), rs, PutOptions{WaitReplicas: wait}); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				el := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(b.N*batch)/el.Seconds(), "records/s")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// BenchmarkReadByTxID: p50/p99 latency of a read by txID from a random node
// of a 5-node ring holding 2,000 records, from a node that does not hold the
// record (~2/5 of reads from a random node; the others are local store reads
// of a few µs): the pointer's owner names the key, the key's owner answers.
func BenchmarkReadByTxID(b *testing.B) {
	r := newTestRing(b, 5, 3)
	receipts := r.putMany(2000, 100, PutOptions{WaitReplicas: true})
	for _, rn := range r.live() {
		for rn.n.DistStats().PtrPending > 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	live := r.live()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rc := receipts[rand.IntN(len(receipts))]
		rn := live[rand.IntN(len(live))]
		for _, err := rn.n.LocalRecord(rc.TxID); err == nil; _, err = rn.n.LocalRecord(rc.TxID) {
			rn = live[rand.IntN(len(live))]
		}
		t0 := time.Now()
		if _, err := rn.n.Record(context.Background(), rc.TxID); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkRestoreCopies: after one node of a 5-node ring holding 10,000
// records fails, the time until every record is again on its owner and its 2
// successors. One op is one whole run.
func BenchmarkRestoreCopies(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := newTestRing(b, 5, 3)
		receipts := r.putMany(10000, 500, PutOptions{WaitReplicas: true})
		r.waitPlaced(receipts, 30*time.Second)
		victim := r.live()[rand.IntN(5)]
		b.StartTimer()
		start := time.Now()
		r.kill(victim)
		r.waitIdeal(30 * time.Second)
		ideal := time.Since(start)
		r.waitPlaced(receipts, 60*time.Second)
		b.ReportMetric(ideal.Seconds(), "s-to-ideal")
		b.ReportMetric(time.Since(start).Seconds(), "s-to-k-copies")
		b.StopTimer()
		r.closeAll()
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkThingHistory: the latency of one Thing's history (500 records,
// from a 3-hour range: the hour buckets before, of and after the puts) on a
// 5-node ring holding 2,000 records, read through the history index (a
// lookup and a get per bucket) and through the old query that asks every
// node. A query's cost does not depend on which of its buckets hold the
// records: every bucket costs its lookup and get.
func BenchmarkThingHistory(b *testing.B) {
	r := newTestRing(b, 5, 3)
	const thing = "bench-history"
	var rs []ledger.Reading
	for i := range 2000 {
		name := fmt.Sprintf("other-%d", i%30)
		if i%4 == 0 {
			name = thing
		}
		rs = append(rs, ledger.Reading{Thing: name, Data: []byte(fmt.Sprintf(`{"v":%d}`, i))})
	}
	entry := r.live()[0]
	for i := 0; i < len(rs); i += 100 {
		if _, err := entry.n.Put(context.Background(), rs[i:i+100], PutOptions{WaitReplicas: true}); err != nil {
			b.Fatal(err)
		}
	}
	now := time.Now()
	from, to := now.Add(-2*time.Hour).UnixNano(), now.Add(time.Hour).UnixNano()
	queries := map[string]func(*Node) ([][]byte, error){
		"index": func(n *Node) ([][]byte, error) {
			return n.RecordsByThing(context.Background(), thing, from, to, 1000)
		},
		"every-node": func(n *Node) ([][]byte, error) {
			return n.dist.RecordsByThingEveryNode(context.Background(), thing, from, to, 1000)
		},
	}
	for _, name := range []string{"index", "every-node"} {
		b.Run(name, func(b *testing.B) {
			live := r.live()
			lat := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				recs, err := queries[name](live[i%len(live)].n)
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
				if len(recs) != 500 {
					b.Fatalf("%d records, want 500", len(recs))
				}
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(0, "ns/op")
		})
	}
}
