package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/flownode/flownode/api"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/store"
	"github.com/flownode/flownode/witness"
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
	var rep ledger.Report
	getJSON(t, n.URL+"/api/v1/verify", &rep)
	if rep.Valid {
		t.Fatal("GET /api/v1/verify finds the tampered store valid")
	}
	wants := []string{
		`<div id="alerts" role="alert" aria-live="assertive"><div class="alert" data-kind="verify">Verification failed: ledger INVALID at ` + domText(rep.Where),
		"ledger INVALID at " + domText(rep.Where),
	}
	t.Logf("verify: invalid at %s, location %+v", rep.Where, rep.Location)
	// Where the verifier locates the damage, the alert names it.
	if rep.Location != nil && rep.Location.Record != "" {
		wants = append(wants, "the damage is in record "+rep.Location.Record)
	}
	b := openBrowser(t, bin)
	b.navigate(n.URL + "/")
	b.waitDOM("the verification alert", 60*time.Second, wants...)
	b.screenshot("dashboard-verify-alert.png")
}

// TestDashboardEquivocationAlert rewrites a stopped node's branch in a 3-node ring
// (rewriteBranch: the node mines its branch anew and signs it with its own key) and
// wants the dashboard of one of its witnesses to show the equivocation its
// GET /api/v1/checkpoints reports, with both checkpoints as evidence, in the alert
// area; and, before that, the witnessed heads of the branches.
func TestDashboardEquivocationAlert(t *testing.T) {
	bin := chromium(t)
	base := t.TempDir()
	nodes := localRing3(t, base)
	n1, n2 := nodes[0], nodes[1]
	// Records under the victim's own ID, a key it owns, so that it signs them and
	// every node holds blocks of its branch (a node fetches the blocks of the
	// branches it holds records of).
	victim := n2
	for i := 0; i < 6; i++ {
		if rc := putOne(t, nodes[i%3].URL, "dash-equivocation", fmt.Sprintf(`{"n":%d}`, i), victim.ID); rc.Block.Branch != victim.ID {
			t.Fatalf("a record under key %s was signed by %s, not by its owner", victim.ID, rc.Block.Branch)
		}
	}
	if !waitFor(60*time.Second, 250*time.Millisecond, func() bool {
		c := ownCheckpoint(t, victim.URL)
		return c != nil && len(c.Cosigners) == 2
	}) {
		t.Fatal("the victim's checkpoint was not cosigned by two witnesses within 60 s")
	}

	b := openBrowser(t, bin)
	b.navigate(n1.URL + "/")
	// The victim's chain on its witness's page, its witnessed head marked.
	witnessed := regexp.MustCompile(`(?s)<g class="block[^"]* witnessed" data-no="\d+">.*?(?:>|, )witnessed</text>`)
	b.waitFor("the victim's witnessed head", 60*time.Second, func(dom string) []string {
		if !witnessed.MatchString(chainHTML(dom, victim.ID)) {
			return []string{"a witnessed block in the victim's chain"}
		}
		return nil
	})
	b.waitDOM("no alert yet", 10*time.Second, `<div id="alerts" role="alert" aria-live="assertive"></div>`)

	if code := victim.Stop(); code != 0 {
		t.Fatalf("victim stopped with %d", code)
	}
	rewriteBranch(t, victim.Data)
	back := startNode(t, victim.Data, "local", "--join", n1.Addr)
	// It mines its branch anew once it has a record to seal.
	resealed := false

	var ev *witness.Evidence
	if !waitFor(90*time.Second, 250*time.Millisecond, func() bool {
		resealed = resealed || tryPut(back.URL, "dash-equivocation", victim.ID)
		for _, e := range getCheckpoints(t, n1.URL).Equivocations {
			if e.Branch.String() == victim.ID {
				ev = e
				return true
			}
		}
		return false
	}) {
		t.Fatal("the witness found no equivocation of the rewritten branch within 90 s")
	}
	dom := b.waitDOM("the equivocation alert", 60*time.Second,
		`<div class="alert" data-kind="equivocation">Equivocation: branch `+victim.ID+` signed two checkpoints that do not extend each other (`+ev.Kind,
		domText(strings.TrimSpace(ev.First)), domText(strings.TrimSpace(ev.Second)))
	// The header follows: verify is asked again at once, and reports the equivocation.
	b.waitDOM("verify reporting the equivocation", 30*time.Second, `ledger INVALID at equivocation of branch `+victim.ID)
	if !strings.Contains(dom, `<div class="chain equivocating" data-branch="`+victim.ID+`">`) {
		t.Error("the victim's chain is not marked as equivocating")
	}
	if !strings.Contains(dom, `<div id="alerts" role="alert" aria-live="assertive"><div class="alert"`) {
		t.Error("the equivocation is not in the role=alert area")
	}
	b.screenshot("dashboard-equivocation.png")
}

// domText is s as Chromium serializes a text node: &, < and > escaped.
func domText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\u00a0", "&nbsp;").Replace(s)
}

// chainHTML is the part of the dashboard's DOM that draws branch's chain, or "".
func chainHTML(dom, branch string) string {
	start := strings.Index(dom, `<div class="chain" data-branch="`+branch+`">`)
	if start < 0 {
		return ""
	}
	rest := dom[start+1:]
	if end := strings.Index(rest, `<div class="chain"`); end >= 0 {
		return dom[start : start+1+end]
	}
	if end := strings.Index(rest, `<h2>`); end >= 0 {
		return dom[start : start+1+end]
	}
	return dom[start:]
}
