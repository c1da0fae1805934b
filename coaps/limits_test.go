package coaps

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v3/pkg/protocol"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"
)

// clientHello is a ClientHello without a cookie, as a source that never
// completes its handshake (or a forged one) sends.
func clientHello(t testing.TB) []byte {
	t.Helper()
	var random handshake.Random
	if err := random.Populate(); err != nil {
		t.Fatal(err)
	}
	r := recordlayer.RecordLayer{
		Header: recordlayer.Header{Version: protocol.Version1_2},
		Content: &handshake.Handshake{Message: &handshake.MessageClientHello{
			Version: protocol.Version1_2, Random: random,
			CipherSuiteIDs:     []uint16{uint16(suites[0])},
			CompressionMethods: []*protocol.CompressionMethod{{ID: 0}},
		}},
	}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if rec, ok := parseRecord(b); !ok || !rec.clientHello || rec.cookie {
		t.Fatalf("parseRecord(our ClientHello) = %+v, %v", rec, ok)
	}
	return b
}

// floodPause paces each flood socket: 8 ClientHellos per pause, about
// 2,700 a second per socket. An unpaced flood from this machine takes both
// of its cores, which an attacker elsewhere would not.
const floodPause = 3 * time.Millisecond

// flood sends ClientHellos from n sockets bound to ip (new source ports
// each round, 8 ClientHellos per floodPause each) until stop closes; it
// returns how many it sent.
func flood(t testing.TB, l *Listener, ip net.IP, n int, stop <-chan struct{}) *atomic.Int64 {
	t.Helper()
	var sent atomic.Int64
	hello := clientHello(t)
	to := net.UDPAddrFromAddrPort(l.Addr())
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
				if err != nil {
					return
				}
				for range 8 {
					if _, err := c.WriteToUDP(hello, to); err == nil {
						sent.Add(1)
					}
				}
				c.Close()
				select {
				case <-stop:
					return
				case <-time.After(floodPause):
				}
			}
		}()
	}
	t.Cleanup(wg.Wait)
	return &sent
}

// TestHelloFloodFromOneIP: ClientHellos from one IP address, from many
// ports, never echoing a cookie, hold at most HandshakesPerIP handshakes;
// a device at another address completes its handshake meanwhile.
func TestHelloFloodFromOneIP(t *testing.T) {
	e := &echo{}
	lim := Limits{MaxHandshakes: 8, HandshakesPerIP: 2}
	l := startListener(t, keyTable{"dev-1": "key-one"}, e.handle, lim)
	stop := make(chan struct{})
	began := time.Now()
	sent := flood(t, l, net.IPv4(127, 0, 0, 2), 4, stop)
	defer close(stop)
	eventually(t, "the flood to start", func() bool { return sent.Load() > 1000 })
	var worst int
	var mu sync.Mutex
	watch := make(chan struct{})
	go func() { // the table's size throughout
		defer close(watch)
		for {
			_, hs := l.Sessions()
			mu.Lock()
			worst = max(worst, hs)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	// Devices come and go for 2 s of flood; every one gets in.
	done := 0
	for time.Since(began) < 2*time.Second || done < 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		dc, err := dial(ctx, l, "", "dev-1", "key-one")
		cancel()
		if err != nil {
			t.Fatalf("handshake %d during the flood: %v", done, err)
		}
		if got := roundTrip(t, dc, "hi"); got != "dev-1|hi" {
			t.Fatalf("answer %q", got)
		}
		dc.Close()
		done++
	}
	mu.Lock()
	w := worst
	mu.Unlock()
	// The flood's share plus the device's own handshake.
	if w > lim.HandshakesPerIP+1 {
		t.Fatalf("up to %d handshakes in progress, want at most %d", w, lim.HandshakesPerIP+1)
	}
	t.Logf("%d ClientHellos sent (%.0f/s); %d handshakes of the device meanwhile; %d refused; at most %d handshakes at once",
		sent.Load(), float64(sent.Load())/time.Since(began).Seconds(), done, l.Stats().Refused.Load(), w)
}

// TestHelloFloodFromManyIPs: forged ClientHellos from many addresses fill
// the handshake table, but never echo a cookie, so the handshake of a
// device that had a session pushes the oldest out and completes.
func TestHelloFloodFromManyIPs(t *testing.T) {
	e := &echo{}
	lim := Limits{MaxHandshakes: 8, HandshakesPerIP: 2}
	l := startListener(t, keyTable{"dev-1": "key-one"}, e.handle, lim)
	first, err := dial(t.Context(), l, "", "dev-1", "key-one")
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	stop := make(chan struct{})
	began := time.Now()
	var sent []*atomic.Int64
	for i := range 16 {
		sent = append(sent, flood(t, l, net.IPv4(127, 0, 1, byte(10+i)), 1, stop))
	}
	defer close(stop)
	eventually(t, "the table to fill", func() bool { _, hs := l.Sessions(); return hs >= lim.MaxHandshakes })
	done := 0
	for time.Since(began) < 2*time.Second || done < 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		dc, err := dial(ctx, l, "", "dev-1", "key-one")
		cancel()
		if err != nil {
			t.Fatalf("handshake %d during the flood: %v", done, err)
		}
		dc.Close()
		done++
	}
	if _, hs := l.Sessions(); hs > lim.MaxHandshakes {
		t.Fatalf("%d handshakes in progress, over %d", hs, lim.MaxHandshakes)
	}
	var total int64
	for _, s := range sent {
		total += s.Load()
	}
	t.Logf("%d forged ClientHellos from 16 addresses (%.0f/s); %d handshakes of the device meanwhile; %d pushed out",
		total, float64(total)/time.Since(began).Seconds(), done, l.Stats().PushedOut.Load())
}

