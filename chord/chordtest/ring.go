package chordtest

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/chord/driver"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
	"github.com/flownode/flownode/rpc"
)

// Kind is how a test node listens.
type Kind string

const (
	// WS nodes listen on WebSocket, on an httptest server.
	WS Kind = "ws"
	// CoAP nodes listen on CoAP over UDP.
	CoAP Kind = "coap"
	// Mixed nodes listen on both and advertise one (NodeConfig.Advertise).
	Mixed Kind = "mixed"
	// Mem nodes live on an in-memory rpc.MemNetwork (NodeConfig.Net), whose
	// faults and partitions the test controls.
	Mem Kind = "mem"
	// WSTLS nodes are WS nodes of a permissioned network: each is admitted
	// by one test authority, its ID is its key's, and its peers
	// authenticate with TLS 1.3 (rpc.Auth).
	WSTLS Kind = "ws-tls"
	// CoAPS nodes are CoAP nodes of a permissioned network, as WSTLS ones:
	// peers authenticate with DTLS 1.2 (coaps://).
	CoAPS Kind = "coaps"
)

// CallOptions is how test nodes' transports call: no retries, one second.
var CallOptions = rpc.CallOptions{Retries: -1, Timeout: time.Second}

// Node is one driver of a test ring, with what it listens on.
type Node struct {
	Driver *driver.Driver
	// Server serves the node's WebSocket endpoint; nil for CoAP-only and
	// Mem nodes.
	Server *httptest.Server
	// Events counts the node's events; nil if they are not counted.
	Events *Events
}

// Close closes the driver and the server. NewNode registers it with
// tb.Cleanup; a test may call it earlier to make the node fail abruptly.
func (n *Node) Close() {
	n.Driver.Close()
	if n.Server != nil {
		n.Server.CloseClientConnections()
		n.Server.Close()
	}
}

// NodeConfig says what node NewNode starts.
type NodeConfig struct {
	Kind Kind
	ID   chord.ID
	// Advertise is the scheme a Mixed node advertises: rpc.SchemeWS (the
	// default) or rpc.SchemeCoAP. Others advertise what they listen on.
	Advertise string
	// Profile sets the timers (see LocalProfile).
	Profile driver.Profile
	// Ticks, when set, replaces the profile's ticker (driver.Config.Ticks).
	Ticks <-chan time.Time
	// Events, when set, counts the node's events.
	Events *Events
	// Net is the network of a Mem node (required for Mem).
	Net *rpc.MemNetwork
	// Addr is a Mem node's address; "" means mem://<short ID>.
	Addr string
	// Auth authenticates a WSTLS node's peers; its certificate is for ID.
	Auth *rpc.Auth
}

// NewNode starts a driver on 127.0.0.1 with OS-chosen ports (or on
// c.Net): a driver that is neither in a ring nor joining; the test calls
// its Start or Join. The node is closed when the test ends.
func NewNode(tb testing.TB, c NodeConfig) *Node {
	tb.Helper()
	n := &Node{Events: c.Events}
	cfg := driver.Config{Self: chord.Peer{ID: c.ID}, Profile: c.Profile, Ticks: c.Ticks}
	if c.Events != nil {
		cfg.OnEvent = c.Events.Count
	}
	if c.Kind == Mem {
		if c.Net == nil {
			tb.Fatalf("chordtest: a Mem node needs NodeConfig.Net")
		}
		addr := c.Addr
		if addr == "" {
			addr = "mem://" + c.ID.Short()
		}
		cfg.Self.Addr = addr
		cfg.Transport = func(h rpc.Handler) (rpc.Transport, error) {
			return c.Net.Transport(rpc.Peer{ID: c.ID.Hex(), Addr: addr}, h)
		}
	} else {
		cfg.Transport = n.transport(c)
	}
	d, err := driver.New(cfg)
	if err != nil {
		if n.Server != nil {
			n.Server.Close()
		}
		tb.Fatalf("new driver: %v", err)
	}
	n.Driver = d
	tb.Cleanup(n.Close)
	return n
}

