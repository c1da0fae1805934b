package rpc

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
)

// testNetwork is a network's authority, for admitting test members.
type testNetwork struct{ authority *network.Authority }

func newTestNetwork(t testing.TB, name string) *testNetwork {
	t.Helper()
	a, err := network.NewAuthority(name, ledger.MiningParams{Rate: 20, MeanBlockTime: time.Second, Variance: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	return &testNetwork{authority: a}
}

// member is a node admitted to a test network: its identity, its view of the
// network and its Auth.
type member struct {
	id      *ledger.Identity
	members *network.Members
	auth    *Auth
}

func (n *testNetwork) admit(t testing.TB) *member {
	t.Helper()
	id, err := ledger.GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := n.authority.Admit(id.Public, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := network.NewMembers(n.authority.Description, mem, "")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ms.Certificate(id)
	if err != nil {
		t.Fatal(err)
	}
	return &member{id: id, members: ms, auth: &Auth{Certificate: cert, Verify: ms.Verify}}
}

func (m *member) hex() string { return m.id.ID.Hex() }

// startCoAPS starts an authenticating CoAP node for m on loopback.
func startCoAPS(t testing.TB, m *member, h Handler, tweak ...func(*CoAPConfig)) *coapNode {
	t.Helper()
	return startCoAP(t, 0, "127.0.0.1:0", h, append([]func(*CoAPConfig){func(c *CoAPConfig) {
		c.Self = Peer{ID: m.hex()}
		c.Auth = m.auth
	}}, tweak...)...)
}

// peerEcho answers with the payload and the ID the transport authenticated.
func peerEcho(ctx context.Context, env *Envelope) *Envelope {
	peer, _ := AuthenticatedPeer(ctx)
	return &Envelope{Type: TypeFoundSuccessor, Payload: env.Payload, Key: peer}
}

func TestCoAPSCall(t *testing.T) {
	net := newTestNetwork(t, "test")
	ma, mb := net.admit(t), net.admit(t)
	a := startCoAPS(t, ma, peerEcho)
	b := startCoAPS(t, mb, peerEcho)
	if !strings.HasPrefix(a.Addr(), "coaps://") {
		t.Fatalf("Addr %q: want coaps://", a.Addr())
	}
	for _, size := range []int{10, 1000, 3000, 20000, 60000} {
		env := request(a.self, uint64(size), `"`+strings.Repeat("x", size)+`"`)
		env.To = b.self
		reply, err := a.Call(ctxTimeout(t, 10*time.Second), b.Addr(), env)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if string(reply.Payload) != string(env.Payload) || reply.Key != ma.hex() {
			t.Fatalf("size %d: reply %.80s, authenticated peer %q", size, reply.Payload, reply.Key)
		}
	}
}
