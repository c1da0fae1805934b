package rpc

import (
	"context"
	"errors"
	nnet "net"
	"sync"
	"testing"
	"time"
)

// slowRelay forwards UDP datagrams between one client and target, delaying
// those that come back by delay: a path with a long round trip.
type slowRelay struct {
	ln    *nnet.UDPConn
	up    *nnet.UDPConn
	delay time.Duration

	mu     sync.Mutex
	client *nnet.UDPAddr
}

func startSlowRelay(t *testing.T, target string, delay time.Duration) *slowRelay {
	t.Helper()
	ln, err := nnet.ListenUDP("udp", &nnet.UDPAddr{IP: nnet.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	raddr, err := nnet.ResolveUDPAddr("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	up, err := nnet.DialUDP("udp", nil, raddr)
	if err != nil {
		t.Fatal(err)
	}
	r := &slowRelay{ln: ln, up: up, delay: delay}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); up.Close(); wg.Wait() })
	wg.Add(2)
	go func() { // client → target, at once
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, from, err := ln.ReadFromUDP(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.client = from
			r.mu.Unlock()
			_, _ = up.Write(buf[:n])
		}
	}()
	go func() { // target → client, late
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, err := up.Read(buf)
			if err != nil {
				return
			}
			b := append([]byte(nil), buf[:n]...)
			r.mu.Lock()
			to := r.client
			r.mu.Unlock()
			time.AfterFunc(delay, func() { _, _ = ln.WriteToUDP(b, to) })
		}
	}()
	return r
}

// TestCoAPSDialSlowPath: a dial over a path whose round trip is longer than
// fetchCookie's first wait (100 ms) sends its probe again and gets two
// HelloVerifyRequests; the late one must not derail the handshake (it made
// every such dial time out: see afterCookie).
func TestCoAPSDialSlowPath(t *testing.T) {
	net := newTestNetwork(t, "test")
	ma, mb := net.admit(t), net.admit(t)
	a := startCoAPS(t, ma, peerEcho, func(c *CoAPConfig) { c.Call.Retries = -1 })
	b := startCoAPS(t, mb, peerEcho)
	relay := startSlowRelay(t, b.LocalAddr().String(), 150*time.Millisecond)
	env := request(a.self, 1, `"hi"`)
	env.To = b.self
	reply, err := a.Call(ctxTimeout(t, 10*time.Second), "coaps://"+relay.ln.LocalAddr().String(), env)
	if err != nil {
		t.Fatalf("call over a 150 ms path: %v", err)
	}
	if reply.Key != ma.hex() {
		t.Fatalf("authenticated as %q, want %s", reply.Key, ma.hex())
	}
}

// TestCoAPSLateSendKeepsSession: a one-way message that misses its deadline
// is lost, but the session it was to go on stays up: the next message uses
// it, without a new handshake.
func TestCoAPSLateSendKeepsSession(t *testing.T) {
	net := newTestNetwork(t, "test")
	ma, mb := net.admit(t), net.admit(t)
	var rb recorder
	a := startCoAPS(t, ma, echo, func(c *CoAPConfig) { c.Call.Retries = -1 })
	b := startCoAPS(t, mb, rb.handle)
	send := func(ctx context.Context, id uint64) error {
		return a.Send(ctx, b.Addr(), &Envelope{Type: TypeNotifyStabilize, ID: id, From: a.self, To: b.self})
	}
	if err := send(ctxTimeout(t, 10*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	dials := a.Stats().Dials
	late, cancel := context.WithCancel(context.Background())
	cancel()
	if err := send(late, 2); !errors.Is(err, context.Canceled) {
		t.Fatalf("a send past its deadline: %v, want context.Canceled", err)
	}
	// A one-way message may be lost (a datagram): send again until one
	// arrives.
	id := uint64(2)
	if !eventually(func() bool {
		id++
		if err := send(ctxTimeout(t, 10*time.Second), id); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			if _, ok := rb.onewayFrom(id); ok {
				return true
			}
			time.Sleep(10 * time.Millisecond)
		}
		return false
	}) {
		t.Fatal("no message after the late one arrived")
	}
	if d := a.Stats().Dials - dials; d != 0 {
		t.Fatalf("%d new handshakes after a late send, want 0 (the session was closed)", d)
	}
}