// transport returns the driver's transport factory for a WS, CoAP or Mixed
// node; it starts n.Server at once for nodes that listen on WebSocket.
func (n *Node) transport(c NodeConfig) func(rpc.Handler) (rpc.Transport, error) {
	id := c.ID
	var wsAddr string
	var mux *http.ServeMux
	if c.Kind == WS || c.Kind == Mixed || c.Kind == WSTLS {
		mux = http.NewServeMux()
		n.Server = httptest.NewServer(mux)
		wsAddr = "ws://" + n.Server.Listener.Addr().String()
	}
	var advertised string
	build := func(h rpc.Handler) (rpc.Transport, error) {
		var ws *rpc.WS
		var co *rpc.CoAP
		var err error
		if mux != nil {
			if ws, err = rpc.NewWS(rpc.WSConfig{Self: rpc.Peer{ID: id.Hex(), Addr: wsAddr}, Auth: c.Auth, Handler: h, Call: CallOptions}); err != nil {
				return nil, err
			}
			mux.Handle(rpc.ReceivePattern, ws.Handler())
		}
		if c.Kind == CoAP || c.Kind == Mixed || c.Kind == CoAPS {
			co, err = rpc.NewCoAP(rpc.CoAPConfig{Self: rpc.Peer{ID: id.Hex()}, Auth: c.Auth, Listen: "127.0.0.1:0", Handler: h, Call: CallOptions,
				AckTimeout: 200 * time.Millisecond, MaxRetransmit: 2})
			if err != nil {
				if ws != nil {
					ws.Close()
				}
				return nil, err
			}
		}
		switch {
		case ws != nil && co != nil:
			if c.Advertise == rpc.SchemeCoAP {
				advertised = co.Addr()
			} else {
				advertised = ws.Addr()
			}
			return rpc.NewMulti(map[string]rpc.Transport{rpc.SchemeWS: ws, rpc.SchemeCoAP: co}), nil
		case ws != nil:
			return ws, nil
		default:
			return co, nil
		}
	}
	// The driver takes an empty Self.Addr from the transport's Addr: a
	// single transport reports its own, a Multi the one advertised.
	return func(h rpc.Handler) (rpc.Transport, error) {
		tr, err := build(h)
		if err == nil && advertised != "" {
			return addrTransport{tr, advertised}, nil
		}
		return tr, err
	}
}

// addrTransport gives a Multi the Addr the driver advertises.
type addrTransport struct {
	rpc.Transport
	addr string
}

func (a addrTransport) Addr() string { return a.addr }

// RandomIDs returns n IDs drawn from seed: the same seed, the same IDs.
func RandomIDs(seed uint64, n int) []chord.ID {
	r := rand.New(rand.NewPCG(seed, 4))
	ids := make([]chord.ID, n)
	for i := range ids {
		for j := range ids[i] {
			ids[i][j] = byte(r.UintN(256))
		}
	}
	return ids
}

// LocalProfile is driver.LocalProfile with its tick and send timeout
// stretched by RaceSlowdown.
func LocalProfile(tb testing.TB) driver.Profile {
	p := driver.LocalProfile()
	p.Tick *= RaceSlowdown
	p.SendTimeout *= RaceSlowdown
	return p
}

// RingConfig says what ring StartRing starts.
type RingConfig struct {
	// Kind is how the nodes listen; in a Mixed ring the odd nodes
	// advertise CoAP and the even ones WebSocket.
	Kind Kind
	// N is the number of nodes; their IDs are RandomIDs(Seed, N).
	N    int
	Seed uint64
	// Profile sets the nodes' timers (see LocalProfile).
	Profile driver.Profile
	// Ticks, when set, holds each node's injected ticks (N channels).
	Ticks []chan time.Time
	// Events, when set, counts every node's events.
	Events *Events
	// Net is a Mem ring's network; the nodes are mem://n0, mem://n1, ...
	Net *rpc.MemNetwork
}

