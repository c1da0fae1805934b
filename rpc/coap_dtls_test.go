package rpc

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	nnet "net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	dtlsnet "github.com/pion/dtls/v3/pkg/net"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/udp"

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

// recorder is a handler that counts what it handles and keeps the one-way
// messages with the ID their sender authenticated as.
type recorder struct {
	handled atomic.Int64
	mu      sync.Mutex
	oneway  map[uint64]string // envelope ID → authenticated peer
}

func (r *recorder) handle(ctx context.Context, env *Envelope) *Envelope {
	r.handled.Add(1)
	peer, _ := AuthenticatedPeer(ctx)
	if env.Type == TypeNotifyStabilize {
		r.mu.Lock()
		if r.oneway == nil {
			r.oneway = map[uint64]string{}
		}
		r.oneway[env.ID] = peer
		r.mu.Unlock()
		return nil
	}
	return &Envelope{Type: TypeFoundSuccessor, Payload: env.Payload, Key: peer}
}

func (r *recorder) onewayFrom(id uint64) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.oneway[id]
	return p, ok
}

func TestCoAPSSendBothWays(t *testing.T) {
	net := newTestNetwork(t, "test")
	ma, mb := net.admit(t), net.admit(t)
	var ra, rb recorder
	a := startCoAPS(t, ma, ra.handle)
	b := startCoAPS(t, mb, rb.handle)
	for i, size := range []int{10, 1300, 3000, 20000, 60000} {
		for _, dir := range []struct {
			from, to *coapNode
			m        *member
			r        *recorder
		}{{a, b, ma, &rb}, {b, a, mb, &ra}} {
			env := &Envelope{Type: TypeNotifyStabilize, ID: uint64(i + 1), From: dir.from.self, To: dir.to.self,
				Payload: json.RawMessage(`"` + strings.Repeat("y", size) + `"`)}
			if err := dir.from.Send(ctxTimeout(t, 10*time.Second), dir.to.Addr(), env); err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			var peer string
			if !eventually(func() (ok bool) { peer, ok = dir.r.onewayFrom(env.ID); return ok }) {
				t.Fatalf("size %d: the one-way message never arrived", size)
			}
			if peer != dir.m.hex() {
				t.Fatalf("size %d: handled as from %q, want %s", size, peer, dir.m.hex())
			}
		}
	}
	// Calls both ways, on the sessions the Sends opened.
	for _, p := range [][2]*coapNode{{a, b}, {b, a}} {
		env := request(p[0].self, 77, `"ping"`)
		env.To = p[1].self
		reply, err := p[0].Call(ctxTimeout(t, 5*time.Second), p[1].Addr(), env)
		if err != nil || reply.Key != p[0].self.ID {
			t.Fatalf("call %s → %s: %v, %+v", p[0].self.ID[:8], p[1].self.ID[:8], err, reply)
		}
	}
}

