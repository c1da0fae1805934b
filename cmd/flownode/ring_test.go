package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/chord/chordtest"
)

// ringInfo is the ring part of GET /api/v1/node.
type ringInfo struct {
	ID          string     `json:"id"`
	RPC         string     `json:"rpc"`
	Status      string     `json:"status"`
	Predecessor *peerJSON  `json:"predecessor"`
	Successors  []peerJSON `json:"successors"`
}

// TestRingOfProcesses starts 8 flownode processes on loopback, forms a ring
// with --join and waits until every node's /api/v1/node shows the true
// predecessor and successors (the oracle is the sorted list of the 8 IDs).
// The "mixed" case has half the nodes advertise CoAP and join over CoAP.
func TestRingOfProcesses(t *testing.T) {
	for _, mixed := range []bool{false, true} {
		name := "ws"
		if mixed {
			name = "mixed"
		}
		t.Run(name, func(t *testing.T) {
			const n = 8
			first := startNode(t, filepath.Join(t.TempDir(), "n0"), "local", rpcArgs(mixed, 0)...)
			var firstRPC ringInfo
			getJSON(t, first.URL+"/api/v1/node", &firstRPC)
			nodes := []*nodeProc{first}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for i := 1; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					join := first.Addr // host:port means ws
					if mixed && i%2 == 1 {
						join = firstRPC.RPC // coap://host:port
					}
					p := startNode(t, filepath.Join(t.TempDir(), fmt.Sprint("n", i)), "local", append(rpcArgs(mixed, i), "--join", join)...)
					mu.Lock()
					nodes = append(nodes, p)
					mu.Unlock()
				}()
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			start := time.Now()
			var why string
			ok := waitFor(60*time.Second, 200*time.Millisecond, func() bool {
				why = ringIdealErr(t, nodes)
				return why == ""
			})
			if !ok {
				t.Fatalf("ring of %d processes not Ideal after 60 s: %s", n, why)
			}
			t.Logf("%s: %d processes Ideal %v after the last one started", name, n, time.Since(start).Round(time.Millisecond))

			var ring struct {
				Nodes []peerJSON `json:"nodes"`
				Error string     `json:"error"`
			}
			getJSON(t, nodes[3].URL+"/api/v1/ring", &ring)
			if len(ring.Nodes) != n || ring.Error != "" {
				t.Errorf("/api/v1/ring: %d nodes, error %q", len(ring.Nodes), ring.Error)
			}
			for _, p := range nodes {
				if r := doHTTP(t, http.MethodGet, p.URL+"/readyz", "", nil); r.Code != http.StatusOK {
					t.Errorf("%s /readyz: %d %s", p.URL, r.Code, r.Body)
				}
			}
			if r := runCLI(t, nil, "ring", "--node", nodes[5].URL); r.Code != 0 || strings.Count(r.Stdout, "\n") != n {
				t.Errorf("flownode ring: %v", r)
			}
		})
	}
}

// rpcArgs makes every other node of a mixed ring advertise CoAP.
func rpcArgs(mixed bool, i int) []string {
	if mixed && i%2 == 0 {
		return []string{"--rpc", "coap"}
	}
	return nil
}

// ringIdealErr says why the ring the nodes report is not Ideal
// (chordtest.IdealErr: /api/v1/node does not show r, so each successor list
// must be the true next nodes, at least min(4, N-1) of them), or "".
func ringIdealErr(tb testing.TB, nodes []*nodeProc) string {
	var views []chordtest.View
	for _, p := range nodes {
		r := doHTTP(tb, http.MethodGet, p.URL+"/api/v1/node", "", nil)
		var in ringInfo
		if r.Code != http.StatusOK || json.Unmarshal(r.Body, &in) != nil {
			return fmt.Sprintf("%s: /api/v1/node answered %d", p.URL, r.Code)
		}
		v, err := in.view()
		if err != nil {
			return fmt.Sprintf("%s: /api/v1/node: %v", p.URL, err)
		}
		views = append(views, v)
	}
	if err := chordtest.IdealErr(views, nil); err != nil {
		return err.Error()
	}
	return ""
}

// view is the node as the ring checks see it (its r not known).
func (in ringInfo) view() (chordtest.View, error) {
	var v chordtest.View
	var err error
	if v.Self, err = chord.ParseID(in.ID); err != nil {
		return v, err
	}
	v.Status = in.Status
	if in.Predecessor != nil {
		if v.Pred, err = chord.ParseID(in.Predecessor.ID); err != nil {
			return v, err
		}
	}
	for _, s := range in.Successors {
		id, err := chord.ParseID(s.ID)
		if err != nil {
			return v, err
		}
		v.Succs = append(v.Succs, id)
	}
	return v, nil
}

// TestReadyzUntilMember: a node whose --join peers are not there keeps
// retrying, and /readyz says why it is not ready; a bad --join is a usage
// error.
func TestReadyzUntilMember(t *testing.T) {
	p := startNode(t, filepath.Join(t.TempDir(), "lonely"), "local", "--join", "127.0.0.1:1")
	r := doHTTP(t, http.MethodGet, p.URL+"/readyz", "", nil)
	var body struct{ Reason string }
	if r.Code != http.StatusServiceUnavailable || json.Unmarshal(r.Body, &body) != nil || !strings.Contains(body.Reason, "not a ring member") {
		t.Errorf("/readyz of a node that cannot join: %d %s", r.Code, r.Body)
	}
	res := runCLI(t, nil, "run", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--coap", "127.0.0.1:0", "--coaps", "127.0.0.1:0", "--join", "http://x:1")
	if res.Code != 2 || !strings.Contains(res.Stderr, "--join") {
		t.Errorf("run --join http://x:1: %v", res)
	}
}
