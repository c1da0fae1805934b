package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/flownode/flownode/checkpoint"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
	"github.com/flownode/flownode/node"
	"github.com/flownode/flownode/store"
	"github.com/flownode/flownode/witness"
)

func getCheckpoints(t *testing.T, base string) witness.CheckpointList {
	t.Helper()
	var l witness.CheckpointList
	getJSON(t, base+"/api/v1/checkpoints", &l)
	return l
}

// ownCheckpoint is a node's own branch's checkpoint, as it serves it.
func ownCheckpoint(t *testing.T, base string) *witness.CheckpointInfo {
	for _, c := range getCheckpoints(t, base).Checkpoints {
		if c.Own {
			return &c
		}
	}
	return nil
}

// branchBlocks lists the blocks of branch a node holds.
func branchBlocks(t *testing.T, base, branch string) []json.RawMessage {
	t.Helper()
	var out struct {
		Blocks []json.RawMessage `json:"blocks"`
	}
	var all []json.RawMessage
	for from := 1; ; from += len(out.Blocks) {
		out.Blocks = nil
		getJSON(t, fmt.Sprintf("%s/api/v1/blocks?branch=%s&from=%d&limit=1000", base, branch, from), &out)
		all = append(all, out.Blocks...)
		if len(out.Blocks) < 1000 {
			return all
		}
	}
}