// TestCoAPSRefusesOutsiders: a node of another network, a client with no
// certificate and a plain CoAP client get nothing handled.
func TestCoAPSRefusesOutsiders(t *testing.T) {
	net := newTestNetwork(t, "test")
	mb := net.admit(t)
	var refused atomic.Int64
	mb.auth.Refused = func(string, error) { refused.Add(1) }
	var rb recorder
	b := startCoAPS(t, mb, rb.handle, func(c *CoAPConfig) { c.DialTimeout = time.Second })

	t.Run("other network", func(t *testing.T) {
		other := newTestNetwork(t, "test").admit(t) // same name, another authority
		// It would refuse b itself; make it accept anyone, to see b refuse it.
		other.auth.Verify = func(chain []*x509.Certificate) (string, error) { return chain[0].Subject.CommonName, nil }
		o := startCoAPS(t, other, echo, func(c *CoAPConfig) { c.DialTimeout = time.Second; c.Call.Retries = -1 })
		env := request(o.self, 1, `"hi"`)
		_, err := o.Call(ctxTimeout(t, 5*time.Second), b.Addr(), env)
		if err == nil {
			t.Fatal("a node of another network was answered")
		}
		if !eventually(func() bool { return refused.Load() > 0 && b.Stats().Refused > 0 }) {
			t.Fatalf("refusal not reported: Refused %d, stats %+v", refused.Load(), b.Stats())
		}
		// And it refuses b: its own Verify, the real one, would.
		o2 := startCoAPS(t, newTestNetwork(t, "test").admit(t), echo, func(c *CoAPConfig) { c.DialTimeout = time.Second; c.Call.Retries = -1 })
		if _, err := o2.Call(ctxTimeout(t, 5*time.Second), b.Addr(), request(o2.self, 2, `"hi"`)); !errors.Is(err, ErrAuth) {
			t.Fatalf("dialing a node of another network: %v, want ErrAuth", err)
		}
	})

	t.Run("no certificate", func(t *testing.T) {
		raddr, _ := nnet.ResolveUDPAddr("udp", b.LocalAddr().String())
		conn, err := nnet.DialUDP("udp", nil, raddr)
		if err != nil {
			t.Fatal(err)
		}
		ctx := ctxTimeout(t, 3*time.Second)
		cookie, err := fetchCookie(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		cfg := &dtls.Config{CipherSuites: dtlsSuites, InsecureSkipVerify: true, ExtendedMasterSecret: dtls.RequireExtendedMasterSecret,
			ClientHelloMessageHook: func(ch handshake.MessageClientHello) handshake.Message { ch.Cookie = cookie; return &ch }}
		dc, err := dtls.Client(dtlsnet.PacketConnFromConn(conn), raddr, cfg) //nolint:staticcheck // as dialDTLS
		if err != nil {
			t.Fatal(err)
		}
		defer dc.Close()
		if err := dc.HandshakeContext(ctx); err == nil {
			t.Fatal("a handshake without a client certificate succeeded")
		}
	})

	t.Run("plain coap", func(t *testing.T) {
		cc, err := udp.Dial(b.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		env := request(Peer{ID: nodeID(5), Addr: "coap://127.0.0.1:1"}, 3, `"hi"`)
		body, _ := json.Marshal(env)
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		if _, err := cc.Post(ctx, "/node/"+mb.hex()+"/receive", message.AppJSON, bytes.NewReader(body)); err == nil {
			t.Fatal("a plain CoAP request was answered")
		}
		// One way too.
		d, _ := onewayDatagram(1, mb.hex(), body)
		if _, err := cc.NetConn().Write(d); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	})
	if n := rb.handled.Load(); n != 0 {
		t.Fatalf("%d messages handled from outsiders", n)
	}
}

// TestCoAPSSenderBound: a member cannot pass a message off as another's, and
// a dialer that expects another ID at an address refuses the one there.
func TestCoAPSSenderBound(t *testing.T) {
	net := newTestNetwork(t, "test")
	ma, mb, mc := net.admit(t), net.admit(t), net.admit(t)
	var rb recorder
	a := startCoAPS(t, ma, echo, func(c *CoAPConfig) { c.Call.Retries = -1 })
	b := startCoAPS(t, mb, rb.handle)

	forged := request(Peer{ID: mc.hex(), Addr: "coaps://127.0.0.1:9"}, 1, `"hi"`)
	forged.To = b.self
	_, err := a.Call(ctxTimeout(t, 5*time.Second), b.Addr(), forged)
	var re *RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Msg, "authenticated as "+ma.hex()) {
		t.Fatalf("forged From: %v", err)
	}
	forged.Type, forged.ID = TypeNotifyStabilize, 2
	if err := a.Send(ctxTimeout(t, 5*time.Second), b.Addr(), forged); err != nil {
		t.Fatal(err)
	}
	if !eventually(func() bool { return b.Stats().Refused >= 2 }) {
		t.Fatalf("forged one-way message not refused: %+v", b.Stats())
	}

	wrong := request(a.self, 3, `"hi"`)
	wrong.To = Peer{ID: mc.hex(), Addr: b.Addr()}
	if _, err := a.Call(ctxTimeout(t, 5*time.Second), b.Addr(), wrong); !errors.Is(err, ErrAuth) {
		t.Fatalf("expecting %s at b's address: %v, want ErrAuth", mc.hex()[:8], err)
	}
	// And on a fresh dial, not only on the session above.
	a2 := startCoAPS(t, net.admit(t), echo, func(c *CoAPConfig) { c.Call.Retries = -1 })
	wrong.From = a2.self
	if _, err := a2.Call(ctxTimeout(t, 5*time.Second), b.Addr(), wrong); !errors.Is(err, ErrAuth) {
		t.Fatalf("dialing b expecting %s: %v, want ErrAuth", mc.hex()[:8], err)
	}
	if n := rb.handled.Load(); n != 0 {
		t.Fatalf("%d forged or misaddressed messages handled", n)
	}
}

func TestCoAPSReverify(t *testing.T) {
	net := newTestNetwork(t, "test")
	ma, mb := net.admit(t), net.admit(t)
	var rb recorder
	a := startCoAPS(t, ma, echo, func(c *CoAPConfig) { c.Call.Retries = -1; c.DialTimeout = time.Second })
	b := startCoAPS(t, mb, rb.handle)
	call := func(id uint64) error {
		env := request(a.self, id, `"hi"`)
		env.To = b.self
		_, err := a.Call(ctxTimeout(t, 5*time.Second), b.Addr(), env)
		return err
	}
	if err := call(1); err != nil {
		t.Fatal(err)
	}
	// The session serves as soon as its handshake ends; the server records
	// it a moment later.
	if !eventually(func() bool { return len(b.dsrv.sessions()) == 1 }) {
		t.Fatalf("%d sessions, want 1", len(b.dsrv.sessions()))
	}
	r, err := net.authority.Revoke(ma.id.ID, "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mb.members.Revoke(r); err != nil {
		t.Fatal(err)
	}
	before := b.Stats().Refused
	b.Reverify()
	if n := len(b.dsrv.sessions()); n != 0 || b.Stats().Refused != before+1 {
		t.Fatalf("after Reverify: %d sessions, refused %d (was %d)", n, b.Stats().Refused, before)
	}
	handled := rb.handled.Load()
	if err := call(2); err == nil {
		t.Fatal("a revoked member was answered")
	}
	if rb.handled.Load() != handled {
		t.Fatal("a revoked member's message was handled")
	}
}

// BenchmarkDTLSHandshake measures opening an authenticated CoAP session on
// loopback: the cookie round trip, the DTLS 1.2 handshake (ECDHE X25519,
// ed25519 certificates both ways) and both sides' Verify. Both ends run in
// this process, so one op is the CPU of a client and a server handshake.
func BenchmarkDTLSHandshake(b *testing.B) {
	net := newTestNetwork(b, "bench")
	many := func(c *CoAPConfig) { c.MaxSessions = 1 << 20; c.MaxHandshakes = 1 << 20 }
	a := startCoAPS(b, net.admit(b), echo, many)
	s := startCoAPS(b, net.admit(b), echo, many)
	raddr, _ := nnet.ResolveUDPAddr("udp", s.LocalAddr().String())
	b.Logf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	b.ResetTimer()
	for b.Loop() {
		dc, id, err := a.dialDTLS(context.Background(), raddr, s.self.ID)
		if err != nil || id != s.self.ID {
			b.Fatal(id, err)
		}
		dc.Close()
	}
}

func TestCoAPSCloseLeavesNoGoroutines(t *testing.T) {
	net := newTestNetwork(t, "test")
	ma, mb := net.admit(t), net.admit(t)
	before := runtime.NumGoroutine()
	a := startCoAPS(t, ma, echo)
	b := startCoAPS(t, mb, echo)
	for _, p := range [][2]*coapNode{{a, b}, {b, a}} {
		env := request(p[0].self, 1, `"hi"`)
		if _, err := p[0].Call(ctxTimeout(t, 5*time.Second), p[1].Addr(), env); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	b.Close()
	checkGoroutines(t, before)
}

func TestCoAPSIdleSessionClosed(t *testing.T) {
	net := newTestNetwork(t, "test")
	idle := func(c *CoAPConfig) { c.IdleTimeout = 300 * time.Millisecond }
	a := startCoAPS(t, net.admit(t), echo, idle)
	b := startCoAPS(t, net.admit(t), echo, idle)
	call := func() {
		t.Helper()
		if _, err := a.Call(ctxTimeout(t, 5*time.Second), b.Addr(), request(a.self, 1, `"hi"`)); err != nil {
			t.Fatal(err)
		}
	}
	call()
	// The session serves as soon as its handshake ends; the server records
	// it a moment later.
	if !eventually(func() bool { return len(b.dsrv.sessions()) == 1 }) {
		t.Fatalf("%d sessions, want 1", len(b.dsrv.sessions()))
	}
	if !eventually(func() bool { return len(b.dsrv.sessions()) == 0 }) {
		t.Fatal("an idle session was kept")
	}
	call() // and a new one is opened
}
