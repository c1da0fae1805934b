package rpc

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRoundTrip measures Calls between two nodes on loopback, one at a
// time and 16 at once, with a 300-byte payload each way. It reports calls/s
// and the median and 99th percentile latency of one call; it never fails on
// timing. make bench runs ws/seq and coap/seq: the bare round trip a Chord
// lookup hop costs.
// Run with -benchtime=100000x to take CoAP past a message-ID wrap.
func BenchmarkRoundTrip(b *testing.B) {
	payload := `"` + strings.Repeat("x", 298) + `"`
	for _, k := range []struct {
		name string
		pair func(b *testing.B) (Transport, Peer, string)
	}{
		{"ws", func(b *testing.B) (Transport, Peer, string) {
			a := startWS(b, 1, "127.0.0.1:0", echo)
			s := startWS(b, 2, "127.0.0.1:0", echo)
			return a, a.self, s.self.Addr
		}},
		{"coap", func(b *testing.B) (Transport, Peer, string) {
			a := startCoAP(b, 1, "127.0.0.1:0", echo)
			s := startCoAP(b, 2, "127.0.0.1:0", echo)
			return a, a.self, s.self.Addr
		}},
		{"coaps", func(b *testing.B) (Transport, Peer, string) {
			net := newTestNetwork(b, "bench")
			a := startCoAPS(b, net.admit(b), echo)
			s := startCoAPS(b, net.admit(b), echo)
			return a, a.self, s.self.Addr
		}},
		{"mem", func(b *testing.B) (Transport, Peer, string) {
			n := NewMemNetwork()
			a, _ := n.Transport(Peer{ID: nodeID(1), Addr: "mem://a"}, echo)
			s, _ := n.Transport(Peer{ID: nodeID(2), Addr: "mem://b"}, echo)
			b.Cleanup(func() { a.Close(); s.Close() })
			return a, a.self, "mem://b"
		}},
	} {
		for _, conc := range []int{1, 16} {
			name := k.name + "/seq"
			if conc > 1 {
				name = k.name + "/conc16"
			}
			b.Run(name, func(b *testing.B) {
				a, self, addr := k.pair(b)
				roundTrips(b, a, self, addr, payload, conc)
			})
		}
	}
}

func roundTrips(b *testing.B, a Transport, self Peer, addr, payload string, conc int) {
	ctx := context.Background()
	if _, err := a.Call(ctx, addr, request(self, 0, payload)); err != nil { // connect
		b.Fatal(err)
	}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				env := request(self, uint64(i+1), payload)
				t0 := time.Now()
				r, err := a.Call(ctx, addr, env)
				lat[i] = time.Since(t0)
				if err != nil || r.ID != env.ID || len(r.Payload) != len(payload) {
					failed.Store(true)
					b.Errorf("call %d: %v %v", i+1, r, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
	// Fractional µs: a loopback call is tens of µs, and make bench multiplies
	// this figure by a lookup's hops (scripts/benchtable).
	b.ReportMetric(float64(lat[len(lat)/2])/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e3, "p99-µs")
}

// BenchmarkCodec measures encoding and decoding one envelope like the ones
// above.
func BenchmarkCodec(b *testing.B) {
	env := request(Peer{ID: nodeID(1), Addr: "ws://127.0.0.1:8000"}, 12345, `{"data":"`+strings.Repeat("x", 280)+`"}`)
	env.To = Peer{ID: nodeID(2), Addr: "ws://127.0.0.1:8001"}
	data, _ := testCodec.Encode(env)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := testCodec.Encode(env); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := testCodec.Decode(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
