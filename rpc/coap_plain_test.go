package rpc

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// plainRecorder is a CoAPConfig.Plain that keeps what it gets and answers
// each datagram with "echo:" and the datagram.
type plainRecorder struct {
	mu  sync.Mutex
	got [][]byte
}

func (p *plainRecorder) handle(dgram []byte, from netip.AddrPort, reply func([]byte) error) {
	p.mu.Lock()
	p.got = append(p.got, dgram)
	p.mu.Unlock()
	_ = reply(append([]byte("echo:"), dgram...))
}

func (p *plainRecorder) all() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.got...)
}

// TestCoAPSPlainDemux: on an authenticating transport's port, plain CoAP
// datagrams (first byte 64..127, RFC 7983) go to Plain and its replies come
// from the same port, while peers keep speaking DTLS on it and nothing else
// reaches Plain.
func TestCoAPSPlainDemux(t *testing.T) {
	net0 := newTestNetwork(t, "test")
	ma, mb := net0.admit(t), net0.admit(t)
	var plain plainRecorder
	a := startCoAPS(t, ma, peerEcho)
	b := startCoAPS(t, mb, peerEcho, func(c *CoAPConfig) { c.Plain = plain.handle })

	uc, err := net.Dial("udp", strings.TrimPrefix(b.Addr(), "coaps://"))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	con := []byte{0x40, 0x01, 0x12, 0x34} // CoAP v1 CON GET, MID 0x1234
	non := []byte{0x50, 0x01, 0x12, 0x35} // NON
	for _, d := range [][]byte{con, {0x80, 1, 2, 3}, {0x13, 0xfe, 0xfd}, non} {
		if _, err := uc.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 64)
	for _, want := range [][]byte{con, non} {
		_ = uc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := uc.Read(buf)
		if err != nil {
			t.Fatalf("no reply to a plain CoAP datagram: %v", err)
		}
		if !bytes.Equal(buf[:n], append([]byte("echo:"), want...)) {
			t.Fatalf("reply %q, want the echo of %x", buf[:n], want)
		}
	}
	// Peers still speak DTLS on the port, and none of it reaches Plain.
	env := request(a.self, 1, `"over dtls"`)
	env.To = b.self
	if reply, err := a.Call(ctxTimeout(t, 10*time.Second), b.Addr(), env); err != nil || string(reply.Payload) != `"over dtls"` {
		t.Fatalf("DTLS call beside plain CoAP: %v %v", reply, err)
	}
	got := plain.all()
	if len(got) != 2 || !bytes.Equal(got[0], con) || !bytes.Equal(got[1], non) {
		t.Fatalf("Plain got %x, want only the two CoAP datagrams", got)
	}
}

func TestCoAPPlainNeedsAuth(t *testing.T) {
	_, err := NewCoAP(CoAPConfig{Self: Peer{ID: nodeID(1)}, Listen: "127.0.0.1:0",
		Handler: echo, Plain: func([]byte, netip.AddrPort, func([]byte) error) {}})
	if err == nil || !strings.Contains(err.Error(), "Plain needs Auth") {
		t.Fatalf("NewCoAP with Plain and no Auth: %v", err)
	}
}