// A 3-node ring: every branch's checkpoints get cosigned by its two witnesses, a
// proof from any node verifies offline (and not with a flipped bit, nor with
// another branch's checkpoint), and a node whose branch is rewritten while it is
// down is caught by its witnesses when it comes back: they keep both checkpoints
// as evidence, refuse its new blocks, report it in verify, and every record it
// served before is still read, byte for byte.
func TestWitnessesCatchARewrittenBranch(t *testing.T) {
	base := t.TempDir()
	nodes := localRing3(t, base)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	var receipts []receipt
	for i := 0; i < 30; i++ {
		receipts = append(receipts, putOne(t, nodes[i%3].URL, fmt.Sprintf("meter-%d", i%4), fmt.Sprintf(`{"n":%d}`, i)))
	}
	// And one under each node's own ID, a key it owns: a node mines blocks only to
	// seal records, so every branch gets one however the 30 keys fell.
	for i, n := range nodes {
		receipts = append(receipts, putOne(t, n.URL, "meter-own", fmt.Sprintf(`{"n":%d}`, 30+i), n.ID))
	}
	// Every branch is cosigned by both of its witnesses.
	if !waitFor(60*time.Second, 250*time.Millisecond, func() bool {
		for _, n := range nodes {
			c := ownCheckpoint(t, n.URL)
			if c == nil || len(c.Cosigners) != 2 {
				return false
			}
		}
		return true
	}) {
		for _, n := range nodes {
			t.Logf("%s: %+v", n.ID[:8], ownCheckpoint(t, n.URL))
		}
		t.Fatal("the branches' checkpoints were not cosigned by two witnesses within 60 s")
	}

	victim := n2
	var mine []receipt // records the victim signed
	for _, r := range receipts {
		if r.Block.Branch == victim.ID {
			mine = append(mine, r)
		}
	}
	if len(mine) == 0 {
		t.Fatal("the victim signed none of 30 records")
	}
	saved := map[string][]byte{}
	for _, r := range receipts {
		saved[r.TxID] = doHTTP(t, http.MethodGet, n1.URL+"/api/v1/records/"+r.TxID, "", nil).Body
	}

	// A proof of one of the victim's records, from a node that does not own it,
	// verifies offline with the network's description alone.
	netDir := victim.Data
	var proofBody []byte
	if !waitFor(30*time.Second, 200*time.Millisecond, func() bool {
		resp := doHTTP(t, http.MethodGet, n3.URL+"/api/v1/records/"+mine[0].TxID+"/proof", "", nil)
		proofBody = resp.Body
		return resp.Code == http.StatusOK
	}) {
		t.Fatalf("no proof within 30 s: %s", proofBody)
	}
	proofFile := filepath.Join(base, "proof.json")
	if err := os.WriteFile(proofFile, proofBody, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, nil, "verify-record", "--network", netDir, proofFile); r.Code != 0 || !strings.HasPrefix(r.Stdout, "valid\n") {
		t.Fatalf("verify-record of a served proof: %v", r)
	}
	var p checkpoint.Proof
	if err := json.Unmarshal(proofBody, &p); err != nil {
		t.Fatal(err)
	}
	// One flipped bit, anywhere that matters, fails with a named step.
	for _, c := range []struct {
		where  string
		mutate func(p *checkpoint.Proof)
	}{
		{"record", func(p *checkpoint.Proof) { p.Record = bytes.Replace(p.Record, []byte(`"n":`), []byte(`"m":`), 1) }},
		{"proof", func(p *checkpoint.Proof) {
			if len(p.Proof.Path) > 0 {
				p.Proof.Path[0][0] ^= 1
			} else {
				p.Proof.Index ^= 1
			}
		}},
		{"block", func(p *checkpoint.Proof) {
			p.Block = bytes.Replace(p.Block, []byte(`"sealed":"`), []byte(`"sealed":"1`), 1)
		}},
		{"blockProof", func(p *checkpoint.Proof) {
			if len(p.BlockProof.Path) > 0 {
				p.BlockProof.Path[len(p.BlockProof.Path)-1][5] ^= 0x10
			} else {
				p.BlockProof.Size++
			}
		}},
		{"checkpoint", func(p *checkpoint.Proof) { p.Checkpoint = strings.Replace(p.Checkpoint, "\n\n", "\n\n ", 1) }},
	} {
		var q checkpoint.Proof
		json.Unmarshal(proofBody, &q)
		c.mutate(&q)
		b, _ := json.Marshal(q)
		f := filepath.Join(base, "bad.json")
		os.WriteFile(f, b, 0o644)
		if r := runCLI(t, nil, "verify-record", "--network", netDir, f); r.Code != 1 || !strings.HasPrefix(r.Stdout, "invalid: ") {
			t.Errorf("%s altered: verify-record says %v", c.where, r)
		}
	}
	// Against another branch's checkpoint it does not hold.
	other := ownCheckpoint(t, n1.URL)
	p.Checkpoint = other.Checkpoint
	b, _ := json.Marshal(p)
	f := filepath.Join(base, "other.json")
	os.WriteFile(f, b, 0o644)
	if r := runCLI(t, nil, "verify-record", "--network", netDir, f); r.Code != 1 || !strings.Contains(r.Stdout, "invalid: checkpoint") {
		t.Errorf("a proof against another branch's checkpoint: %v", r)
	}

	// The checkpoints export: the victim's own, cosigned, and those it witnesses.
	exported := filepath.Join(base, "checkpoints.json")
	if r := runCLI(t, nil, "checkpoints", "--node", victim.URL, "--out", exported); r.Code != 0 || !strings.Contains(r.Stdout, "3 checkpoint(s), 0 equivocation(s)") {
		t.Errorf("checkpoints export: %v", r)
	}

	// The victim's branch as its witnesses cosigned it.
	before := ownCheckpoint(t, victim.URL)
	oldBlocks := branchBlocks(t, victim.URL, victim.ID)
	if code := victim.Stop(); code != 0 {
		t.Fatalf("victim stopped with %d", code)
	}
	rewriteBranch(t, victim.Data)
	// It comes back and mines its branch anew from genesis, with its own key, once it
	// has a record to seal: one under its own ID, put through it until it takes it.
	back := startNode(t, victim.Data, "local", "--join", n1.Addr)
	nodes = []*nodeProc{n1, back, n3}
	resealed := false

	witnesses := []*nodeProc{n1, n3}
	var ev *witness.Evidence
	// Until its ring knows it again a put through it may take its 20 s of
	// retries: two minutes leave room for a few.
	if !waitFor(120*time.Second, 250*time.Millisecond, func() bool {
		resealed = resealed || tryPut(back.URL, "meter-own", victim.ID)
		for _, w := range witnesses {
			for _, e := range getCheckpoints(t, w.URL).Equivocations {
				if e.Branch.String() == victim.ID {
					ev = e
					return true
				}
			}
		}
		return false
	}) {
		t.Fatalf("no witness caught the rewritten branch within 120 s (a record sealed anew: %v); the victim says %+v", resealed, ownCheckpoint(t, back.URL))
	}
	t.Logf("evidence: %s, %s; first head %s, second head %s", ev.Kind, ev.Reason, ev.FirstHead, ev.SecondHead)
	if ev.Kind != "fork" {
		t.Errorf("evidence of kind %q", ev.Kind)
	}
	if ev.FirstHead != before.Head && before.Size > 0 {
		// The witness may have cosigned a later checkpoint than the one read
		// above; it is still a head of the old branch.
		if !containsBlockHash(oldBlocks, ev.FirstHead) {
			t.Errorf("evidence's first head %s is not a block of the old branch", ev.FirstHead)
		}
	}
	if ev.SecondHead == ev.FirstHead || containsBlockHash(oldBlocks, ev.SecondHead) {
		t.Errorf("evidence's second head %s is a block of the old branch", ev.SecondHead)
	}
	// Both notes are the victim's own signatures: they open with its key alone.
	g, _ := ledger.ParseHash(getNetwork(t, n1.URL).Genesis)
	mem, ok := membershipOf(t, victim.Data)
	if !ok {
		t.Fatal("no membership in the victim's data dir")
	}
	// The second is a checkpoint, the first the checkpoint the witness had cosigned
	// or the block it stores that the second does not hold: both signed by the victim.
	if _, err := checkpoint.Open([]byte(ev.Second), g, mem); err != nil {
		t.Errorf("evidence's second note does not open with the victim's key: %v", err)
	}
	if _, err := checkpoint.Open([]byte(ev.First), g, mem); err != nil {
		b, berr := ledger.ParseBlock([]byte(ev.First))
		if berr != nil || b.CheckSelf() != nil || b.Branch.String() != victim.ID || b.Hash != ev.FirstHead {
			t.Errorf("evidence's first part is neither the victim's checkpoint (%v) nor its block (%v)", err, berr)
		}
	}

	// Its new blocks are refused: the witnesses hold the old branch, not the new.
	time.Sleep(3 * time.Second)
	for i := 0; i < 10; i++ { // new records for the victim's range, which it signs and pushes
		putOne(t, n1.URL, "after", fmt.Sprintf(`{"after":%d}`, i))
	}
	time.Sleep(3 * time.Second)
	for _, w := range witnesses {
		for _, raw := range branchBlocks(t, w.URL, victim.ID) {
			if !containsBlock(oldBlocks, raw) {
				t.Errorf("witness %s took a block of the rewritten branch: %s", w.ID[:8], raw)
				break
			}
		}
		rep := getVerify(t, w.URL)
		if rep.Valid || !strings.Contains(rep.Where, "equivocation") || !strings.Contains(rep.Where, victim.ID) {
			t.Errorf("verify on witness %s does not report the equivocation: %+v", w.ID[:8], rep)
		}
	}
	// Nothing it served before is lost to readers.
	for tx, want := range saved {
		for _, n := range nodes {
			got := doHTTP(t, http.MethodGet, n.URL+"/api/v1/records/"+tx, "", nil)
			if got.Code != http.StatusOK || !bytes.Equal(got.Body, want) {
				t.Errorf("record %s from %s after the rewrite: %d %s", tx[:8], n.ID[:8], got.Code, got.Body)
			}
		}
	}
}

