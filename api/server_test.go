package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

// testNode is a ring-less node (a ring of one) behind an httptest server.
type testNode struct {
	n   *node.Node
	srv *httptest.Server
	dir string // the data dir: a one-node network, its authority key in it
}

// openTestNode opens a node on the local profile in a temporary directory and
// serves its API. With mine, the node's miner runs, so blocks get mined. edit,
// when given, changes the profile's HTTP limits (the mining rules stay local's).
func openTestNode(t *testing.T, mine bool, edit func(*node.Profile)) *testNode {
	t.Helper()
	p := node.LocalProfile()
	if edit != nil {
		edit(&p)
	}
	dir := t.TempDir()
	n, err := node.Open(node.Config{DataDir: dir, Profile: p})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewServer(n, nil, nil))
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	if mine {
		go func() { runErr <- n.Run(ctx) }()
	} else {
		runErr <- nil
	}
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-runErr; err != nil {
			t.Errorf("node.Run: %v", err)
		}
		if err := n.Close(); err != nil {
			t.Errorf("node.Close: %v", err)
		}
	})
	return &testNode{n: n, srv: srv, dir: dir}
}

// answer is one HTTP answer, body read.
type answer struct {
	code int
	body []byte
	head http.Header
}

func (a answer) contentType() string { return a.head.Get("Content-Type") }

func (tn *testNode) do(t *testing.T, method, path, contentType string, body []byte) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, tn.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := tn.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return answer{code: resp.StatusCode, body: b, head: resp.Header}
}

func (tn *testNode) get(t *testing.T, path string) answer {
	t.Helper()
	return tn.do(t, http.MethodGet, path, "", nil)
}

func (tn *testNode) post(t *testing.T, path, body string) answer {
	t.Helper()
	return tn.do(t, http.MethodPost, path, "application/json", []byte(body))
}

// decodeStrict decodes one JSON answer of the API into v, refusing fields v does
// not declare, so the exported types are held to what the handlers send.
func decodeStrict(t *testing.T, what string, a answer, v any) {
	t.Helper()
	if ct := a.contentType(); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q, want application/json (body %s)", what, ct, a.body)
	}
	if !bytes.HasSuffix(a.body, []byte("\n")) {
		t.Errorf("%s: the body does not end in a newline: %q", what, a.body)
	}
	dec := json.NewDecoder(bytes.NewReader(a.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v in %s", what, err, a.body)
	}
	if dec.More() {
		t.Fatalf("%s: more than one JSON value in %s", what, a.body)
	}
}

// wantJSON wants status code and decodes the body into v.
func wantJSON(t *testing.T, what string, a answer, code int, v any) {
	t.Helper()
	if a.code != code {
		t.Fatalf("%s: status %d, want %d (body %s)", what, a.code, code, a.body)
	}
	decodeStrict(t, what, a, v)
}

// wantError wants status code and an ErrorBody whose sentence contains substr.
func wantError(t *testing.T, what string, a answer, code int, substr string) {
	t.Helper()
	if a.code != code {
		t.Errorf("%s: status %d, want %d (body %s)", what, a.code, code, a.body)
		return
	}
	var e ErrorBody
	decodeStrict(t, what, a, &e)
	if e.Error == "" || !strings.Contains(e.Error, substr) {
		t.Errorf("%s: error %q, want a sentence containing %q", what, e.Error, substr)
	}
}

// putOne posts one reading and returns its receipt.
func (tn *testNode) putOne(t *testing.T, body string) node.Receipt {
	t.Helper()
	var rc node.Receipt
	wantJSON(t, "POST "+body, tn.post(t, "/api/v1/records", body), http.StatusCreated, &rc)
	return rc
}

