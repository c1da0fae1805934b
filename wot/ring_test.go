package wot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
	"github.com/flownode/flownode/node"
)

// testNode is one node of an in-process ring, started as the daemon starts
// it (node.Start, local profile, loopback), with the layer mounted on its
// HTTP port.
type testNode struct {
	n       *node.Node
	t       *Things
	addr    string // host:port of its HTTP (and WebSocket) port
	stopped bool
}

// stop closes the layer and stops the node (it leaves the ring).
func (tn *testNode) stop() {
	tn.stopped = true
	tn.t.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tn.n.Stop(ctx)
}

func (tn *testNode) http(path string) string { return "http://" + tn.addr + path }
func (tn *testNode) ws(path string) string   { return "ws://" + tn.addr + path }

// startRing starts size nodes in one ring and waits until each sees all.
func startRing(tb testing.TB, size int) []*testNode {
	tb.Helper()
	prof := node.LocalProfile()
	auth, err := network.NewAuthority("wot-test", prof.Mining)
	if err != nil {
		tb.Fatal(err)
	}
	var nodes []*testNode
	for i := 0; i < size; i++ {
		dir := tb.TempDir()
		if _, err := auth.AdmitDir(dir, time.Now().Add(time.Hour)); err != nil {
			tb.Fatal(err)
		}
		cfg := node.Config{DataDir: dir, Profile: prof, Listen: "127.0.0.1:0", CoAPListen: "127.0.0.1:0", Log: zap.NewNop()}
		if i > 0 {
			cfg.Join = []string{nodes[0].addr}
		}
		n, err := node.Start(context.Background(), cfg)
		if err != nil {
			tb.Fatal(err)
		}
		th, err := New(n, Config{HTTPAddr: n.Self().Addr, Log: zaptest.NewLogger(tb, zaptest.Level(zap.InfoLevel))})
		if err != nil {
			tb.Fatal(err)
		}
		h := th.Handler()
		n.Handle("/things/", h)
		n.Handle("/object/", h)
		tn := &testNode{n: n, t: th, addr: n.Self().Addr}
		nodes = append(nodes, tn)
		tb.Cleanup(func() {
			if !tn.stopped {
				tn.stop()
			}
		})
	}
	eventuallyNil(tb, 60*time.Second, func() error {
		for _, tn := range nodes {
			if err := tn.n.Ready(); err != nil {
				return err
			}
			ms, err := tn.n.RingMembers(context.Background())
			if err != nil {
				return err
			}
			if len(ms) != size {
				return fmt.Errorf("node %s sees %d members of %d", tn.addr, len(ms), size)
			}
		}
		return nil
	})
	return nodes
}

// eventually retries f until it returns nil or within passes.
func eventuallyNil(tb testing.TB, within time.Duration, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("not within %v: %v", within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// thingWithRendezvous returns a Thing ID whose rendezvous is not any of avoid.
func thingWithRendezvous(tb testing.TB, from *testNode, prefix string, avoid ...*testNode) string {
	tb.Helper()
	for i := 0; i < 1000; i++ {
		thing := fmt.Sprintf("%s-%d", prefix, i)
		p, err := from.n.Owner(context.Background(), rendezvousKey(thing))
		if err != nil {
			tb.Fatal(err)
		}
		ok := true
		for _, a := range avoid {
			if p.ID == a.n.ID() {
				ok = false
			}
		}
		if ok {
			return thing
		}
	}
	tb.Fatal("no Thing ID with a rendezvous elsewhere")
	return ""
}

func dial(tb testing.TB, url string) *websocket.Conn {
	tb.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		tb.Fatalf("dial %s: %v (HTTP %d)", url, err, code)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// recordOf parses a record frame and checks it on its own.
func recordOf(tb testing.TB, raw []byte) *ledger.Record {
	tb.Helper()
	r, err := ledger.ParseRecord(raw)
	if err == nil {
		err = r.CheckSelf(raw)
	}
	if err != nil {
		tb.Fatalf("record %s: %v", raw, err)
	}
	return r
}

// seqOf returns member "n" of a reading.
func seqOf(tb testing.TB, data []byte) int {
	tb.Helper()
	var v struct {
		N *int `json:"n"`
	}
	if err := json.Unmarshal(data, &v); err != nil || v.N == nil {
		tb.Fatalf("reading %s has no n: %v", data, err)
	}
	return *v.N
}

// getBody GETs url and returns status, body and headers.
func getBody(tb testing.TB, url string, hdr map[string]string) (int, string, http.Header) {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, sb.String(), resp.Header
}
