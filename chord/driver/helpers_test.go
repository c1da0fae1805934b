package driver_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/chord/driver"
	"github.com/flownode/flownode/rpc"
)

// kind is how a test node listens: "ws", "coap", or "mixed" (both
// transports, advertising one by the node's index).
type kind string

// testNode is one driver with what it listens on.
type testNode struct {
	d   *driver.Driver
	srv *httptest.Server // nil for CoAP-only nodes
}

func (n *testNode) close() {
	n.d.Close()
	if n.srv != nil {
		n.srv.CloseClientConnections()
		n.srv.Close()
	}
}

var callOpts = rpc.CallOptions{Retries: -1, Timeout: time.Second}

// newNode starts a driver on 127.0.0.1 with OS-chosen ports. advertise picks
// the scheme it advertises when it has both transports.
func newNode(tb testing.TB, k kind, id chord.ID, advertise string, prof driver.Profile, ticks <-chan time.Time) *testNode {
	tb.Helper()
	n := &testNode{}
	var wsAddr string
	var mux *http.ServeMux
	if k == "ws" || k == "mixed" {
		mux = http.NewServeMux()
		n.srv = httptest.NewServer(mux)
		wsAddr = "ws://" + n.srv.Listener.Addr().String()
	}
	self := chord.Peer{ID: id}
	build := func(h rpc.Handler) (rpc.Transport, error) {
		var ws *rpc.WS
		var co *rpc.CoAP
		var err error
		if mux != nil {
			if ws, err = rpc.NewWS(rpc.WSConfig{Self: rpc.Peer{ID: id.Hex(), Addr: wsAddr}, Handler: h, Call: callOpts}); err != nil {
				return nil, err
			}
			mux.Handle(rpc.ReceivePattern, ws.Handler())
		}
		if k == "coap" || k == "mixed" {
			co, err = rpc.NewCoAP(rpc.CoAPConfig{Self: rpc.Peer{ID: id.Hex()}, Listen: "127.0.0.1:0", Handler: h, Call: callOpts,
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
			if advertise == rpc.SchemeCoAP {
				self.Addr = co.Addr()
			} else {
				self.Addr = ws.Addr()
			}
			return rpc.NewMulti(map[string]rpc.Transport{rpc.SchemeWS: ws, rpc.SchemeCoAP: co}), nil
		case ws != nil:
			return ws, nil
		default:
			return co, nil
		}
	}
	// Self.Addr is filled in by build for mixed nodes before New reads it
	// back through the transport's Addr; single transports report their own.
	cfg := driver.Config{Profile: prof, Ticks: ticks, OnEvent: countEvent}
	cfg.Self = chord.Peer{ID: id}
	cfg.Transport = func(h rpc.Handler) (rpc.Transport, error) {
		tr, err := build(h)
		if err == nil && self.Addr != "" {
			return addrTransport{tr, self.Addr}, nil
		}
		return tr, err
	}
	d, err := driver.New(cfg)
	if err != nil {
		if n.srv != nil {
			n.srv.Close()
		}
		tb.Fatalf("new driver: %v", err)
	}
	n.d = d
	tb.Cleanup(n.close)
	return n
}

// addrTransport gives a Multi the Addr the driver advertises.
type addrTransport struct {
	rpc.Transport
	addr string
}

func (a addrTransport) Addr() string { return a.addr }

func randomIDs(seed uint64, n int) []chord.ID {
	r := rand.New(rand.NewPCG(seed, 4))
	ids := make([]chord.ID, n)
	for i := range ids {
		for j := range ids[i] {
			ids[i][j] = byte(r.UintN(256))
		}
	}
	return ids
}

func localProfile(tb testing.TB) driver.Profile {
	p, err := driver.ProfileConfig(driver.ProfileLocal)
	if err != nil {
		tb.Fatal(err)
	}
	p.Tick *= raceSlowdown
	p.SendTimeout *= raceSlowdown
	return p
}

// startRing starts n nodes of kind k: the first creates the ring, the others
// join through it all at once.
func startRing(tb testing.TB, k kind, n int, seed uint64, prof driver.Profile) []*testNode {
	tb.Helper()
	return startRingTicks(tb, k, n, seed, prof, nil)
}

// startRingTicks is startRing with injected ticks (nil: the profile's ticker).
func startRingTicks(tb testing.TB, k kind, n int, seed uint64, prof driver.Profile, ticks []chan time.Time) []*testNode {
	tb.Helper()
	ids := randomIDs(seed, n)
	nodes := make([]*testNode, n)
	for i, id := range ids {
		adv := rpc.SchemeWS
		if i%2 == 1 {
			adv = rpc.SchemeCoAP
		}
		var t <-chan time.Time
		if ticks != nil {
			t = ticks[i]
		}
		nodes[i] = newNode(tb, k, id, adv, prof, t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nodes[0].d.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	boot := []string{nodes[0].d.Self().Addr}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A burst of joins through one node may time out at first; a
			// bounded number of retries is what an operator would do.
			for attempt := 0; attempt < 5; attempt++ {
				if errs[i] = nodes[i].d.Join(ctx, boot); errs[i] == nil || ctx.Err() != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			tb.Fatalf("node %d (%s) join: %v", i, nodes[i].d.Self().Addr, err)
		}
	}
	return nodes
}

func states(nodes []*testNode) []chord.State {
	var out []chord.State
	for _, n := range nodes {
		out = append(out, n.d.State())
	}
	return out
}

// waitIdeal polls the nodes' states until the ring is Ideal with correct
// fingers and every node's lookups return the oracle's owner, or fails the
// test after limit. It returns how long it took.
func waitIdeal(tb testing.TB, nodes []*testNode, limit time.Duration, seed uint64) time.Duration {
	tb.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < limit {
		sts := states(nodes)
		if err = driver.IdealErr(sts); err == nil {
			if err = driver.FingersErr(sts); err == nil {
				if err = lookupsErr(nodes, sts, seed); err == nil {
					return time.Since(start)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, n := range nodes {
		st := n.d.State()
		tb.Logf("%s %s %s pred=%s succs=%v dead=%v ttl=%v dropped=%d", st.Self, st.Self.Addr, st.Status, st.Pred, st.Succs, st.Dead, st.TTL, n.d.Dropped())
	}
	evMu.Lock()
	tb.Logf("events: %v", evCount)
	evMu.Unlock()
	tb.Fatalf("ring of %d not Ideal after %v: %v", len(nodes), limit, err)
	return 0
}

// lookupsErr looks up random keys from every node and compares the owners
// with the oracle's.
func lookupsErr(nodes []*testNode, sts []chord.State, seed uint64) error {
	ids := make([]chord.ID, len(sts))
	for i, s := range sts {
		ids[i] = s.Self.ID
	}
	o := driver.NewOracle(ids)
	keys := randomIDs(seed^0x9e3779b9, 8)
	var mu sync.Mutex
	var errs []string
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, k := range keys {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				owner, _, err := n.d.Lookup(ctx, k)
				cancel()
				if err == nil && owner.ID != o.Successor(k) {
					err = fmt.Errorf("owner %s, want %s", owner, o.Successor(k).Short())
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Sprintf("lookup %s from %s: %v", k.Short(), n.d.Self(), err))
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

var evMu sync.Mutex
var evCount = map[string]int{}

func countEvent(e chord.Event) {
	k := fmt.Sprintf("%T", e)
	if pe, ok := e.(chord.ProtocolError); ok {
		k += " " + string(pe.Msg.Type) + " " + strings.SplitN(pe.Err.Error(), ":", 3)[1]
	}
	evMu.Lock()
	evCount[k]++
	evMu.Unlock()
}
