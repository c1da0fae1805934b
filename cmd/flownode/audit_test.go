package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"

	"github.com/flownode/flownode/api"
	"github.com/flownode/flownode/audit"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
	"github.com/flownode/flownode/node"
	"github.com/flownode/flownode/store"
)

// TestAuditMergedBranch: on a ring of 5 processes, two audits with one --to
// against different nodes write the same merged head digest and cover every
// record put before it; verify --merged passes on the file and names the line
// and field of a one-byte change anywhere in it; and a record deleted from
// every node's store (the owner's attachment index kept) is reported missing
// with its txID, data key and holders.
func TestAuditMergedBranch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 5 processes twice")
	}
	nodes := dlStartRing(t, 5)
	dlWaitRing(t, nodes, 60*time.Second)
	const clients, per = 5, 40
	var puts []receipt
	var mid time.Time // between the first and the second half of the puts
	for c := range clients {
		if c == clients/2 {
			time.Sleep(50 * time.Millisecond)
			mid = time.Now().UTC()
			time.Sleep(50 * time.Millisecond)
		}
		bodies := make([]string, per)
		for i := range bodies {
			bodies[i], _ = dlReading("audit", c, i)
		}
		rcs, code, msg := dlPut(nodes[c], bodies, true, true)
		if rcs == nil {
			t.Fatalf("put through %s: %d %s", nodes[c].ID[:8], code, msg)
		}
		puts = append(puts, rcs...)
	}
	// Once every put is sealed, --to is in the past and the window is fixed.
	to := waitSealed(t, nodes)
	toFlag := to.Format(time.RFC3339Nano)
	// An idle node mines no more blocks, so its branch grew in one burst: wait
	// until each branch's checkpoint is cosigned before the audit checks it.
	if !waitFor(60*time.Second, 250*time.Millisecond, func() bool {
		for _, n := range nodes {
			if c := ownCheckpoint(t, n.URL); c == nil || len(c.Cosigners) == 0 {
				return false
			}
		}
		return true
	}) {
		t.Fatal("not every branch's checkpoint was cosigned within 60 s")
	}
	dir := t.TempDir()

	a := runCLI(t, nil, "audit", "--node", nodes[0].URL, "--to", toFlag, "--out", filepath.Join(dir, "a.jsonl"))
	b := runCLI(t, nil, "audit", "--node", nodes[3].URL, "--to", toFlag, "--out", filepath.Join(dir, "b.jsonl"))
	if a.Code != 0 || b.Code != 0 || !strings.HasPrefix(a.Stdout, "valid\n") {
		t.Fatalf("audits: %v\n%v", a, b)
	}
	headA, headB := lineWith(a.Stdout, "merged head "), lineWith(b.Stdout, "merged head ")
	if headA != headB {
		t.Fatalf("two audits of one window differ: %s against %s, %s against %s", headA, nodes[0].ID[:8], headB, nodes[3].ID[:8])
	}
	t.Logf("audit: %s", strings.ReplaceAll(a.Stdout, "\n", " | "))
	if !strings.Contains(a.Stdout, "agree with the checkpoints their witnesses cosigned") {
		t.Errorf("no branch was checked against a witnessed checkpoint: %v", a)
	}
	file := filepath.Join(dir, "a.jsonl")
	covered := auditCovered(t, file)
	for _, rc := range puts {
		if !covered[rc.TxID] {
			t.Fatalf("put %s is not among the records the audit's seals cover", rc.TxID)
		}
	}

	if r := runCLI(t, nil, "verify", "--merged", file); r.Code != 0 || !strings.HasPrefix(r.Stdout, "valid\n") || lineWith(r.Stdout, "merged head ") != headA || headA == "" {
		t.Fatalf("verify --merged of an intact file: %v", r)
	}
	checkOneByteChanges(t, file)
	checkAuditOptions(t, nodes[1], dir, mid, toFlag, puts[clients/2*per:], headA)

	// Delete one sealed record from every node's store, keep its owner's
	// attachment index, and audit the same window again.
	gone := puts[len(puts)/2]
	for _, p := range nodes {
		if code := p.Stop(); code != 0 {
			t.Fatalf("node %s exited %d", p.ID[:8], code)
		}
	}
	txID, _ := ledger.ParseHash(gone.TxID)
	for _, p := range nodes {
		deleteRecordBytes(t, p.Data, txID)
	}
	restarted := []*nodeProc{startNode(t, nodes[0].Data, "local", "--replicas", fmt.Sprint(dlK))}
	for _, p := range nodes[1:] {
		restarted = append(restarted, startNode(t, p.Data, "local", "--replicas", fmt.Sprint(dlK), "--join", restarted[0].Addr))
	}
	dlWaitRing(t, restarted, 60*time.Second)
	if r := doHTTP(t, http.MethodGet, restarted[1].URL+"/api/v1/records/"+gone.TxID, "", nil); r.Code != http.StatusNotFound {
		t.Fatalf("the deleted record is still served: %d", r.Code)
	}
	c := runCLI(t, nil, "audit", "--node", restarted[2].URL, "--to", toFlag, "--out", filepath.Join(dir, "c.jsonl"))
	if c.Code != 1 || !strings.HasPrefix(c.Stdout, "incomplete: 1 sealed record(s) missing") {
		t.Fatalf("audit after the deletion: %v", c)
	}
	if lineWith(c.Stdout, "merged head ") != headA {
		t.Errorf("the blocks did not change, the merged head did: %v", c)
	}
	missing := lineWith(c.Stdout, "missing ")
	holders := dlHolders(dlSorted(restarted), gone.Key, dlK)
	if !strings.HasPrefix(missing, gone.TxID+":") || !strings.Contains(missing, "key "+gone.Key) || !strings.Contains(missing, "should be on "+holders[0]) {
		t.Errorf("missing line %q: want txID %s, key %s, owner %s", missing, gone.TxID, gone.Key, holders[0])
	}
	if r := runCLI(t, nil, "verify", "--merged", filepath.Join(dir, "c.jsonl")); r.Code != 1 || !strings.HasPrefix(r.Stdout, "incomplete: 1") {
		t.Errorf("verify --merged of an incomplete audit: %v", r)
	}

	// A node that rewrites its branch while down (re-mined from genesis with its
	// own key: it verifies on its own) is caught by its witnesses' checkpoints.
	victim := restarted[4]
	if code := victim.Stop(); code != 0 {
		t.Fatalf("node %s exited %d", victim.ID[:8], code)
	}
	rewriteBranch(t, victim.Data)
	back := startNode(t, victim.Data, "local", "--replicas", fmt.Sprint(dlK), "--join", restarted[0].Addr)
	restarted[4] = back
	dlWaitRing(t, restarted, 60*time.Second)
	r := runCLI(t, nil, "audit", "--node", restarted[0].URL, "--to", toFlag, "--out", filepath.Join(dir, "d.jsonl"))
	if want := "invalid: branch " + victim.ID + ": checkpoint cosigned by "; r.Code != 1 || !strings.HasPrefix(r.Stdout, want) {
		t.Errorf("audit of a rewritten branch: want %q, got %v", want, r)
	}
	t.Logf("rewritten branch: %s", strings.ReplaceAll(r.Stdout, "\n", " | "))
}