// checkReceipt holds a ring-less node's receipt to what the node stored.
func (tn *testNode) checkReceipt(t *testing.T, rc node.Receipt, thing, data string) *ledger.Record {
	t.Helper()
	self := tn.n.Self()
	if rc.Owner != self {
		t.Errorf("receipt owner %+v, want the node itself %+v", rc.Owner, self)
	}
	if rc.Replicas == nil || len(rc.Replicas) != 0 {
		t.Errorf("receipt replicas %#v, want [] on a ring of one", rc.Replicas)
	}
	if rc.TxID.IsZero() || rc.Key.IsZero() || rc.Block.Hash.IsZero() || rc.Block.Branch != tn.n.ID() {
		t.Errorf("receipt %+v: want a txID, a key and a block of the node's own branch", rc)
	}
	stored, err := tn.n.LocalRecord(rc.TxID)
	if err != nil {
		t.Fatalf("the receipt's record %s is not in the store: %v", rc.TxID, err)
	}
	rec, err := ledger.ParseRecord(stored)
	if err != nil {
		t.Fatalf("stored record %s: %v", stored, err)
	}
	if rec.TxID != rc.TxID || rec.Key != rc.Key || rec.Thing != thing || string(rec.Data) != data {
		t.Errorf("stored record %s does not match the receipt %+v (thing %q, data %s)", stored, rc, thing, data)
	}
	if rec.Block.Branch != rc.Block.Branch || rec.Block.No != rc.Block.No || rec.Block.Hash != rc.Block.Hash {
		t.Errorf("stored record's block %+v, receipt's %+v", rec.Block, rc.Block)
	}
	return rec
}

// getRecord wants GET /api/v1/records/{txID}[query] to answer the stored bytes exactly.
func (tn *testNode) getRecord(t *testing.T, txID ledger.Hash, query string) {
	t.Helper()
	stored, err := tn.n.LocalRecord(txID)
	if err != nil {
		t.Fatal(err)
	}
	a := tn.get(t, "/api/v1/records/"+txID.String()+query)
	if a.code != http.StatusOK {
		t.Fatalf("GET record %s%s: %d %s", txID, query, a.code, a.body)
	}
	if ct := a.contentType(); ct != "application/ld+json" {
		t.Errorf("GET record: Content-Type %q, want application/ld+json", ct)
	}
	if !bytes.Equal(a.body, stored) {
		t.Errorf("GET record %s%s answered\n%s\nthe store holds\n%s", txID, query, a.body, stored)
	}
}

func TestAPIHealth(t *testing.T) {
	tn := openTestNode(t, false, nil)
	var h map[string]string
	wantJSON(t, "healthz", tn.get(t, "/healthz"), http.StatusOK, &h)
	if len(h) != 1 || h["status"] != "ok" {
		t.Errorf("healthz: %v, want {status: ok}", h)
	}
	var r map[string]any
	wantJSON(t, "readyz", tn.get(t, "/readyz"), http.StatusOK, &r)
	if len(r) != 1 || r["ready"] != true {
		t.Errorf("readyz: %v, want {ready: true} on a ring-less node", r)
	}

	// A closed store is not ready; the process still answers healthz.
	if err := tn.n.Close(); err != nil {
		t.Fatal(err)
	}
	var nr map[string]string
	wantJSON(t, "readyz after Close", tn.get(t, "/readyz"), http.StatusServiceUnavailable, &nr)
	if len(nr) != 1 || nr["reason"] != "store is closed" {
		t.Errorf("readyz after Close: %v, want {reason: store is closed}", nr)
	}
	wantJSON(t, "healthz after Close", tn.get(t, "/healthz"), http.StatusOK, &h)
}

func TestAPIPutAndGetRecord(t *testing.T) {
	tn := openTestNode(t, false, nil)
	const data = `{"t":21.5,"u":"C"}`
	rc := tn.putOne(t, `{"thing":"sensor-1","data":`+data+`}`)
	rec := tn.checkReceipt(t, rc, "sensor-1", data)
	if rec.Key != rec.HData {
		t.Errorf("a reading without a key is stored under H_DATA %s, not %s", rec.HData, rec.Key)
	}
	tn.getRecord(t, rc.TxID, "")
	tn.getRecord(t, rc.TxID, "?local=1")
	tn.getRecord(t, rc.TxID, "?local=true")

	// A chosen key, wait in the body and in the query.
	key := "00112233445566778899aabbccddeeff00112233"
	rc2 := tn.putOne(t, `{"thing":"sensor-1","data":[1,2,3],"key":"`+strings.ToUpper(key)+`","wait":"owner"}`)
	tn.checkReceipt(t, rc2, "sensor-1", `[1,2,3]`)
	if rc2.Key.String() != key {
		t.Errorf("receipt key %s, want the chosen %s", rc2.Key, key)
	}
	var rc3 node.Receipt
	wantJSON(t, "put ?wait=replicas", tn.post(t, "/api/v1/records?wait=replicas", `{"thing":"sensor-2","data":"x"}`), http.StatusCreated, &rc3)
	tn.checkReceipt(t, rc3, "sensor-2", `"x"`)
	tn.getRecord(t, rc3.TxID, "")
	if rc.TxID == rc2.TxID || rc2.TxID == rc3.TxID {
		t.Error("two puts got the same txID")
	}

	// Unknown and malformed txIDs.
	missing := ledger.Hash{1}
	wantError(t, "unknown txID", tn.get(t, "/api/v1/records/"+missing.String()), http.StatusNotFound, "no record with txID "+missing.String())
	wantError(t, "unknown txID, local", tn.get(t, "/api/v1/records/"+missing.String()+"?local=1"), http.StatusNotFound, "no record")
	wantError(t, "short txID", tn.get(t, "/api/v1/records/abcd"), http.StatusBadRequest, "64 hex")
	wantError(t, "bad local", tn.get(t, "/api/v1/records/"+rc.TxID.String()+"?local=2"), http.StatusBadRequest, `"local"`)

	if got := tn.n.Ledger().Stats().Records; got != 3 {
		t.Errorf("the ledger counts %d records, want 3", got)
	}
}

