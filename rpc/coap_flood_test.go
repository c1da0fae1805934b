package rpc

import (
	"fmt"
	nnet "net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/dtls/v3/pkg/crypto/elliptic"
	"github.com/pion/dtls/v3/pkg/crypto/hash"
	"github.com/pion/dtls/v3/pkg/crypto/signature"
	"github.com/pion/dtls/v3/pkg/crypto/signaturehash"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
)

// memFigures reads the Go heap in use and the process's resident memory.
func memFigures() (heap uint64, rss string) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			rss = strings.Join(strings.Fields(l)[1:], " ")
		}
	}
	return ms.HeapInuse, rss
}

// floodSources sends, from each of n source addresses on loopback
// (127.0.0.2-127.0.0.41, a new port each), one datagram of each kind in
// dgrams to target, never answering: the spoofed sources of a flood.
func floodSources(t testing.TB, target *nnet.UDPAddr, n int, dgrams ...[]byte) {
	t.Helper()
	for i := range n {
		ip := nnet.IPv4(127, 0, 0, byte(2+i%40))
		c, err := nnet.ListenUDP("udp", &nnet.UDPAddr{IP: ip})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dgrams {
			_, _ = c.WriteToUDP(d, target)
		}
		c.Close()
	}
}

// TestCoAPSFlood floods an authenticating transport with ClientHellos and
// plain CoAP datagrams from 10,000 source addresses, and with handshakes that
// echo a cookie and then go silent, and checks that members still talk and
// that the memory it keeps is bounded. It logs the figures.
func TestCoAPSFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("floods loopback")
	}
	net := newTestNetwork(t, "test")
	ma, mb := net.admit(t), net.admit(t)
	var rb recorder
	short := func(c *CoAPConfig) { c.DialTimeout = time.Second }
	a := startCoAPS(t, ma, echo, short)
	b := startCoAPS(t, mb, rb.handle, short)
	call := func(id uint64) error {
		env := request(a.self, id, `"hi"`)
		env.To = b.self
		_, err := a.Call(ctxTimeout(t, 5*time.Second), b.Addr(), env)
		return err
	}
	if err := call(1); err != nil {
		t.Fatal(err)
	}
	target, _ := nnet.ResolveUDPAddr("udp", b.LocalAddr().String())
	hello, err := probeHello()
	if err != nil {
		t.Fatal(err)
	}
	env := request(Peer{ID: nodeID(5), Addr: "coap://127.0.0.1:1"}, 3, `"hi"`)
	env.To = b.self
	body, _ := b.codec.Encode(env)
	plain, _ := onewayDatagram(1, mb.hex(), body)

	heap0, rss0 := memFigures()
	const sources = 10000
	start := time.Now()
	floodSources(t, target, sources, hello, plain)
	took := time.Since(start)
	heap1, rss1 := memFigures()

	// Half-open handshakes: sources that echo a cookie, then go silent; 24
	// from each of 4 addresses, more than the bounds allow (16 per address,
	// 64 in all). Members' sessions go on; a new one waits for a slot.
	var halfOpen []*nnet.UDPConn
	for i := range 96 {
		c, err := nnet.DialUDP("udp", &nnet.UDPAddr{IP: nnet.IPv4(127, 0, 1, byte(2+i%4))}, target)
		if err != nil {
			t.Fatal(err)
		}
		halfOpen = append(halfOpen, c)
		cookie, err := fetchCookie(ctxTimeout(t, 2*time.Second), c)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := helloWithCookie(cookie)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(ch)
	}
	time.Sleep(50 * time.Millisecond)
	b.dsrv.mu.Lock()
	sessions, pending := len(b.dsrv.conns), b.dsrv.npend
	perIP := 0
	for _, n := range b.dsrv.pending {
		perIP = max(perIP, n)
	}
	b.dsrv.mu.Unlock()
	if pending != b.cfg.MaxHandshakes || perIP != maxHandshakesPerSource {
		t.Fatalf("%d handshakes in progress, at most %d from one address: want %d and %d", pending, perIP, b.cfg.MaxHandshakes, maxHandshakesPerSource)
	}
	heap2, rss2 := memFigures()
	if err := call(2); err != nil {
		t.Fatalf("members cannot talk during the half-open handshakes: %v", err)
	}
	for _, c := range halfOpen {
		c.Close()
	}
	if !eventually(func() bool {
		b.dsrv.mu.Lock()
		defer b.dsrv.mu.Unlock()
		return b.dsrv.npend == 0
	}) {
		t.Fatal("half-open handshakes never timed out")
	}
	// A new member's first handshake, after the flood.
	c := startCoAPS(t, net.admit(t), echo, short)
	env2 := request(c.self, 4, `"hi"`)
	if _, err := c.Call(ctxTimeout(t, 5*time.Second), b.Addr(), env2); err != nil {
		t.Fatalf("a new member after the flood: %v", err)
	}
	if n := rb.handled.Load(); n != 3 {
		t.Fatalf("%d messages handled, want the members' 3", n)
	}
	t.Logf("flood of %d sources (a ClientHello and a plain CoAP one-way POST each) in %v", sources, took.Round(time.Millisecond))
	t.Logf("Go heap in use: %s before, %s after the flood, %s with %d half-open handshakes (%d source entries)",
		mib(heap0), mib(heap1), mib(heap2), pending, sessions)
	t.Logf("VmRSS of the test process: %s before, %s after the flood, %s with the half-open handshakes", rss0, rss1, rss2)
	if heap1 > heap0+8<<20 {
		t.Fatalf("the flood grew the heap by %s", mib(heap1-heap0))
	}
	if pending > b.cfg.MaxHandshakes || sessions > b.cfg.MaxSessions {
		t.Fatalf("%d handshakes, %d sessions: over the bounds", pending, sessions)
	}
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// helloWithCookie is a ClientHello carrying cookie, as a dialer's first one.
func helloWithCookie(cookie []byte) ([]byte, error) {
	b, err := probeHello()
	if err != nil {
		return nil, err
	}
	ch, seq, ok := clientHello(b)
	if !ok {
		return nil, fmt.Errorf("probe does not parse")
	}
	ch.Cookie = cookie
	// What pion needs to answer it with its flight (else it fails at once).
	ch.Extensions = []extension.Extension{
		&extension.UseExtendedMasterSecret{Supported: true},
		&extension.SupportedEllipticCurves{EllipticCurves: []elliptic.Curve{elliptic.X25519}},
		&extension.SupportedPointFormats{PointFormats: []elliptic.CurvePointFormat{elliptic.CurvePointFormatUncompressed}},
		&extension.SupportedSignatureAlgorithms{SignatureHashAlgorithms: []signaturehash.Algorithm{{Hash: hash.Ed25519, Signature: signature.Ed25519}}},
	}
	return encodeHello(ch, seq)
}