// localRing3 starts three nodes of the local profile in base and waits for their ring.
func localRing3(t *testing.T, base string) []*nodeProc {
	t.Helper()
	n1 := startNode(t, filepath.Join(base, "n1"), "local")
	n2 := startNode(t, filepath.Join(base, "n2"), "local", "--join", n1.Addr)
	n3 := startNode(t, filepath.Join(base, "n3"), "local", "--join", n1.Addr)
	nodes := []*nodeProc{n1, n2, n3}
	var why string
	if !waitFor(60*time.Second, 200*time.Millisecond, func() (ok bool) { ok, why = ringIs(nodes); return ok }) {
		t.Fatalf("no ring: %s", why)
	}
	return nodes
}

func containsBlockHash(blocks []json.RawMessage, h ledger.Hash) bool {
	for _, raw := range blocks {
		if b, err := ledger.ParseBlock(raw); err == nil && b.Hash == h {
			return true
		}
	}
	return false
}

func containsBlock(blocks []json.RawMessage, raw []byte) bool {
	for _, b := range blocks {
		if bytes.Equal(b, raw) {
			return true
		}
	}
	return false
}

// rewriteBranch is the test's tooling for a node that rewrites its history while it
// is down: it deletes the node's own branch (its blocks, the records they hold, its
// branch tree and its checkpoint) from the stopped node's store, so that the node
// mines its branch anew from genesis, signing every new block with its own key.
// tryPut puts one reading of thing under key through base and reports whether it was
// taken (201): a node that has just come back may not route it yet.
func tryPut(base, thing, key string) bool {
	// The time as a string: an integer beyond 2^53 is refused (canonical JSON).
	body := fmt.Sprintf(`{"thing":%q,"data":{"at":"%d"},"key":%q}`, thing, time.Now().UnixNano(), key)
	r, err := tryHTTP(httpClient, http.MethodPost, base+"/api/v1/records", "application/json", []byte(body))
	return err == nil && r.Code == http.StatusCreated
}