func TestAPIPutBatch(t *testing.T) {
	tn := openTestNode(t, false, nil)
	body := `[{"thing":"b-1","data":1},{"thing":"b-2","data":{"a":true}},{"thing":"b-1","data":"three","wait":"owner"}]`
	var rcs []node.Receipt
	wantJSON(t, "batch", tn.post(t, "/api/v1/records?batch=1", body), http.StatusCreated, &rcs)
	want := []struct{ thing, data string }{{"b-1", "1"}, {"b-2", `{"a":true}`}, {"b-1", `"three"`}}
	if len(rcs) != len(want) {
		t.Fatalf("batch of %d answered %d receipts", len(want), len(rcs))
	}
	seen := map[ledger.Hash]bool{}
	for i, rc := range rcs {
		tn.checkReceipt(t, rc, want[i].thing, want[i].data) // receipts in the order of the readings
		tn.getRecord(t, rc.TxID, "")
		if seen[rc.TxID] {
			t.Errorf("receipt %d repeats txID %s", i, rc.TxID)
		}
		seen[rc.TxID] = true
	}
	// batch=true is the same; a batch of one is still an array.
	var one []node.Receipt
	wantJSON(t, "batch=true", tn.post(t, "/api/v1/records?batch=true", `[{"thing":"b-3","data":0}]`), http.StatusCreated, &one)
	if len(one) != 1 {
		t.Fatalf("batch of one answered %d receipts", len(one))
	}
	tn.checkReceipt(t, one[0], "b-3", "0")
}