// auditCovered reads the txIDs an audit file's block lines list with a leaf.
func auditCovered(t *testing.T, file string) map[string]bool {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, l := range bytes.Split(b, []byte("\n")) {
		var bl audit.BlockLine
		if json.Unmarshal(l, &bl) != nil || bl.Type != "block" {
			continue
		}
		for _, c := range bl.Covers {
			if c.Leaf != nil {
				out[c.TxID.String()] = true
			}
		}
	}
	return out
}

// checkOneByteChanges changes one byte at chosen places (header, a block's
// bytes, a leaf, a seq, the trailer) and at random ones, and wants each change
// found on its own line: through the CLI for the chosen ones, in process
// (audit.Check) for the random ones.
func checkOneByteChanges(t *testing.T, file string) {
	orig, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(orig, []byte("\n"))
	lineOf := func(pos int) int { return bytes.Count(orig[:pos], []byte("\n")) + 1 }
	at := func(line int, sub string, skip int) int {
		start := 0
		for _, l := range lines[:line-1] {
			start += len(l)
		}
		i := bytes.Index(lines[line-1], []byte(sub))
		if i < 0 {
			t.Fatalf("line %d has no %q", line, sub)
		}
		return start + i + len(sub) + skip
	}
	firstBlock := 2
	for i, l := range lines[1 : len(lines)-2] {
		if bytes.Contains(l, []byte(`"leaf"`)) {
			firstBlock = i + 2
			break
		}
	}
	last := len(lines) - 1 // SplitAfter leaves an empty last element
	cases := []struct {
		name, field string
		pos         int
	}{
		{"header genesis", "line 1 (header): genesis", at(1, `"genesis":"`, 3)},
		{"header to", "line 1 (header): sum", at(1, `"to":"`, 2)},
		{"header membership", "line 1 (header): branches[0].membership", at(1, `"membership":"`, 60)},
		{"block signature", fmt.Sprintf("line %d (block", firstBlock), at(firstBlock, `"sig":"`, 5)},
		{"leaf", "].leaf", at(firstBlock, `"leaf":"`, 7)},
		{"seq", fmt.Sprintf("line %d (block", firstBlock), at(firstBlock, `"seq":"`, 0)},
		{"digest", ": digest", at(firstBlock, `"digest":"`, 9)},
		{"trailer head", fmt.Sprintf("line %d (trailer): head", last), at(last, `"head":"`, 4)},
	}
	dir := t.TempDir()
	for _, c := range cases {
		changed := flipByte(orig, c.pos)
		path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
		if err := os.WriteFile(path, changed, 0o644); err != nil {
			t.Fatal(err)
		}
		r := runCLI(t, nil, "verify", "--merged", path)
		want := fmt.Sprintf("invalid: line %d", lineOf(c.pos))
		if r.Code != 1 || !strings.HasPrefix(r.Stdout, want) || !strings.Contains(lineWith(r.Stdout, "invalid: "), c.field) {
			t.Errorf("%s changed (byte %d): want %q naming %q, got %v", c.name, c.pos, want, c.field, r)
		}
		t.Logf("%s changed: %s", c.name, lineWith(r.Stdout, "invalid: "))
	}
	rng := rand.New(rand.NewPCG(1, uint64(len(orig))))
	for range 60 {
		pos := rng.IntN(len(orig))
		rep, err := audit.Check(bytes.NewReader(flipByte(orig, pos)))
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("line %d", lineOf(pos))
		if rep.Valid || !regexp.MustCompile("^"+want+`( \(|:|$)`).MatchString(rep.Where) {
			t.Errorf("byte %d (line %d, %q) changed: report %+v", pos, lineOf(pos), orig[pos], rep)
		}
	}
}