func rewriteBranch(t *testing.T, dir string) {
	t.Helper()
	id, err := ledger.LoadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := node.ProfileNamed("local")
	st, err := store.Open(dir, p.Store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	branch := id.ID
	var drop []store.Record
	err = st.EachAttachment(func(b [20]byte, no, seq uint64, txID [32]byte) error {
		if ledger.Key(b) != branch {
			return nil
		}
		raw, err := st.Record(txID)
		if err != nil {
			return nil
		}
		r, err := ledger.ParseRecord(raw)
		if err != nil {
			return err
		}
		drop = append(drop, store.Record{TxID: txID, Key: r.Key, Thing: r.Thing, Time: r.Time, Branch: b, BlockNo: no, Seq: seq})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Write(context.Background(), store.Write{DropRecords: drop}); err != nil {
		t.Fatal(err)
	}
	var hashes [][]byte
	st.EachBlock(func(b [20]byte, no uint64, raw []byte) error {
		if ledger.Key(b) == branch {
			blk, err := ledger.ParseBlock(raw)
			if err == nil {
				hashes = append(hashes, store.BlockHashKey(blk.Hash))
			}
		}
		return nil
	})
	err = st.Raw().Update(func(txn *badger.Txn) error {
		for _, k := range hashes {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		for _, name := range []string{"branch-tree", "checkpoint"} {
			if err := txn.Delete(store.MetaKey(name)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, prefix := range [][]byte{append([]byte{store.PrefixBlock}, branch[:]...), append([]byte{store.PrefixBranchTree}, branch[:]...)} {
		if err := st.Raw().DropPrefix(prefix); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("rewrote branch %s: dropped %d blocks and %d records", branch, len(hashes), len(drop))
}

// membershipOf is the key of the node whose data dir is dir, as checkpoint.Open
// looks keys up.
func membershipOf(t *testing.T, dir string) (checkpoint.Keys, bool) {
	t.Helper()
	m, err := network.LoadMembership(dir)
	if err != nil {
		return nil, false
	}
	return func(id ledger.Key) (ed25519.PublicKey, bool) {
		if id != m.Node {
			return nil, false
		}
		return m.Public, true
	}, true
}

// NOTIFY_EDGE: an edge outside the ring gets the node's blocks in order and its
// checkpoints, and can check them with the node's key alone.
func TestNotifyEdgeHandsBlocksAndCheckpointsOut(t *testing.T) {
	var mu sync.Mutex
	var got []witness.EdgeNotification
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n witness.EdgeNotification
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil || n.Type != "NOTIFY_EDGE" {
			http.Error(w, "bad notification", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
	}))
	defer edge.Close()
	dir := filepath.Join(t.TempDir(), "n")
	n := startNode(t, dir, "local", "--edge", edge.URL)
	// The branch grows, and so the checkpoint changes, only as records come.
	puts := 0
	if !waitFor(30*time.Second, 100*time.Millisecond, func() bool {
		puts++
		putOne(t, n.URL, "meter-1", fmt.Sprintf(`{"n":%d}`, puts))
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 3
	}) {
		t.Fatal("fewer than 3 notifications in 30 s")
	}
	mu.Lock()
	defer mu.Unlock()
	keys, _ := membershipOf(t, dir)
	g, _ := ledger.ParseHash(getNetwork(t, n.URL).Genesis)
	prev, next := g, uint64(1)
	for i, note := range got {
		if note.From != next || note.Branch != n.ID {
			t.Fatalf("notification %d: from %d of %s, want from %d of %s", i, note.From, note.Branch, next, n.ID)
		}
		for _, raw := range note.Blocks {
			b, err := ledger.ParseBlock(raw)
			if err != nil || b.CheckSelf() != nil || b.No != next || b.Prev != prev {
				t.Fatalf("notification %d: block %d does not chain (%v)", i, next, err)
			}
			prev, next = b.Hash, next+1
		}
		c, err := checkpoint.Open([]byte(note.Checkpoint), g, keys)
		if err != nil {
			t.Fatalf("notification %d: %v", i, err)
		}
		if c.Size == next-1 && c.Head != prev {
			t.Fatalf("notification %d: the checkpoint's head %s is not the last block %s", i, c.Head, prev)
		}
	}
}
