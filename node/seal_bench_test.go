package node

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/flownode/flownode/ledger"
)

// BenchmarkSealLatency prints the time from a reading's arrival (Put called on its
// owner) to its seal (the block that seals it stored), p50 and p99, on one node with
// the laptop profile's mining (20 attempts/s, 1 s mean block time):
//
//   - idle=1s, idle=5s: each reading comes after the node has had nothing to seal for
//     one or five mean block times, so its miner was idle; one op is one reading. A
//     block still needs the attempts up to its first win to fit in the time since its
//     parent, so after a short idle spell a reading may wait for the rate; after a
//     long one it is sealed at once;
//   - busy: readings come every 10 ms, so the miner never idles; one op is one second
//     of them (100 readings).
//
// It never fails on time. Run it with a count:
//
//	go test -run '^$' -bench SealLatency -benchtime 20x ./node/
func BenchmarkSealLatency(b *testing.B) {
	for _, blocks := range []time.Duration{1, 5} {
		b.Run(fmt.Sprintf("idle=%ds", blocks), func(b *testing.B) {
			n, w := openSealBench(b)
			gap := blocks * n.params.MeanBlockTime
			lat := make([]time.Duration, 0, b.N)
			for i := 0; i < b.N; i++ {
				time.Sleep(gap)
				at, rc := sealBenchPut(b, n, i)
				lat = append(lat, w.sealedAt(b, rc.Block.No+1).Sub(at))
			}
			reportSealLatency(b, lat)
		})
	}
	b.Run("busy", func(b *testing.B) {
		n, w := openSealBench(b)
		type put struct {
			at time.Time
			no uint64
		}
		const every = 10 * time.Millisecond
		puts := make([]put, 0, b.N*int(time.Second/every))
		for i := 0; i < cap(puts); i++ {
			at, rc := sealBenchPut(b, n, i)
			puts = append(puts, put{at, rc.Block.No})
			time.Sleep(every - time.Since(at))
		}
		lat := make([]time.Duration, len(puts))
		for i, p := range puts {
			lat[i] = w.sealedAt(b, p.no+1).Sub(p.at)
		}
		reportSealLatency(b, lat)
	})
}

// openSealBench opens a node with the laptop profile, runs its miner and watches its
// branch's head.
func openSealBench(b *testing.B) (*Node, *headWatch) {
	b.Helper()
	n, err := Open(Config{DataDir: b.TempDir(), Profile: LaptopProfile(), Network: "seal-bench", Advertise: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	w := watchHead(ctx, n)
	b.Cleanup(func() {
		cancel()
		<-done
		<-w.done
		n.Close()
	})
	return n, w
}

// sealBenchPut puts reading i and returns when it arrived and its receipt.
func sealBenchPut(b *testing.B, n *Node, i int) (time.Time, Receipt) {
	b.Helper()
	at := time.Now()
	rcs, err := n.Put(context.Background(), []ledger.Reading{{Thing: "seal-bench", Data: []byte(fmt.Sprint(i))}}, PutOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return at, rcs[0]
}

// headWatch notes when each block of a node's branch was first seen stored, polling
// its head every 200 µs.
type headWatch struct {
	mu   sync.Mutex
	seen map[uint64]time.Time
	done chan struct{}
}

func watchHead(ctx context.Context, n *Node) *headWatch {
	w := &headWatch{seen: map[uint64]time.Time{}, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		last := n.Ledger().Stats().HeadNo
		for ctx.Err() == nil {
			time.Sleep(200 * time.Microsecond)
			if no := n.Ledger().Stats().HeadNo; no != last {
				now := time.Now()
				w.mu.Lock()
				for k := last + 1; k <= no; k++ {
					w.seen[k] = now
				}
				w.mu.Unlock()
				last = no
			}
		}
	}()
	return w
}

// sealedAt waits (at most a minute) for block no and returns when it was stored.
func (w *headWatch) sealedAt(b *testing.B, no uint64) time.Time {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		w.mu.Lock()
		at, ok := w.seen[no]
		w.mu.Unlock()
		if ok {
			return at
		}
		if time.Now().After(deadline) {
			b.Fatalf("block %d not mined within a minute", no)
		}
		time.Sleep(time.Millisecond)
	}
}

func reportSealLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	q := func(f float64) time.Duration { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
	b.ReportMetric(float64(q(0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(q(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d readings: seal latency p50 %v, p99 %v, max %v", len(lat), q(0.5).Round(time.Millisecond), q(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
}