// flipByte changes the lowest bit of one byte.
func flipByte(b []byte, pos int) []byte {
	out := bytes.Clone(b)
	out[pos] ^= 1
	return out
}

// deleteRecordBytes deletes a record's bytes from a stopped node's store,
// leaving its index entries (the attachment the audit lists it by).
func deleteRecordBytes(t *testing.T, dir string, txID ledger.Hash) {
	prof, err := node.ProfileNamed("local")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(dir, prof.Store, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Raw().Update(func(txn *badger.Txn) error { return txn.Delete(store.RecordKey(txID)) }); err != nil {
		t.Fatal(err)
	}
}

// lineWith returns the rest of the first line of s that starts with prefix, or "".
func lineWith(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			return rest
		}
	}
	return ""
}

// waitSealed waits until no node holds a record its branch has not sealed
// yet, and returns a time just after: an audit --to it covers every record
// put so far, whatever the load on the machine.
func waitSealed(tb testing.TB, nodes []*nodeProc) time.Time {
	tb.Helper()
	ok := waitFor(3*time.Minute, 100*time.Millisecond, func() bool {
		for _, p := range nodes {
			var n api.NodeInfo
			r, err := tryHTTP(httpClient, http.MethodGet, p.URL+"/api/v1/node", "", nil)
			if err != nil || r.Code != http.StatusOK || json.Unmarshal(r.Body, &n) != nil || n.Stats.Unsealed != 0 || n.Stats.Dist.ReplPending != 0 || n.Stats.Dist.PtrPending != 0 {
				return false
			}
		}
		return true
	})
	if !ok {
		tb.Fatalf("records still unsealed or unreplicated after 3 minutes")
	}
	to := time.Now().UTC()
	time.Sleep(10 * time.Millisecond)
	return to
}

// checkAuditOptions: a window with --from starts at an anchor block and still
// verifies offline, covering every record put after from; an audit without
// --to is valid; a pinned network.json is used, and another network's is
// refused.
func checkAuditOptions(t *testing.T, p *nodeProc, dir string, from time.Time, to string, later []receipt, fullHead string) {
	file := filepath.Join(dir, "window.jsonl")
	r := runCLI(t, nil, "audit", "--node", p.URL, "--from", from.Format(time.RFC3339Nano), "--to", to, "--out", file)
	if r.Code != 0 || lineWith(r.Stdout, "merged head ") == fullHead {
		t.Fatalf("audit --from --to: %v (the full window's head is %s)", r, fullHead)
	}
	covered := auditCovered(t, file)
	for _, rc := range later {
		if !covered[rc.TxID] {
			t.Errorf("put %s, after --from, is not covered", rc.TxID)
		}
	}
	b, _ := os.ReadFile(file)
	var h audit.Header
	if err := json.Unmarshal(bytes.SplitN(b, []byte("\n"), 2)[0], &h); err != nil || h.Branches[0].Anchor == nil {
		t.Errorf("header of a window after genesis: %v, anchor %q", err, h.Branches[0].Anchor)
	}
	if v := runCLI(t, nil, "verify", "--merged", file); v.Code != 0 || !strings.HasPrefix(v.Stdout, "valid\n") {
		t.Errorf("verify --merged of a window with anchors: %v", v)
	}
	if r := runCLI(t, nil, "audit", "--node", p.URL, "--out", filepath.Join(dir, "now.jsonl")); r.Code != 0 || !strings.HasPrefix(r.Stdout, "valid\n") {
		t.Errorf("audit without --to: %v", r)
	}

	a, _ := testAuthorities.Load("local")
	pinned := filepath.Join(dir, "pinned")
	if err := os.MkdirAll(pinned, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := a.(*network.Authority).Description.Save(pinned); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, nil, "audit", "--node", p.URL, "--to", to, "--network", pinned, "--out", filepath.Join(dir, "pinned.jsonl")); r.Code != 0 || lineWith(r.Stdout, "merged head ") != fullHead {
		t.Errorf("audit with the network pinned: %v, want head %s", r, fullHead)
	}
	other := filepath.Join(dir, "other")
	if _, err := network.Init(other, "flownode-test", a.(*network.Authority).Description.Mining); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, nil, "audit", "--node", p.URL, "--to", to, "--network", other, "--out", filepath.Join(dir, "other.jsonl")); r.Code != 2 || !strings.Contains(r.Stderr, "another network") {
		t.Errorf("audit with another network pinned: %v", r)
	}
}
