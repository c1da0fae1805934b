package coap

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// Durable readings per second over CoAP: devices (one UDP socket each) POST
// 300-byte readings to /object/{id}/send, each waiting for its response
// before the next (NSTART 1, as RFC 7252 has a device do), against a fake
// Devices (the front alone) and against a started node (node.Put: signed and
// synced to the store). CON requests are retransmitted after a timeout; a NON
// request whose response does not come is counted lost and not retried.
// Run: go test -run XXX -bench CoAP -benchtime 20000x ./wot/coap/

func BenchmarkCoAPFake(b *testing.B) {
	for _, clients := range []int{1, 32} {
		for _, typ := range []message.Type{message.Confirmable, message.NonConfirmable} {
			b.Run(fmt.Sprintf("%s/devices=%d", typName(typ), clients), func(b *testing.B) {
				dev := newFakeDevices()
				_, addr := startFront(b, dev)
				benchPosts(b, addr, clients, typ, func() int {
					n := 0
					for i := range clients {
						n += len(dev.readings(fmt.Sprint("bench-", i)))
					}
					return n
				})
			})
		}
	}
}

func BenchmarkCoAPNode(b *testing.B) {
	for _, clients := range []int{1, 32} {
		for _, typ := range []message.Type{message.Confirmable, message.NonConfirmable} {
			b.Run(fmt.Sprintf("%s/devices=%d", typName(typ), clients), func(b *testing.B) {
				_, dev, addr := startNode(b)
				benchPosts(b, addr, clients, typ, func() int { return int(dev.stored.Load()) })
			})
		}
	}
}

func typName(t message.Type) string {
	if t == message.Confirmable {
		return "CON"
	}
	return "NON"
}

// benchPosts runs b.N posts from clients devices, each on a UDP socket of
// its own, and reports the readings stored (as stored counts them) per
// second.
func benchPosts(b *testing.B, addr string, clients int, typ message.Type, stored func() int) {
	dst := netip.MustParseAddrPort(addr)
	benchPostsOn(b, clients, typ, stored, func(int) (net.Conn, error) {
		return net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(dst))
	})
}

// benchPostsOn runs b.N posts from clients devices, each on the connection
// dial makes for it (all made before the clock starts), and reports the
// readings stored per second.
func benchPostsOn(b *testing.B, clients int, typ message.Type, stored func() int, dial func(i int) (net.Conn, error)) {
	reading := []byte(`{"celsius":21.5,"pad":"` + strings.Repeat("x", 300-26) + `"}`)
	conns := make([]net.Conn, clients)
	for i := range conns {
		c, err := dial(i)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	var next atomic.Int64
	var lost, retrans atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := conns[i]
			buf := make([]byte, 4096)
			mid := uint16(i * 1000)
			path := fmt.Sprint("bench-", i)
			for next.Add(1) <= int64(b.N) {
				mid++
				m := &message.Message{Type: typ, Code: codes.POST, MessageID: int32(mid), Token: []byte{byte(mid >> 8), byte(mid)}, Payload: reading,
					Options: message.Options{{ID: message.URIPath, Value: []byte("object")}, {ID: message.URIPath, Value: []byte(path)},
						{ID: message.URIPath, Value: []byte("send")}, uintOpt(message.ContentFormat, uint32(cfJSON))}}
				dgram, _ := encode(m)
				for try := 0; ; try++ {
					_, _ = c.Write(dgram)
					if waitResponse(c, buf, m.Token, 2*time.Second) {
						break
					}
					if typ == message.NonConfirmable || try == 4 {
						lost.Add(1)
						break
					}
					retrans.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	// Every response came after its reading was stored.
	elapsed := time.Since(start)
	b.StopTimer()
	n := stored()
	rate := float64(n) / elapsed.Seconds()
	b.ReportMetric(rate, "readings/s")
	b.Logf("%d readings stored of %d posted in %v: %.0f durable readings/s (%d devices, %d lost, %d retransmitted; GOMAXPROCS %d, %s)",
		n, b.N, elapsed.Round(time.Millisecond), rate, clients, lost.Load(), retrans.Load(), runtime.GOMAXPROCS(0), runtime.GOARCH)
}

// waitResponse reads until the response with token comes, or wait passes.
func waitResponse(c net.Conn, buf, token []byte, wait time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(wait))
	for {
		n, err := c.Read(buf)
		if err != nil {
			return false
		}
		m, err := decode(buf[:n])
		if err == nil && string(m.Token) == string(token) && m.Code != codes.Empty {
			return true
		}
	}
}

// BenchmarkCoAPSFake compares confirmable POSTs over DTLS PSK (the coaps
// port, AES-128-CCM-8) with plain CoAP, against a fake Devices: the cost of
// the session's encryption and of the coaps listener's routing. The DTLS
// handshakes happen before the clock starts (BenchmarkHandshakePSK in
// package coaps times them).
// Run: go test -run XXX -bench CoAPS -benchtime 20000x ./wot/coap/
func BenchmarkCoAPSFake(b *testing.B) {
	for _, clients := range []int{1, 32} {
		b.Run(fmt.Sprintf("plain/devices=%d", clients), func(b *testing.B) {
			dev := newFakeDevices()
			_, addr := startFront(b, dev)
			benchPosts(b, addr, clients, message.Confirmable, fakeStored(dev, clients))
		})
		b.Run(fmt.Sprintf("coaps/devices=%d", clients), func(b *testing.B) {
			dev := newFakeDevices()
			_, l := startSecureFront(b, dev, func(c *Config) { c.Authorize = nil })
			benchPostsOn(b, clients, message.Confirmable, fakeStored(dev, clients), func(int) (net.Conn, error) {
				return dialPSKConn(l.Addr(), "urn:dev:sensor-a")
			})
		})
	}
}

func fakeStored(dev *fakeDevices, clients int) func() int {
	return func() int {
		n := 0
		for i := range clients {
			n += len(dev.readings(fmt.Sprint("bench-", i)))
		}
		return n
	}
}

// BenchmarkCoAPSNode: confirmable POSTs over coaps to a started node (its
// --coaps port, node.ServeDeviceCoAPS), each reading durable before its
// response; against BenchmarkCoAPNode's plain CoAP.
func BenchmarkCoAPSNode(b *testing.B) {
	for _, clients := range []int{1, 32} {
		b.Run(fmt.Sprintf("coaps/devices=%d", clients), func(b *testing.B) {
			n, dev := startSecureNode(b)
			to := netip.MustParseAddrPort(n.CoAPSAddr())
			benchPostsOn(b, clients, message.Confirmable, func() int { return int(dev.stored.Load()) }, func(int) (net.Conn, error) {
				return dialPSKConn(to, "urn:dev:sensor-a")
			})
		})
	}
}
