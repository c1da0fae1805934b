package rpc

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestMultiMixedRing: a node with WS and CoAP calls a WS-only node and a
// CoAP-only node, and each answers back over its own transport.
func TestMultiMixedRing(t *testing.T) {
	got := make(chan *Envelope, 2)
	collect := func(ctx context.Context, env *Envelope) *Envelope { got <- env; return nil }
	ws := startWS(t, 1, "127.0.0.1:0", collect)
	cp := startCoAP(t, 1, "127.0.0.1:0", collect, func(c *CoAPConfig) { c.Self.ID = nodeID(1) })
	a := NewMulti(map[string]Transport{SchemeWS: ws, SchemeCoAP: cp})
	t.Cleanup(func() { a.Close() })

	wsPeer := startWS(t, 2, "127.0.0.1:0", echo)
	coapPeer := startCoAP(t, 3, "127.0.0.1:0", echo)
	ctx := ctxTimeout(t, 10*time.Second)
	for i, p := range []Peer{wsPeer.self, coapPeer.self} {
		req := request(ws.self, uint64(i+1), `"hi"`)
		req.To = p
		r, err := a.Call(ctx, p.Addr, req)
		if err != nil || r.ID != uint64(i+1) || r.From != p {
			t.Fatalf("call to %s: %+v %v", p.Addr, r, err)
		}
	}
	// The peers answer Sends over their own transports, back to a.
	mem := NewMemNetwork()
	wsBack, coapBack := wsPeer.WS, coapPeer.CoAP
	for _, back := range []struct {
		t    Transport
		addr string
	}{{wsBack, ws.self.Addr}, {coapBack, cp.self.Addr}} {
		if err := back.t.Send(ctx, back.addr, &Envelope{Type: TypeNotifySuccessor, ID: 9, From: Peer{ID: nodeID(2), Addr: "mem://x"}}); err != nil {
			t.Fatal(err)
		}
		if env := <-got; env.ID != 9 {
			t.Fatalf("got %+v", env)
		}
	}
	_ = mem
	if s := a.Stats(); s.Calls != 2 || s.Received < 4 {
		t.Errorf("stats %+v", s)
	}
	if _, err := a.Call(ctx, "mem://x", request(ws.self, 5, `1`)); !errors.Is(err, ErrBadAddr) {
		t.Errorf("call to a scheme without transport: %v", err)
	}
	if err := a.Send(ctx, "tcp://x:1", request(ws.self, 5, `1`)); !errors.Is(err, ErrBadAddr) {
		t.Errorf("send to a bad address: %v", err)
	}
}