func TestAPIKeysAndThings(t *testing.T) {
	tn := openTestNode(t, false, nil)
	key := "aa00000000000000000000000000000000000001"
	var underKey []node.Receipt
	for i := range 3 {
		underKey = append(underKey, tn.putOne(t, fmt.Sprintf(`{"thing":"room-%d","data":%d,"key":%q}`, i%2, i, key)))
	}
	other := tn.putOne(t, `{"thing":"room-0","data":99}`)

	// By key: the records under it, stored bytes verbatim, ordered by txID.
	var byKey RecordList
	wantJSON(t, "by key", tn.get(t, "/api/v1/keys/"+key), http.StatusOK, &byKey)
	if len(byKey.Records) != 3 {
		t.Fatalf("key %s: %d records, want 3", key, len(byKey.Records))
	}
	tn.checkList(t, "by key", byKey, func(r *ledger.Record) bool { return r.Key.String() == key })
	for i := 1; i < len(byKey.Records); i++ {
		a, _ := ledger.ParseRecord(byKey.Records[i-1])
		b, _ := ledger.ParseRecord(byKey.Records[i])
		if bytes.Compare(a.TxID[:], b.TxID[:]) >= 0 {
			t.Errorf("records by key are not in txID order: %s then %s", a.TxID, b.TxID)
		}
	}
	wantJSON(t, "by key, limit 1", tn.get(t, "/api/v1/keys/"+key+"?limit=1"), http.StatusOK, &byKey)
	if len(byKey.Records) != 1 {
		t.Errorf("limit=1 answered %d records", len(byKey.Records))
	}
	// An unused key is an empty list, not null and not 404.
	empty := tn.get(t, "/api/v1/keys/"+strings.Repeat("0", 40))
	if empty.code != http.StatusOK || string(empty.body) != "{\"records\":[]}\n" {
		t.Errorf("unused key: %d %q, want 200 {\"records\":[]}", empty.code, empty.body)
	}
	wantError(t, "bad key", tn.get(t, "/api/v1/keys/xyz"), http.StatusBadRequest, "40 hex")
	wantError(t, "limit 0", tn.get(t, "/api/v1/keys/"+key+"?limit=0"), http.StatusBadRequest, `"limit"`)
	wantError(t, "limit too big", tn.get(t, "/api/v1/keys/"+key+"?limit=10001"), http.StatusBadRequest, `"limit"`)

	// By Thing: that Thing's records only, in time order.
	var room0 RecordList
	wantJSON(t, "thing room-0", tn.get(t, "/api/v1/things/room-0/records"), http.StatusOK, &room0)
	if len(room0.Records) != 3 { // data 0 and 2 under the key, and 99
		t.Fatalf("room-0: %d records, want 3", len(room0.Records))
	}
	tn.checkList(t, "room-0", room0, func(r *ledger.Record) bool { return r.Thing == "room-0" })
	var last int64
	txIDs := map[ledger.Hash]bool{}
	for _, raw := range room0.Records {
		r, _ := ledger.ParseRecord(raw)
		if r.Time < last {
			t.Errorf("room-0's records are not in time order")
		}
		last = r.Time
		txIDs[r.TxID] = true
	}
	if !txIDs[underKey[0].TxID] || !txIDs[underKey[2].TxID] || !txIDs[other.TxID] {
		t.Errorf("room-0's records miss one of its puts")
	}
	var room1 RecordList
	wantJSON(t, "thing room-1", tn.get(t, "/api/v1/things/room-1/records"), http.StatusOK, &room1)
	if len(room1.Records) != 1 {
		t.Errorf("room-1: %d records, want 1", len(room1.Records))
	}
	// Time bounds: everything is before the future and after the past.
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	var none RecordList
	wantJSON(t, "from the future", tn.get(t, "/api/v1/things/room-0/records?from="+future), http.StatusOK, &none)
	if len(none.Records) != 0 {
		t.Errorf("from=%s: %d records, want none", future, len(none.Records))
	}
	var all RecordList
	wantJSON(t, "from the past", tn.get(t, "/api/v1/things/room-0/records?from="+past+"&to="+future+"&limit=2"), http.StatusOK, &all)
	if len(all.Records) != 2 {
		t.Errorf("from..to, limit 2: %d records, want 2", len(all.Records))
	}
	wantError(t, "bad from", tn.get(t, "/api/v1/things/room-0/records?from=yesterday"), http.StatusBadRequest, `"from"`)
	wantError(t, "to before from", tn.get(t, "/api/v1/things/room-0/records?from="+future+"&to="+past), http.StatusBadRequest, `"to" must be after "from"`)
	wantError(t, "bad thing", tn.get(t, "/api/v1/things/-x/records"), http.StatusBadRequest, "")
	// Newest first: the same records, reversed.
	var desc RecordList
	wantJSON(t, "room-0 newest first", tn.get(t, "/api/v1/things/room-0/records?order=desc"), http.StatusOK, &desc)
	if len(desc.Records) != len(room0.Records) {
		t.Fatalf("room-0 newest first: %d records, want %d", len(desc.Records), len(room0.Records))
	}
	for i := range desc.Records {
		if string(desc.Records[i]) != string(room0.Records[len(room0.Records)-1-i]) {
			t.Errorf("room-0 newest first: record %d is not the oldest-first list's %d", i, len(room0.Records)-1-i)
		}
	}
	var newest RecordList
	wantJSON(t, "room-0 newest", tn.get(t, "/api/v1/things/room-0/records?order=desc&limit=1"), http.StatusOK, &newest)
	if len(newest.Records) != 1 || string(newest.Records[0]) != string(room0.Records[len(room0.Records)-1]) {
		t.Errorf("room-0's newest record: %d records", len(newest.Records))
	}
	wantError(t, "bad order", tn.get(t, "/api/v1/things/room-0/records?order=sideways"), http.StatusBadRequest, `"order"`)
	// A long range is narrowed to the Thing's own records (its extremes).
	long := time.Now().Add(-400 * 24 * time.Hour).UTC().Format(time.RFC3339)
	var narrowed RecordList
	wantJSON(t, "400 days", tn.get(t, "/api/v1/things/room-0/records?from="+long+"&to="+future), http.StatusOK, &narrowed)
	if len(narrowed.Records) != len(room0.Records) {
		t.Errorf("400 days: %d records, want %d", len(narrowed.Records), len(room0.Records))
	}
}