// TestSessionLimits: past SessionsPerIP, a new session takes the place of
// one silent for evictAfter, or fails its handshake when all are active;
// MaxSessions likewise.
func TestSessionLimits(t *testing.T) {
	e := &echo{}
	l := startListener(t, keyTable{"dev-1": "key-one"}, e.handle, Limits{MaxSessions: 3, SessionsPerIP: 2, HandshakeTimeout: 3 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 2 {
		dc, err := dial(ctx, l, "", "dev-1", "key-one")
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, dc)
	}
	if _, err := dial(ctx, l, "", "dev-1", "key-one"); err == nil {
		t.Fatal("a third session from one IP while both are active")
	}
	// From another IP: MaxSessions allows one more, not two.
	dc, err := dial(ctx, l, "127.0.0.3:0", "dev-1", "key-one")
	if err != nil {
		t.Fatal(err)
	}
	conns = append(conns, dc)
	if _, err := dial(ctx, l, "127.0.0.4:0", "dev-1", "key-one"); err == nil {
		t.Fatal("a fourth session past MaxSessions while all are active")
	}
	// Once sessions may give way, the silent one does.
	l.mu.Lock()
	l.evictAfter = 0
	l.mu.Unlock()
	dc, err = dial(ctx, l, "127.0.0.4:0", "dev-1", "key-one")
	if err != nil {
		t.Fatalf("a new session when an old one may give way: %v", err)
	}
	conns = append(conns, dc)
	if s, _ := l.Sessions(); s != 3 {
		t.Fatalf("%d sessions, want 3", s)
	}
	if got := roundTrip(t, dc, "x"); got != "dev-1|x" {
		t.Fatalf("answer %q", got)
	}
}

// TestIdleSessionsClose: a session silent for IdleTimeout is closed.
func TestIdleSessionsClose(t *testing.T) {
	e := &echo{}
	l := startListener(t, keyTable{"dev-1": "key-one"}, e.handle, Limits{IdleTimeout: 500 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dc, err := dial(ctx, l, "", "dev-1", "key-one")
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	roundTrip(t, dc, "x")
	eventually(t, "the idle session to close", func() bool { s, _ := l.Sessions(); return s == 0 })
}

// TestForgedHelloKeepsSession: a ClientHello without a cookie from the
// address of an established session (forged, say) does not cut the
// session off: its records still reach it.
func TestForgedHelloKeepsSession(t *testing.T) {
	e := &echo{}
	l := startListener(t, keyTable{"dev-1": "key-one"}, e.handle, Limits{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	dc, err := dialOn(ctx, l, pc, "dev-1", "key-one")
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	// From the session's own socket: the listener cannot tell it from the
	// device's. (pion's client reads past the HelloVerifyRequest it gets.)
	if _, err := pc.WriteToUDPAddrPort(clientHello(t), l.Addr()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the forged handshake to start", func() bool { _, hs := l.Sessions(); return hs == 1 })
	for i := range 3 {
		if got := roundTrip(t, dc, fmt.Sprint("still ", i)); got != fmt.Sprint("dev-1|still ", i) {
			t.Fatalf("answer %q", got)
		}
	}
	if s, _ := l.Sessions(); s != 1 {
		t.Fatalf("%d sessions, want 1", s)
	}
}

// TestRestartReplacesSession: a device that starts over from the same
// address and port (it lost its session state; it sent no close_notify)
// completes a new handshake, which replaces its session.
func TestRestartReplacesSession(t *testing.T) {
	e := &echo{}
	l := startListener(t, keyTable{"dev-1": "key-one"}, e.handle, Limits{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	dc, err := dialOn(ctx, l, pc, "dev-1", "key-one")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, dc, "before")
	pc.Close() // the device dies: its close_notify never leaves
	dc.Close()
	dc2, err := dial(ctx, l, addr, "dev-1", "key-one")
	if err != nil {
		t.Fatal(err)
	}
	defer dc2.Close()
	if got := roundTrip(t, dc2, "after"); got != "dev-1|after" {
		t.Fatalf("answer %q", got)
	}
	if s, _ := l.Sessions(); s != 1 {
		t.Fatalf("%d sessions, want the new one only", s)
	}
}
