package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/flownode/flownode/api"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/store"
)

// TestDashboardAlertsVerifyFailure tampers with a sealed record in a stopped node's
// store, starts the node again and wants the dashboard to raise the failed
// verification (GET /api/v1/verify answers valid: false) in its alert area.
func TestDashboardAlertsVerifyFailure(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	n := startNode(t, dir, "local")
	var rcs []receipt
	for i := 0; i < 3; i++ {
		rcs = append(rcs, putOne(t, n.URL, "dash-tamper", fmt.Sprintf(`{"i":%d}`, i)))
	}
	// Wait until a block seals the three records.
	if !waitFor(60*time.Second, 50*time.Millisecond, func() bool {
		var got api.BlockList
		getJSON(t, n.URL+"/api/v1/blocks?branch="+n.ID, &got)
		sealed := 0
		for _, raw := range got.Blocks {
			var b struct {
				Sealed uint64 `json:"sealed,string"`
			}
			json.Unmarshal(raw, &b)
			sealed += int(b.Sealed)
		}
		return sealed >= len(rcs)
	}) {
		t.Fatal("the records were not sealed in 60 s")
	}
	if code := n.Stop(); code != 0 {
		t.Fatalf("the node exited %d on SIGTERM", code)
	}

	// One digit of the second record's data changes on disk, as an attacker with
	// the disk would change it.
	tx, err := ledger.ParseHash(rcs[1].TxID)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(dir, store.LocalOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	key := store.RecordKey(tx)
	if err := st.Raw().Update(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		at := strings.Index(string(v), `"i":1`)
		if at < 0 {
			return fmt.Errorf("record %s holds no \"i\":1: %s", tx, v)
		}
		v[at+4] = '7'
		return txn.Set(key, v)
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	n = startNode(t, dir, "local")
	var rep struct {
		Valid bool
		Where string
	}
	getJSON(t, n.URL+"/api/v1/verify", &rep)
	if rep.Valid {
		t.Fatal("GET /api/v1/verify finds the tampered store valid")
	}
	b := openBrowser(t, bin)
	b.navigate(n.URL + "/")
	b.waitDOM("the verification alert", 60*time.Second,
		`<div id="alerts" role="alert" aria-live="assertive"><div class="alert" data-kind="verify">Verification failed: ledger INVALID at `+rep.Where,
		"ledger INVALID at "+rep.Where)
	b.screenshot("dashboard-verify-alert.png")
}

// checkpointsStandIn answers GET /api/v1/checkpoints as the checkpoints API promises
// to (issue 16): branch's checkpoint at block size, cosigned by one witness, and one
// equivocation of branch; every other path goes to next, a real node.
func checkpointsStandIn(next http.Handler, branch string, size uint64, cosigner string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/checkpoints", func(w http.ResponseWriter, r *http.Request) {
		note := func(n uint64) string {
			return fmt.Sprintf("flownode/%s\n%d\nAAAA\n\n— %s sig%d\n", branch, n, branch[:8], n)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"checkpoints": []map[string]any{{"branch": branch, "size": size, "root": strings.Repeat("ab", 32),
				"checkpoint": note(size), "cosigners": []string{cosigner}}},
			"equivocations": []map[string]any{{"branch": branch, "first": note(size), "second": note(size) + "rewritten",
				"detected": "2026-12-07T08:00:00Z"}},
		})
	})
	mux.Handle("/", next)
	return mux
}

// TestDashboardCheckpointsAgainstContract shows a witnessed head and an equivocation
// alert from a GET /api/v1/checkpoints answered as its contract says, with a real
// node behind every other path. It holds the page to the contract while the
// checkpoints API is not in this tree.
func TestDashboardCheckpointsAgainstContract(t *testing.T) {
	bin := chromium(t)
	n := startNode(t, t.TempDir(), "local")
	for i := 0; i < 3; i++ {
		putOne(t, n.URL, "dash-witness", fmt.Sprintf(`{"i":%d}`, i))
	}
	if !waitFor(60*time.Second, 50*time.Millisecond, func() bool {
		var got api.BlockList
		getJSON(t, n.URL+"/api/v1/blocks?branch="+n.ID, &got)
		return len(got.Blocks) >= 4
	}) {
		t.Fatal("fewer than 4 blocks mined in 60 s")
	}
	target, err := url.Parse(n.URL)
	if err != nil {
		t.Fatal(err)
	}
	const witnessedNo = 2
	cosigner := strings.Repeat("c", 40)
	srv := httptest.NewServer(checkpointsStandIn(httputil.NewSingleHostReverseProxy(target), n.ID, witnessedNo, cosigner))
	defer srv.Close()

	b := openBrowser(t, bin)
	b.navigate(srv.URL + "/")
	b.waitDOM("the witnessed head and the equivocation", 60*time.Second,
		fmt.Sprintf(`<g class="block witnessed" data-no="%d">`, witnessedNo),
		`>witnessed</text>`,
		fmt.Sprintf("checkpoint #%d, witnessed by 1 cosigner", witnessedNo),
		"1 branch checkpoints, 1 witnessed",
		`<div class="alert" data-kind="equivocation">Equivocation: branch `+n.ID+` signed two checkpoints that do not extend each other (detected 2026-12-07T08:00:00Z)`,
		"rewritten</pre>")
	// The branch has moved on: its sealed head is a later block, not witnessed.
	b.waitDOM("the sealed head beyond the witnessed one", 10*time.Second, `<g class="block head" data-no="`, `<g class="gap">`)
	b.screenshot("dashboard-checkpoints.png")
}