// checkList wants every record of l to be a stored record, byte for byte, that keep accepts.
func (tn *testNode) checkList(t *testing.T, what string, l RecordList, keep func(*ledger.Record) bool) {
	t.Helper()
	for i, raw := range l.Records {
		r, err := ledger.ParseRecord(raw)
		if err != nil {
			t.Fatalf("%s: record %d: %v", what, i, err)
		}
		stored, err := tn.n.LocalRecord(r.TxID)
		if err != nil || !bytes.Equal(stored, raw) {
			t.Errorf("%s: record %d is not the stored bytes (%v):\n%s\n%s", what, i, err, raw, stored)
		}
		if !keep(r) {
			t.Errorf("%s: record %d does not belong: %s", what, i, raw)
		}
	}
}

func TestAPIBlocksVerifyNode(t *testing.T) {
	tn := openTestNode(t, true, nil)
	// The local profile mines a block every 100 ms or so while records wait for a
	// seal, and none while none do: put until the third block.
	deadline := time.Now().Add(30 * time.Second)
	puts := 0
	for ; tn.n.Ledger().Stats().HeadNo < 3; puts++ {
		if time.Now().After(deadline) {
			t.Fatalf("no third block within 30 s (head %d)", tn.n.Ledger().Stats().HeadNo)
		}
		tn.putOne(t, fmt.Sprintf(`{"thing":"miner-test","data":%d}`, puts))
		time.Sleep(20 * time.Millisecond)
	}

	var bl BlockList
	wantJSON(t, "blocks", tn.get(t, "/api/v1/blocks"), http.StatusOK, &bl)
	if len(bl.Blocks) < 2 {
		t.Fatalf("blocks: %d, want at least 2", len(bl.Blocks))
	}
	g := tn.n.Ledger().Genesis()
	prev := g.Hash
	for i, raw := range bl.Blocks {
		b, err := ledger.ParseBlock(raw)
		if err != nil {
			t.Fatalf("block %d: %v in %s", i, err, raw)
		}
		if b.Branch != tn.n.ID() || b.No != uint64(i+1) || b.Prev != prev || b.Network != g.Hash {
			t.Errorf("block %d: branch %s no %d prev %s, want the node's branch from block 1, chained", i, b.Branch, b.No, b.Prev)
		}
		prev = b.Hash
	}
	var from2 BlockList
	wantJSON(t, "blocks from 2", tn.get(t, "/api/v1/blocks?branch="+tn.n.ID().String()+"&from=2&limit=1"), http.StatusOK, &from2)
	if len(from2.Blocks) != 1 || !bytes.Equal(from2.Blocks[0], bl.Blocks[1]) {
		t.Errorf("from=2&limit=1: %d blocks, want block 2 as listed before", len(from2.Blocks))
	}
	var other BlockList
	wantJSON(t, "blocks of an unknown branch", tn.get(t, "/api/v1/blocks?branch="+strings.Repeat("ab", 20)), http.StatusOK, &other)
	if len(other.Blocks) != 0 {
		t.Errorf("an unknown branch has %d blocks", len(other.Blocks))
	}
	wantError(t, "bad branch", tn.get(t, "/api/v1/blocks?branch=zz"), http.StatusBadRequest, `"branch"`)
	wantError(t, "bad from", tn.get(t, "/api/v1/blocks?from=-1"), http.StatusBadRequest, `"from"`)
	wantError(t, "bad limit", tn.get(t, "/api/v1/blocks?limit=x"), http.StatusBadRequest, `"limit"`)

	var rep ledger.Report
	wantJSON(t, "verify", tn.get(t, "/api/v1/verify"), http.StatusOK, &rep)
	if !rep.Valid || rep.Records != puts || rep.Branches != 1 || rep.Blocks < 2 {
		t.Errorf("verify: %+v, want valid with %d records on 1 branch", rep, puts)
	}

	var info NodeInfo
	wantJSON(t, "node", tn.get(t, "/api/v1/node"), http.StatusOK, &info)
	self := tn.n.Self()
	switch {
	case info.ID != tn.n.ID() || info.Addr != self.Addr:
		t.Errorf("node: id %s addr %q, want %s %q", info.ID, info.Addr, tn.n.ID(), self.Addr)
	case info.Profile != "local" || info.Version != node.Version || info.Network != ledger.DefaultNetwork:
		t.Errorf("node: profile %q version %q network %q", info.Profile, info.Version, info.Network)
	case info.Genesis != g.Hash || info.Status != "member" || info.RPC != "":
		t.Errorf("node: genesis %s status %q rpc %q, want %s member and no RPC", info.Genesis, info.Status, info.RPC, g.Hash)
	case info.Predecessor == nil || *info.Predecessor != self || len(info.Successors) != 1 || info.Successors[0] != self || info.Fingers == nil || len(info.Fingers) != 0:
		t.Errorf("node: a ring of one is its own predecessor and successor, with no fingers: %+v %+v %+v", info.Predecessor, info.Successors, info.Fingers)
	case info.Branch.Branch != tn.n.ID() || info.Branch.No < 3 || info.Branch.Hash.IsZero():
		t.Errorf("node: branch %+v, want the node's own at block 3 or later", info.Branch)
	case info.Stats.Records != uint64(puts) || info.Stats.BlocksMined < 3 || info.Stats.MinerAttempts == 0 || info.Stats.StoreWrites == 0 || info.Stats.UptimeSeconds <= 0:
		t.Errorf("node: stats %+v", info.Stats)
	case info.Stats.Dist.Replicas != node.DefaultReplicas || info.Stats.Dist.Owned != 0 || info.Stats.Dist.Forwarded != 0:
		t.Errorf("node: a ring-less node's dist counters: %+v", info.Stats.Dist)
	}

	var ring RingWalk
	wantJSON(t, "ring", tn.get(t, "/api/v1/ring"), http.StatusOK, &ring)
	if len(ring.Nodes) != 1 || ring.Nodes[0] != self || ring.Error != "" {
		t.Errorf("ring: %+v, want the node alone", ring)
	}
}