// StartRing starts c.N nodes: the first creates the ring, the others join
// through it all at once (each retrying a failed join up to five times, as
// an operator would: a burst of joins through one node may time out at
// first). It fails the test if a node cannot start or join within 30 s.
// The ring is not Ideal yet when it returns: see WaitIdeal.
func StartRing(tb testing.TB, c RingConfig) []*Node {
	tb.Helper()
	ids := RandomIDs(c.Seed, c.N)
	var auths []*rpc.Auth
	if c.Kind == WSTLS || c.Kind == CoAPS {
		ids, auths = admitted(tb, c.N)
	}
	nodes := make([]*Node, c.N)
	for i, id := range ids {
		nc := NodeConfig{Kind: c.Kind, ID: id, Advertise: rpc.SchemeWS, Profile: c.Profile, Events: c.Events, Net: c.Net}
		if auths != nil {
			nc.Auth = auths[i]
		}
		if i%2 == 1 {
			nc.Advertise = rpc.SchemeCoAP
		}
		if c.Ticks != nil {
			nc.Ticks = c.Ticks[i]
		}
		if c.Kind == Mem {
			nc.Addr = fmt.Sprintf("mem://n%d", i)
		}
		nodes[i] = NewNode(tb, nc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nodes[0].Driver.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	boot := []string{nodes[0].Driver.Self().Addr}
	var wg sync.WaitGroup
	errs := make([]error, c.N)
	for i := 1; i < c.N; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := 0; attempt < 5; attempt++ {
				if errs[i] = nodes[i].Driver.Join(ctx, boot); errs[i] == nil || ctx.Err() != nil {
					return
				}
				// Apart, as operators' retries are: the bootstrap node takes
				// at most 16 handshakes from one address at once (rpc), and
				// every node here has the same one.
				select {
				case <-time.After(time.Duration(attempt+1) * time.Duration(rand.IntN(200)) * time.Millisecond):
				case <-ctx.Done():
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("node %d (%s) join: %v", i, nodes[i].Driver.Self().Addr, err)
		}
	}
	return nodes
}

// States returns the nodes' states, in order.
func States(nodes []*Node) []chord.State {
	var out []chord.State
	for _, n := range nodes {
		out = append(out, n.Driver.State())
	}
	return out
}

// Views returns the Views of the nodes' states, in order.
func Views(nodes []*Node) []View { return FromStates(States(nodes)) }

// RingErr reports why the nodes' ring is not Ideal with correct fingers and
// lookups that find the oracle's owner from every node (LookupsErr), or nil.
func RingErr(nodes []*Node, seed uint64) error {
	vs := Views(nodes)
	if err := IdealErr(vs, nil); err != nil {
		return err
	}
	if err := FingersErr(vs, nil); err != nil {
		return err
	}
	return LookupsErr(nodes, OracleOf(vs), seed)
}

// WaitIdeal polls the nodes every 100 ms until RingErr is nil, and returns
// how long it took. After limit it logs every node's state (and the events
// counted) and fails the test.
func WaitIdeal(tb testing.TB, nodes []*Node, limit time.Duration, seed uint64) time.Duration {
	tb.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < limit {
		if err = RingErr(nodes, seed); err == nil {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	LogStates(tb, nodes)
	tb.Fatalf("ring of %d not Ideal after %v: %v", len(nodes), limit, err)
	return 0
}

// LogStates logs each node's state and the drops of its driver, then the
// events counted.
func LogStates(tb testing.TB, nodes []*Node) {
	tb.Helper()
	var events []*Events
	for _, n := range nodes {
		st := n.Driver.State()
		tb.Logf("%s %s %s pred=%s succs=%v dead=%v ttl=%v dropped=%d", st.Self, st.Self.Addr, st.Status, st.Pred, st.Succs, st.Dead, st.TTL, n.Driver.Dropped())
		if n.Events != nil && !containsPtr(events, n.Events) {
			events = append(events, n.Events)
		}
	}
	for _, e := range events {
		tb.Logf("events: %v", e.Counts())
	}
}

func containsPtr(es []*Events, e *Events) bool {
	for _, x := range es {
		if x == e {
			return true
		}
	}
	return false
}

// LookupsErr looks up 8 keys drawn from seed from every node, all nodes at
// once, and reports the lookups that failed or named another owner than
// o's, or nil.
func LookupsErr(nodes []*Node, o Oracle, seed uint64) error {
	keys := RandomIDs(seed^0x9e3779b9, 8)
	var mu sync.Mutex
	var errs []string
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, k := range keys {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				owner, _, err := n.Driver.Lookup(ctx, k)
				cancel()
				if err == nil && owner.ID != o.Successor(k) {
					err = fmt.Errorf("owner %s, want %s", owner, o.Successor(k).Short())
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Sprintf("lookup %s from %s: %v", k.Short(), n.Driver.Self(), err))
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// Events counts chord events by type (and a ProtocolError by message type
// and cause), for a failing test to log. The zero Events is ready to use;
// it is safe for concurrent use.
type Events struct {
	mu sync.Mutex
	n  map[string]int
}

// Count counts e; it is a driver.Config.OnEvent.
func (c *Events) Count(e chord.Event) {
	k := fmt.Sprintf("%T", e)
	if pe, ok := e.(chord.ProtocolError); ok {
		k += " " + string(pe.Msg.Type)
		if parts := strings.SplitN(pe.Err.Error(), ":", 3); len(parts) > 1 {
			k += " " + parts[1]
		}
	}
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[k]++
	c.mu.Unlock()
}

// Counts returns a copy of the counts.
func (c *Events) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// admitted makes n node identities admitted to one fresh test network and
// returns their IDs and what their transports authenticate with.
func admitted(tb testing.TB, n int) ([]chord.ID, []*rpc.Auth) {
	tb.Helper()
	a, err := network.NewAuthority("chordtest", ledger.MiningParams{Rate: 20, MeanBlockTime: time.Second, Variance: 0.2})
	if err != nil {
		tb.Fatal(err)
	}
	ids := make([]chord.ID, n)
	auths := make([]*rpc.Auth, n)
	for i := range n {
		id, err := ledger.GenerateIdentity(nil)
		if err != nil {
			tb.Fatal(err)
		}
		mem, err := a.Admit(id.Public, time.Now().Add(24*time.Hour))
		if err != nil {
			tb.Fatal(err)
		}
		ms, err := network.NewMembers(a.Description, mem, "")
		if err != nil {
			tb.Fatal(err)
		}
		cert, err := ms.Certificate(id)
		if err != nil {
			tb.Fatal(err)
		}
		ids[i], auths[i] = id.ID, &rpc.Auth{Certificate: cert, Verify: ms.Verify}
	}
	return ids, auths
}
