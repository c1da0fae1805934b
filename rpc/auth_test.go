package rpc

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
)

var testMining = ledger.MiningParams{Rate: 20, MeanBlockTime: time.Second, Variance: 0.2}

func newMember(t testing.TB, a *network.Authority) *member {
	t.Helper()
	return (&testNetwork{authority: a}).admit(t)
}

// as makes a WS node authenticate as m.
func (m *member) as(cfg *WSConfig) {
	cfg.Self.ID = m.id.ID.Hex()
	cfg.Auth = m.auth
}

// counting answers like echo and counts the messages it handled and the
// authenticated sender of the last one.
type counting struct {
	n    atomic.Int64
	peer atomic.Value
}

func (c *counting) handle(ctx context.Context, env *Envelope) *Envelope {
	c.n.Add(1)
	if p, ok := AuthenticatedPeer(ctx); ok {
		c.peer.Store(p)
	}
	return echo(ctx, env)
}

func TestWSAuthenticatesPeers(t *testing.T) {
	netA, _ := network.NewAuthority("net-a", testMining)
	netB, _ := network.NewAuthority("net-b", testMining)
	ma, mb, stranger := newMember(t, netA), newMember(t, netA), newMember(t, netB)
	var hb counting
	a := startWS(t, 1, "127.0.0.1:0", echo, ma.as)
	b := startWS(t, 2, "127.0.0.1:0", hb.handle, mb.as)
	s := startWS(t, 3, "127.0.0.1:0", echo, stranger.as)
	to := Peer{ID: b.self.ID, Addr: b.self.Addr}

	// A member calls a member: the handler sees who called.
	env := request(a.self, 1, `{"n":1}`)
	env.To = to
	r, err := a.Call(ctxTimeout(t, 5*time.Second), b.self.Addr, env)
	if err != nil || string(r.Payload) != `{"n":1}` || r.From.ID != b.self.ID {
		t.Fatalf("member call: %+v %v", r, err)
	}
	if got := hb.peer.Load(); got != a.self.ID {
		t.Fatalf("handler saw peer %v, want %s", got, a.self.ID)
	}

	// A node of another network is refused at the handshake, both ways.
	handled := hb.n.Load()
	env = request(s.self, 2, `{}`)
	env.To = to
	if _, err := s.Call(ctxTimeout(t, 5*time.Second), b.self.Addr, env); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "not a member") {
		t.Fatalf("another network's node: %v", err)
	}
	env = request(b.self, 3, `{}`)
	env.To = Peer{ID: s.self.ID, Addr: s.self.Addr}
	if _, err := b.Call(ctxTimeout(t, 5*time.Second), s.self.Addr, env); err == nil {
		t.Fatal("a member accepted a server of another network")
	}

	// A client that does not authenticate, speaking the plain wire format.
	c := rawWS(t, b, b.self.ID)
	frame, _ := testCodec.Encode(&Envelope{Type: TypeFindSuccessor, ID: 4, From: a.self, To: to, Payload: []byte(`{}`)})
	c.WriteMessage(websocket.TextMessage, frame)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Fatal("an unauthenticated client got an answer")
	}

	// A member that claims to be another node in From.
	forged := request(Peer{ID: stranger.id.ID.Hex(), Addr: "ws://127.0.0.1:9"}, 5, `{}`)
	forged.To = to
	r, err = a.Call(ctxTimeout(t, 5*time.Second), b.self.Addr, forged)
	var re *RemoteError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "authenticated as") {
		t.Fatalf("forged from: %+v %v", r, err)
	}

	// A dial that expects another node at the address is refused.
	// A member that answers at its address under another node's ID (its
	// URL path and Self claim node S; its membership is A's) is refused by
	// a dialer that expects S.
	impostor := startWS(t, 4, "127.0.0.1:0", echo, func(cfg *WSConfig) { cfg.Auth = ma.auth; cfg.Self.ID = s.self.ID })
	wrong := request(b.self, 6, `{}`)
	wrong.To = Peer{ID: s.self.ID, Addr: impostor.self.Addr}
	if _, err := b.Call(ctxTimeout(t, 5*time.Second), impostor.self.Addr, wrong); err == nil || !strings.Contains(err.Error(), "the node at this address is "+a.self.ID) {
		t.Fatalf("a dial for node S reached node A: %v", err)
	}
	if hb.n.Load() != handled {
		t.Fatalf("B handled %d messages from peers that did not authenticate", hb.n.Load()-handled)
	}
	if b.Stats().Refused < 3 {
		t.Fatalf("refusals counted: %d", b.Stats().Refused)
	}

	// Revoked: the open connection is dropped, and the next dial refused.
	r0, _ := netA.Revoke(ma.id.ID, "test")
	if _, err := mb.members.Revoke(r0); err != nil {
		t.Fatal(err)
	}
	b.Reverify()
	env = request(a.self, 7, `{}`)
	env.To = to
	if _, err := a.Call(ctxTimeout(t, 5*time.Second), b.self.Addr, env); err == nil {
		t.Fatal("a revoked member was still served")
	}
}