func TestAPIMetrics(t *testing.T) {
	tn := openTestNode(t, false, nil)
	tn.putOne(t, `{"thing":"m","data":1}`)
	tn.post(t, "/api/v1/records", `{`)
	a := tn.get(t, "/metrics")
	if a.code != http.StatusOK || !strings.HasPrefix(a.contentType(), "text/plain") {
		t.Fatalf("metrics: %d %q", a.code, a.contentType())
	}
	text := string(a.body)
	want := []string{
		"\ngo_goroutines ",
		"\nflownode_records_appended_total 1\n",
		"\nflownode_store_writes_total ",
		"\nflownode_branch_head ",
		"\nflownode_miner_idle_ticks_total ",
		`flownode_http_requests_total{code="201",route="POST /api/v1/records"} 1`,
		`flownode_http_requests_total{code="400",route="POST /api/v1/records"} 1`,
		`flownode_http_request_seconds_bucket{route="POST /api/v1/records",le="5"} 2`,
	}
	if runtime.GOOS == "linux" { // the process collector reads /proc
		want = append(want, "\nprocess_resident_memory_bytes ", "\nprocess_cpu_seconds_total ")
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("metrics lack %q", w)
		}
	}
	if strings.Contains(text, `route="GET /metrics"`) {
		t.Error("metrics count themselves; docs/api.md says /metrics is not counted")
	}
}

func TestAPIContextAndDashboard(t *testing.T) {
	tn := openTestNode(t, false, nil)
	a := tn.get(t, ledger.ContextPath)
	if ledger.ContextPath != "/ns/flownode/v1" {
		t.Errorf("the context is served at %s; docs/api.md says /ns/flownode/v1", ledger.ContextPath)
	}
	if a.code != http.StatusOK || a.contentType() != "application/ld+json" || a.head.Get("Cache-Control") != "public, max-age=86400" {
		t.Errorf("context: %d %q %q", a.code, a.contentType(), a.head.Get("Cache-Control"))
	}
	if string(a.body) != ledger.ContextDocument || !json.Valid(a.body) {
		t.Errorf("context: the body is not ledger.ContextDocument: %s", a.body)
	}

	d := tn.get(t, "/")
	if d.code != http.StatusOK || d.contentType() != "text/html; charset=utf-8" || !bytes.Equal(d.body, dashboardHTML) {
		t.Errorf("dashboard: %d %q, %d bytes", d.code, d.contentType(), len(d.body))
	}
	if d.head.Get("Content-Security-Policy") == "" {
		t.Error("dashboard: no Content-Security-Policy")
	}
}

