package coaps

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
)

// BenchmarkHandshakePSK times a full DTLS PSK handshake with a pion client
// on loopback: ClientHello, HelloVerifyRequest, ClientHello with the
// cookie, the PSK flights, Finished, and one datagram each way; one suite
// per sub-benchmark. Client and server share this machine's cores, so a
// handshake costs both sides' CPU. Under qemu-mipsel (the gateway):
//
//	GOARCH=mipsle GOMIPS=softfloat go test -c -o coaps.test ./coaps
//	qemu-mipsel-static ./coaps.test -test.run XXX -test.bench HandshakePSK -test.benchtime 50x
func BenchmarkHandshakePSK(b *testing.B) {
	for _, suite := range []dtls.CipherSuiteID{dtls.TLS_PSK_WITH_AES_128_CCM_8, dtls.TLS_PSK_WITH_AES_128_GCM_SHA256, dtls.TLS_PSK_WITH_CHACHA20_POLY1305_SHA256} {
		b.Run(suite.String(), func(b *testing.B) {
			e := &echo{}
			l := startListener(b, keyTable{"dev-1": "key-one"}, e.handle, Limits{})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			msg := make([]byte, 100)
			buf := make([]byte, 2048)
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					b.Fatal(err)
				}
				dc, err := dtls.ClientWithOptions(pc, net.UDPAddrFromAddrPort(l.Addr()),
					dtls.WithPSK(func([]byte) ([]byte, error) { return []byte("key-one"), nil }),
					dtls.WithPSKIdentityHint([]byte("dev-1")), dtls.WithCipherSuites(suite))
				if err != nil {
					b.Fatal(err)
				}
				if err := dc.HandshakeContext(ctx); err != nil {
					b.Fatal(err)
				}
				if _, err := dc.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := dc.Read(buf); err != nil {
					b.Fatal(err)
				}
				dc.Close()
			}
			elapsed := time.Since(start)
			b.StopTimer()
			per := elapsed / time.Duration(b.N)
			b.ReportMetric(float64(per.Microseconds())/1000, "ms/handshake")
			b.Logf("%d handshakes in %v: %v each (pion client and server on the same %d cores, %s)",
				b.N, elapsed.Round(time.Millisecond), per.Round(time.Microsecond), runtime.GOMAXPROCS(0), runtime.GOARCH)
		})
	}
}

// BenchmarkSessionMemory reports the Go heap an established session costs
// the listener (and its pion client, in this process too: the figure is an
// upper bound): b.N sessions are opened and held, and the heap measured
// before and after.
func BenchmarkSessionMemory(b *testing.B) {
	e := &echo{}
	l := startListener(b, keyTable{"dev-1": "key-one"}, e.handle, Limits{MaxSessions: b.N + 1, SessionsPerIP: b.N + 1})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]*dtls.Conn, 0, b.N)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range b.N {
		dc, err := dial(ctx, l, "", "dev-1", "key-one")
		if err != nil {
			b.Fatal(err)
		}
		roundTrip(b, dc, "x")
		conns = append(conns, dc)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(int64(after.HeapInuse+after.StackInuse)-int64(before.HeapInuse+before.StackInuse)) / float64(b.N)
	b.ReportMetric(per/1024, "KiB/session")
	b.Logf("%d sessions: %.1f KiB of heap and stacks each, server and pion client together (%s)", b.N, per/1024, runtime.GOARCH)
}

// BenchmarkHandshakeUnderFlood times a device's handshake (and one datagram
// each way) while ClientHellos that never echo their cookie flood the
// listener at about 10,000 a second (floodPause), with the gateway's
// handshake limits: from one IP address, or from 16; for a device whose
// address had a session before (known) and for one whose address never did
// (new: each handshake from another 127.0.2.x address). A handshake that
// does not complete in 5 s counts as failed.
func BenchmarkHandshakeUnderFlood(b *testing.B) {
	for _, tc := range []struct {
		name    string
		ips     int
		sockets int
		known   bool
	}{{"one-IP/new", 1, 4, false}, {"16-IPs/known", 16, 1, true}, {"16-IPs/new", 16, 1, false}} {
		b.Run(tc.name, func(b *testing.B) {
			e := &echo{}
			lim := GatewayLimits()
			l := startListener(b, keyTable{"dev-1": "key-one"}, e.handle, lim)
			if tc.known {
				dc, err := dial(b.Context(), l, "", "dev-1", "key-one")
				if err != nil {
					b.Fatal(err)
				}
				dc.Close()
			}
			stop := make(chan struct{})
			var sent []*atomic.Int64
			for i := range tc.ips {
				sent = append(sent, flood(b, l, net.IPv4(127, 0, 1, byte(10+i)), tc.sockets, stop))
			}
			defer close(stop)
			time.Sleep(500 * time.Millisecond) // let the flood fill the table
			failed := 0
			var took time.Duration
			b.ResetTimer()
			for i := range b.N {
				local := ""
				if !tc.known {
					local = fmt.Sprintf("127.0.2.%d:0", 1+i%250)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				start := time.Now()
				dc, err := dial(ctx, l, local, "dev-1", "key-one")
				cancel()
				if err != nil {
					failed++
					continue
				}
				roundTrip(b, dc, "x")
				took += time.Since(start)
				dc.Close()
			}
			b.StopTimer()
			var total int64
			for _, s := range sent {
				total += s.Load()
			}
			ok := b.N - failed
			if ok > 0 {
				b.ReportMetric(float64((took/time.Duration(ok)).Microseconds())/1000, "ms/handshake")
			}
			b.ReportMetric(float64(failed)/float64(b.N)*100, "%failed")
			b.Logf("%s: %d of %d handshakes failed; %d ClientHellos flooded; %d pushed out, %d refused (%s)",
				tc.name, failed, b.N, total, l.Stats().PushedOut.Load(), l.Stats().Refused.Load(), runtime.GOARCH)
		})
	}
}