func TestAPIBadInputStoresNothing(t *testing.T) {
	tn := openTestNode(t, false, func(p *node.Profile) {
		// Small limits, so the oversize cases stay small.
		p.MaxBodyBytes = 4096
		p.MaxBatch = 3
	})
	item := func(thing string) string { return `{"thing":"` + thing + `","data":1}` }
	big := `{"thing":"big","data":"` + strings.Repeat("a", 5000) + `"}`
	cases := []struct {
		name, path, ctype, body string
		code                    int
		substr                  string
	}{
		{"malformed JSON", "/api/v1/records", "application/json", `{"thing":"t","data":`, 400, "not valid JSON"},
		{"not JSON", "/api/v1/records", "application/json", `hello`, 400, "not valid JSON"},
		{"empty body", "/api/v1/records", "application/json", ``, 400, "empty"},
		{"unknown field", "/api/v1/records", "application/json", `{"thing":"t","data":1,"extra":1}`, 400, `unknown field "extra"`},
		{"trailing data", "/api/v1/records", "application/json", `{"thing":"t","data":1}{}`, 400, "single JSON value"},
		{"wrong type", "/api/v1/records", "application/json", `{"thing":1,"data":1}`, 400, `field "thing" must be a string`},
		{"array without batch", "/api/v1/records", "application/json", `[` + item("t") + `]`, 400, "an object"},
		{"no thing", "/api/v1/records", "application/json", `{"data":1}`, 400, `"thing" is required`},
		{"no data", "/api/v1/records", "application/json", `{"thing":"t"}`, 400, `"data" is required`},
		{"null data", "/api/v1/records", "application/json", `{"thing":"t","data":null}`, 400, `"data" is required`},
		{"bad thing", "/api/v1/records", "application/json", `{"thing":"no spaces","data":1}`, 400, ""},
		{"reserved thing", "/api/v1/records", "application/json", `{"thing":"urn:flownode:things","data":{"id":"x","op":"delete","by":"me"}}`, 400, "flownode's own"},
		{"bad key", "/api/v1/records", "application/json", `{"thing":"t","data":1,"key":"xyz"}`, 400, `field "key"`},
		{"bad wait", "/api/v1/records", "application/json", `{"thing":"t","data":1,"wait":"all"}`, 400, `field "wait"`},
		{"bad wait query", "/api/v1/records?wait=all", "application/json", item("t"), 400, `query "wait"`},
		{"bad batch query", "/api/v1/records?batch=2", "application/json", `[` + item("t") + `]`, 400, `query "batch"`},
		{"big integer", "/api/v1/records", "application/json", `{"thing":"t","data":12345678901234567890}`, 400, ""},
		{"oversize", "/api/v1/records", "application/json", big, 413, "larger than 4096 bytes"},
		{"multipart", "/api/v1/records", "multipart/form-data; boundary=x", item("t"), 415, "not supported"},
		{"empty batch", "/api/v1/records?batch=1", "application/json", `[]`, 400, "1 to 3 readings, not 0"},
		{"batch too long", "/api/v1/records?batch=1", "application/json", `[` + strings.Repeat(item("t")+",", 3) + item("t") + `]`, 400, "1 to 3 readings, not 4"},
		{"batch not an array", "/api/v1/records?batch=1", "application/json", item("t"), 400, "an array"},
		{"batch with a bad item", "/api/v1/records?batch=1", "application/json", `[` + item("ok") + `,{"thing":"","data":1}]`, 400, "reading 1: "},
		{"batch with a bad thing", "/api/v1/records?batch=1", "application/json", `[` + item("ok") + `,` + item("no spaces") + `]`, 400, "reading 1: "},
		{"batch with a reserved thing", "/api/v1/records?batch=1", "application/json", `[` + item("ok") + `,` + item("urn:flownode:x") + `]`, 400, "reading 1: field \"thing\""},
		{"batch oversize", "/api/v1/records?batch=1", "application/json", `[` + big + `]`, 413, "larger than"},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			wantError(t, c.name, tn.do(t, http.MethodPost, c.path, c.ctype, []byte(c.body)), c.code, c.substr)
		})
	}

	// Paths and methods the API does not have answer with the same error shape.
	a := tn.do(t, http.MethodDelete, "/api/v1/records", "", nil)
	wantError(t, "DELETE records", a, http.StatusMethodNotAllowed, "not allowed")
	if got := a.head.Get("Allow"); got != "POST" {
		t.Errorf("DELETE records: Allow %q, want POST", got)
	}
	a = tn.do(t, http.MethodPost, "/api/v1/node", "application/json", []byte(`{}`))
	wantError(t, "POST node", a, http.StatusMethodNotAllowed, "not allowed")
	if got := a.head.Get("Allow"); got != "GET, HEAD" {
		t.Errorf("POST node: Allow %q, want GET, HEAD", got)
	}
	wantError(t, "unknown path", tn.get(t, "/api/v1/nothing"), http.StatusNotFound, "no such path: /api/v1/nothing")

	// Nothing was stored: no record counted, none in the store, none listed.
	if got := tn.n.Ledger().Stats().Records; got != 0 {
		t.Errorf("bad input stored %d records", got)
	}
	var rep ledger.Report
	wantJSON(t, "verify", tn.get(t, "/api/v1/verify"), http.StatusOK, &rep)
	if !rep.Valid || rep.Records != 0 {
		t.Errorf("verify after bad input: %+v, want valid and empty", rep)
	}
	for _, thing := range []string{"t", "ok", "big"} {
		var l RecordList
		wantJSON(t, "thing "+thing, tn.get(t, "/api/v1/things/"+thing+"/records"), http.StatusOK, &l)
		if len(l.Records) != 0 {
			t.Errorf("thing %s has %d records after bad input", thing, len(l.Records))
		}
	}
	// The node still takes good input.
	tn.checkReceipt(t, tn.putOne(t, item("ok")), "ok", "1")
}

// TestAPIIdempotencyKey: a device re-sending a reading with the same
// idempotency key (header or field), even after blocks were mined, gets the
// first receipt and the ledger one record; the key reused for other data is
// refused with 400 and stores nothing.
func TestAPIIdempotencyKey(t *testing.T) {
	tn := openTestNode(t, true, nil)
	put := func(path, key, body string) answer {
		req, err := http.NewRequest(http.MethodPost, tn.srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := tn.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{code: resp.StatusCode, body: b, head: resp.Header}
	}
	var first, again, field node.Receipt
	wantJSON(t, "first", put("/api/v1/records", "m-1/0042", `{"thing":"meter-1","data":{"kWh":1.5}}`), http.StatusCreated, &first)
	deadline := time.Now().Add(20 * time.Second)
	for tn.n.Ledger().HeadRef().No <= first.Block.No && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	wantJSON(t, "again", put("/api/v1/records", "m-1/0042", `{"thing":"meter-1","data":{"kWh":1.5}}`), http.StatusCreated, &again)
	wantJSON(t, "field", put("/api/v1/records", "", `{"thing":"meter-1","data":{"kWh":1.5},"idempotencyKey":"m-1/0042"}`), http.StatusCreated, &field)
	if !receiptsEqual(again, first) || !receiptsEqual(field, first) {
		t.Fatalf("re-sent with its idempotency key: %+v and %+v, want the first receipt %+v", again, field, first)
	}
	wantError(t, "same key, other data", put("/api/v1/records", "m-1/0042", `{"thing":"meter-1","data":{"kWh":9}}`), http.StatusBadRequest, "idempotency key")
	// A batch: reading i is KEY#i, so a re-sent batch is the same records.
	var b1, b2 []node.Receipt
	body := `[{"thing":"meter-2","data":1},{"thing":"meter-2","data":2}]`
	wantJSON(t, "batch", put("/api/v1/records?batch=1", "batch-7", body), http.StatusCreated, &b1)
	wantJSON(t, "batch again", put("/api/v1/records?batch=1", "batch-7", body), http.StatusCreated, &b2)
	if len(b1) != 2 || len(b2) != 2 || b1[0].TxID != b2[0].TxID || b1[1].TxID != b2[1].TxID || b1[0].TxID == b1[1].TxID {
		t.Fatalf("a re-sent batch: %v then %v", b1, b2)
	}
	wantError(t, "key too long", put("/api/v1/records", strings.Repeat("k", 201), `{"thing":"meter-1","data":1}`), http.StatusBadRequest, "idempotency key")
	if got := tn.n.Ledger().Stats().Records; got != 3 {
		t.Fatalf("the ledger counts %d records, want 3", got)
	}
}

func receiptsEqual(a, b node.Receipt) bool {
	return a.TxID == b.TxID && a.Key == b.Key && a.Block == b.Block && a.Owner == b.Owner
}
