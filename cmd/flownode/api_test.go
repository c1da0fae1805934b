package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flownode/flownode/api"
	"github.com/flownode/flownode/ledger"
)

// TestBadInputChangesNothing: malformed, oversize and invalid requests get a 4xx with
// {"error": "<one sentence>"} and store nothing; bad ids and query parameters get 400,
// unknown records 404.
func TestBadInputChangesNothing(t *testing.T) {
	n := startNode(t, t.TempDir(), "local")
	for i := 0; i < 3; i++ {
		putOne(t, n.URL, "good-thing", fmt.Sprintf(`{"i":%d}`, i))
	}
	before := getNode(t, n.URL)

	nested := strings.Repeat("[", 40) + strings.Repeat("]", 40)
	manyItems := "[" + strings.TrimSuffix(strings.Repeat(`{"thing":"many","data":1},`, 10001), ",") + "]"
	// One byte over the local profile's 16 MiB body limit.
	oversize := []byte(`{"thing":"big","data":"` + strings.Repeat("a", 16<<20) + `"}`)
	const records, batch = "/api/v1/records", "/api/v1/records?batch=1"
	cases := []struct {
		name, path, ctype, body string
		code                    int
		want                    string // substring of the error sentence
	}{
		{"malformed JSON", records, "", `{"thing":"bad-a","data":`, 400, "not valid JSON"},
		{"not JSON", records, "", `hello`, 400, "not valid JSON"},
		{"empty body", records, "", ``, 400, "empty"},
		{"array to the single endpoint", records, "", `[{"thing":"bad-b","data":1}]`, 400, "must be an object"},
		{"thing is a number", records, "", `{"thing":5,"data":1}`, 400, `field "thing" must be a string`},
		{"key is a number", records, "", `{"thing":"bad-c","data":1,"key":7}`, 400, `field "key"`},
		{"unknown field", records, "", `{"thing":"bad-d","data":1,"extra":true}`, 400, `unknown field "extra"`},
		{"missing thing", records, "", `{"data":1}`, 400, `"thing" is required`},
		{"missing data", records, "", `{"thing":"bad-e"}`, 400, `"data" is required`},
		{"null data", records, "", `{"thing":"bad-e","data":null}`, 400, `"data" is required`},
		{"two values", records, "", `{"thing":"bad-f","data":1}{"thing":"bad-f","data":2}`, 400, "single JSON value"},
		{"thing with a slash", records, "", `{"thing":"a/b","data":1}`, 400, "thing id"},
		{"thing with a space", records, "", `{"thing":" a","data":1}`, 400, "thing id"},
		{"empty thing", records, "", `{"thing":"","data":1}`, 400, "thing"},
		{"thing too long", records, "", `{"thing":"` + strings.Repeat("x", 201) + `","data":1}`, 400, "thing id"},
		{"key not hex", records, "", `{"thing":"bad-g","data":1,"key":"` + strings.Repeat("z", 40) + `"}`, 400, `field "key"`},
		{"key too short", records, "", `{"thing":"bad-g","data":1,"key":"abc"}`, 400, `field "key"`},
		{"huge int", records, "", `{"thing":"bad-h","data":{"v":12345678901234567890}}`, 400, "send it as a string"},
		{"int above 2^53", records, "", `{"thing":"bad-h","data":9007199254740993}`, 400, "send it as a string"},
		{"float out of range", records, "", `{"thing":"bad-h","data":1e400}`, 400, "send it as a string"},
		{"nested too deep", records, "", `{"thing":"bad-i","data":` + nested + `}`, 400, "nests deeper"},
		{"multipart", records, "multipart/form-data; boundary=x", `{"thing":"bad-j","data":1}`, 415, "not supported"},
		{"batch query value", records + "?batch=yes", "", `[{"thing":"bad-k","data":1}]`, 400, `"batch"`},
		{"empty batch", batch, "", `[]`, 400, "1 to 10000 readings, not 0"},
		{"batch of an object", batch, "", `{"thing":"bad-l","data":1}`, 400, "must be an array"},
		{"batch too large", batch, "", manyItems, 400, "not 10001"},
		{"batch with one bad item", batch, "", `[{"thing":"bad-batch","data":1},{"thing":"bad-batch","data":2},{"thing":"bad-batch","data":{"v":1e999}}]`, 400, "reading 2"},
		{"batch with one bad thing", batch, "", `[{"thing":"bad-batch","data":1},{"thing":"bad/batch","data":2}]`, 400, "reading 1"},
		{"batch with one unknown field", batch, "", `[{"thing":"bad-batch","data":1},{"thing":"bad-batch","data":2,"x":0}]`, 400, "unknown field"},
		{"batch with one missing data", batch, "", `[{"thing":"bad-batch","data":1},{"thing":"bad-batch"}]`, 400, "reading 1"},
		{"oversize body", records, "", string(oversize), 413, "larger than 16777216 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ct := c.ctype
			if ct == "" {
				ct = "application/json"
			}
			r := doHTTP(t, http.MethodPost, n.URL+c.path, ct, []byte(c.body))
			wantError(t, r, c.code, c.want)
		})
	}

	// GETs with bad ids or parameters, and unknown records.
	unknown := strings.Repeat("ab", 32)
	gets := []struct {
		path string
		code int
		want string
	}{
		{"/api/v1/records/" + unknown, 404, "no record with txID " + unknown},
		{"/api/v1/records/xyz", 400, "64 hex"},
		{"/api/v1/records/" + strings.Repeat("g", 64), 400, "64 hex"},
		{"/api/v1/records/" + strings.Repeat("a", 65), 400, "64 hex"},
		{"/api/v1/keys/xyz", 400, "40 hex"},
		{"/api/v1/keys/" + strings.Repeat("a", 40) + "?limit=0", 400, `"limit"`},
		{"/api/v1/things/good-thing/records?from=garbage", 400, `"from" must be an RFC 3339 time`},
		{"/api/v1/things/good-thing/records?to=yesterday", 400, `"to" must be an RFC 3339 time`},
		{"/api/v1/things/good-thing/records?limit=0", 400, `"limit" must be a whole number`},
		{"/api/v1/things/good-thing/records?limit=-5", 400, `"limit"`},
		{"/api/v1/things/good-thing/records?limit=10001", 400, `"limit"`},
		{"/api/v1/things/good-thing/records?limit=ten", 400, `"limit"`},
		{"/api/v1/things/good-thing/records?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", 400, `"to" must be after "from"`},
		{"/api/v1/things/" + url.PathEscape(" bad") + "/records", 400, "thing id"},
		{"/api/v1/blocks?from=-1", 400, `"from"`},
		{"/api/v1/blocks?limit=0", 400, `"limit"`},
		{"/api/v1/blocks?branch=xyz", 400, `"branch"`},
		{"/api/v1/nothing-here", 404, "no such path"},
	}
	for _, g := range gets {
		t.Run("GET "+g.path, func(t *testing.T) {
			wantError(t, doHTTP(t, http.MethodGet, n.URL+g.path, "", nil), g.code, g.want)
		})
	}
	// A known path with the wrong method is a 405 that says which methods work.
	for _, m := range []struct{ method, path, allow string }{
		{http.MethodDelete, "/api/v1/records", "POST"},
		{http.MethodPut, "/api/v1/node", "GET, HEAD"},
	} {
		resp := doHTTP(t, m.method, n.URL+m.path, "", nil)
		wantError(t, resp, http.StatusMethodNotAllowed, "is not allowed")
		if got := resp.Header.Get("Allow"); got != m.allow {
			t.Errorf("%s %s: Allow = %q, want %q", m.method, m.path, got, m.allow)
		}
	}

	after := getNode(t, n.URL)
	if after.Stats.Records != before.Stats.Records || before.Stats.Records != 3 {
		t.Errorf("records appended: %d before the bad requests, %d after; want 3 and 3", before.Stats.Records, after.Stats.Records)
	}
	// Batches are all-or-nothing: the good items before a bad one were not stored.
	for _, thing := range []string{"bad-batch", "many", "bad-a", "bad-h", "big"} {
		var l api.RecordList
		getJSON(t, n.URL+"/api/v1/things/"+thing+"/records", &l)
		if len(l.Records) != 0 {
			t.Errorf("thing %s has %d records after rejected requests", thing, len(l.Records))
		}
	}
	rep := getVerify(t, n.URL)
	if !rep.Valid || rep.Records != 3 {
		t.Errorf("verify after the bad requests: %+v, want valid with 3 records", rep)
	}
	// The node still takes good input.
	putOne(t, n.URL, "good-thing", `{"i":3}`)
}

// wantError checks an error answer: the status, a JSON content type and a body that is
// exactly {"error": "<one line>"} containing want.
func wantError(t *testing.T, r apiResp, code int, want string) {
	t.Helper()
	if r.Code != code {
		t.Errorf("status %d, want %d; body %s", r.Code, code, trunc(r.Body))
		return
	}
	if !strings.HasPrefix(r.ContentType, "application/json") {
		t.Errorf("content type %q, want application/json", r.ContentType)
	}
	var e map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %s is not JSON: %v", trunc(r.Body), err)
	}
	msg, ok := e["error"].(string)
	if !ok || len(e) != 1 || msg == "" || strings.Contains(msg, "\n") {
		t.Errorf(`error body %s is not {"error": "<one line>"}`, trunc(r.Body))
	}
	if !strings.Contains(msg, want) {
		t.Errorf("error %q does not say %q", msg, want)
	}
}

func trunc(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// storedRecord GETs a record and checks it verifies on its own.
func storedRecord(t *testing.T, base, txID string) *ledger.Record {
	t.Helper()
	r := doHTTP(t, http.MethodGet, base+"/api/v1/records/"+txID, "", nil)
	if r.Code != http.StatusOK {
		t.Fatalf("GET record %s: %d %s", txID, r.Code, r.Body)
	}
	if r.ContentType != "application/ld+json" {
		t.Errorf("record content type %q, want application/ld+json", r.ContentType)
	}
	rec, err := ledger.ParseRecord(r.Body)
	if err != nil {
		t.Fatalf("record %s: %v", txID, err)
	}
	if err := rec.CheckSelf(r.Body); err != nil {
		t.Fatalf("record %s does not verify: %v", txID, err)
	}
	return rec
}

// listTxIDs GETs a {"records":[..]} list and returns the records' txIDs in order.
func listTxIDs(t *testing.T, url string) ([]string, []*ledger.Record) {
	t.Helper()
	var l api.RecordList
	getJSON(t, url, &l)
	var ids []string
	var recs []*ledger.Record
	for _, raw := range l.Records {
		rec, err := ledger.ParseRecord(raw)
		if err != nil {
			t.Fatalf("%s: record %s: %v", url, raw, err)
		}
		if err := rec.CheckSelf(raw); err != nil {
			t.Fatalf("%s: record %s does not verify: %v", url, rec.TxID, err)
		}
		ids = append(ids, rec.TxID.String())
		recs = append(recs, rec)
	}
	return ids, recs
}

func rfc3339(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }

// TestQueries: time-range queries of a Thing, records under a client-chosen key, and a
// range of blocks.
func TestQueries(t *testing.T) {
	n := startNode(t, t.TempDir(), "local")

	// Ten readings of one thing, interleaved with another thing's.
	const thing = "urn:dev:ow:10e2073a01080063"
	var ids []string
	var times []int64
	for i := 0; i < 10; i++ {
		rc := putOne(t, n.URL, thing, fmt.Sprintf(`{"temp":%d.5}`, 20+i))
		putOne(t, n.URL, "other-thing", fmt.Sprintf(`{"temp":%d}`, i))
		rec := storedRecord(t, n.URL, rc.TxID)
		if rec.Thing != thing {
			t.Fatalf("record %s: thing %q", rc.TxID, rec.Thing)
		}
		ids = append(ids, rc.TxID)
		times = append(times, rec.Time)
	}
	for i := 1; i < len(times); i++ {
		if times[i] <= times[i-1] {
			t.Fatalf("sequential puts got times %d then %d", times[i-1], times[i])
		}
	}
	base := n.URL + "/api/v1/things/" + url.PathEscape(thing) + "/records"
	q := func(params string) []string {
		got, recs := listTxIDs(t, base+params)
		for i := range recs {
			if recs[i].Thing != thing {
				t.Errorf("%s: record of thing %q", params, recs[i].Thing)
			}
			if i > 0 && recs[i].Time < recs[i-1].Time {
				t.Errorf("%s: records not in time order", params)
			}
		}
		return got
	}
	from, to := url.QueryEscape(rfc3339(times[3])), url.QueryEscape(rfc3339(times[7]))
	checks := []struct {
		params string
		want   []string
	}{
		{"", ids},
		{"?limit=4", ids[:4]},
		{"?from=" + from, ids[3:]},
		{"?to=" + to, ids[:7]}, // to is exclusive
		{"?from=" + from + "&to=" + to, ids[3:7]},
		{"?from=" + from + "&to=" + to + "&limit=2", ids[3:5]},
		{"?from=" + url.QueryEscape(rfc3339(times[9]+1)), nil},
		{"?to=" + url.QueryEscape(rfc3339(times[0])), nil},
		// Time zones other than UTC name the same instant.
		{"?from=" + url.QueryEscape(time.Unix(0, times[5]).In(time.FixedZone("", 5*3600+1800)).Format(time.RFC3339Nano)), ids[5:]},
	}
	for _, c := range checks {
		if got := q(c.params); strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("things/%s/records%s: got %d records %v, want %d %v", thing, c.params, len(got), got, len(c.want), c.want)
		}
	}
	var none api.RecordList
	getJSON(t, n.URL+"/api/v1/things/never-seen/records", &none)
	if none.Records == nil || len(none.Records) != 0 {
		t.Errorf(`a thing without records: want {"records":[]}, got %v`, none.Records)
	}

	// Records under a client-chosen key, from single and batch puts.
	kb := make([]byte, 20)
	rand.Read(kb)
	key := hex.EncodeToString(kb)
	want := map[string]bool{}
	want[putOne(t, n.URL, "key-a", `{"v":1}`, key).TxID] = true
	want[putOne(t, n.URL, "key-b", `{"v":2}`, key).TxID] = true
	body := fmt.Sprintf(`[{"thing":"key-a","data":{"v":3},"key":%q},{"thing":"key-c","data":{"v":4}}]`, key)
	r := doHTTP(t, http.MethodPost, n.URL+"/api/v1/records?batch=1", "application/json", []byte(body))
	var rcs []receipt
	if r.Code != http.StatusCreated || json.Unmarshal(r.Body, &rcs) != nil || len(rcs) != 2 {
		t.Fatalf("batch put: %d %s", r.Code, r.Body)
	}
	if rcs[0].Key != key || rcs[1].Key == key {
		t.Errorf("batch receipts have keys %s and %s; want %s and H_DATA", rcs[0].Key, rcs[1].Key, key)
	}
	want[rcs[0].TxID] = true
	got, recs := listTxIDs(t, n.URL+"/api/v1/keys/"+key)
	if len(got) != len(want) {
		t.Errorf("keys/%s: %d records, want %d", key, len(got), len(want))
	}
	for i, id := range got {
		if !want[id] || recs[i].Key.String() != key {
			t.Errorf("keys/%s: unexpected record %s with key %s", key, id, recs[i].Key)
		}
	}
	if got, _ := listTxIDs(t, n.URL+"/api/v1/keys/"+key+"?limit=2"); len(got) != 2 {
		t.Errorf("keys/%s?limit=2: %d records", key, len(got))
	}
	// Without a client key, the key is H_DATA and finds the record too.
	if got, _ := listTxIDs(t, n.URL+"/api/v1/keys/"+rcs[1].Key); len(got) != 1 || got[0] != rcs[1].TxID {
		t.Errorf("keys/%s (H_DATA of %s): got %v", rcs[1].Key, rcs[1].TxID, got)
	}

	// Blocks 1..5 of the node's branch, chained to genesis. Blocks are mined only
	// while records wait for a seal, so put until there are six.
	var info api.NodeInfo
	fillers := 0
	if !waitFor(10*time.Second, 20*time.Millisecond, func() bool {
		if info = getNode(t, n.URL); info.Branch.No >= 6 {
			return true
		}
		putOne(t, n.URL, "api-filler", fmt.Sprint(fillers))
		fillers++
		return false
	}) {
		t.Fatalf("local profile: head still at block %d after 10 s", info.Branch.No)
	}
	var bl api.BlockList
	getJSON(t, n.URL+"/api/v1/blocks?from=1&limit=5", &bl)
	if len(bl.Blocks) != 5 {
		t.Fatalf("blocks?from=1&limit=5: %d blocks", len(bl.Blocks))
	}
	prev := info.Genesis.String()
	for i, raw := range bl.Blocks {
		b, err := ledger.ParseBlock(raw)
		if err != nil {
			t.Fatalf("block %d: %v", i+1, err)
		}
		if err := b.CheckSelf(); err != nil {
			t.Errorf("block %d does not verify: %v", i+1, err)
		}
		if b.No != uint64(i+1) || b.Branch.String() != n.ID || b.Prev.String() != prev {
			t.Errorf("block %d: no %d, branch %s, prev %s; want branch %s, prev %s", i+1, b.No, b.Branch, b.Prev, n.ID, prev)
		}
		prev = b.Hash.String()
	}
	getJSON(t, n.URL+"/api/v1/blocks?branch="+n.ID+"&from=3&limit=2", &bl)
	if len(bl.Blocks) != 2 {
		t.Errorf("blocks?branch=ID&from=3&limit=2: %d blocks", len(bl.Blocks))
	} else if b, err := ledger.ParseBlock(bl.Blocks[0]); err != nil || b.No != 3 {
		t.Errorf("blocks?from=3: first block %v %v", b, err)
	}
	getJSON(t, n.URL+"/api/v1/blocks?branch="+strings.Repeat("0", 40), &bl)
	if len(bl.Blocks) != 0 {
		t.Errorf("blocks of an unknown branch: %d", len(bl.Blocks))
	}
	if rep := getVerify(t, n.URL); !rep.Valid || rep.Records != 24+fillers {
		t.Errorf("verify: %+v, want valid with %d records", rep, 24+fillers)
	}
}

// TestRecordBeforeFirstBlock: with the laptop profile a record is accepted at once,
// attached to genesis (block 0: a node mines no block before it has a record to seal),
// and sealed by block 1 within a mean block time.
func TestRecordBeforeFirstBlock(t *testing.T) {
	n := startNode(t, t.TempDir(), "laptop")
	time.Sleep(200 * time.Millisecond) // four ticks of an idle miner: no block
	rc := putOne(t, n.URL, "early-bird", `{"hello":"world"}`)
	info := getNode(t, n.URL)
	if rc.Block.No != 0 || rc.Block.Hash != info.Genesis.String() {
		t.Fatalf("first record attached to block %d %s, want 0 (genesis %s)", rc.Block.No, rc.Block.Hash, info.Genesis)
	}
	if rep := getVerify(t, n.URL); !rep.Valid || rep.Records != 1 || (rep.Blocks == 0 && rep.Unsealed != 1) {
		t.Errorf("verify right after the put: %+v", rep)
	}
	var rep ledger.Report
	start := time.Now()
	if !waitFor(10*time.Second, 25*time.Millisecond, func() bool {
		rep = getVerify(t, n.URL)
		return !rep.Valid || (rep.Unsealed == 0 && rep.Blocks >= 1)
	}) || !rep.Valid {
		t.Fatalf("record not sealed within 10 s: %+v", rep)
	}
	// The miner made the attempts of its idle spell when the record came: no waiting
	// for a block time (logged, not asserted: the machine may be slow).
	t.Logf("sealed %v after the put: %+v", time.Since(start).Round(time.Millisecond), rep)
	var bl api.BlockList
	getJSON(t, n.URL+"/api/v1/blocks?from=1&limit=1", &bl)
	b, err := ledger.ParseBlock(bl.Blocks[0])
	if err != nil || b.No != 1 || b.Sealed != 1 || b.Prev != info.Genesis {
		t.Fatalf("block 1: %+v %v; want it to seal 1 record on genesis", b, err)
	}
	if rec := storedRecord(t, n.URL, rc.TxID); rec.Block.No != 0 || rec.Seq != 0 {
		t.Errorf("record: block %d seq %d, want 0 0", rec.Block.No, rec.Seq)
	}
}

// TestHTTPSurface: health, readiness, metrics, the dashboard and the JSON-LD context.
func TestHTTPSurface(t *testing.T) {
	n := startNode(t, t.TempDir(), "local")
	for _, c := range []struct {
		path, ctype, contains string
	}{
		{"/healthz", "application/json", `"ok"`},
		{"/readyz", "application/json", `"ready":true`},
		{"/metrics", "text/plain", "flownode_records_appended_total"},
		{"/", "text/html", "<"},
		{ledger.ContextPath, "application/ld+json", "@context"},
	} {
		r := doHTTP(t, http.MethodGet, n.URL+c.path, "", nil)
		if r.Code != 200 || !strings.HasPrefix(r.ContentType, c.ctype) || !strings.Contains(string(r.Body), c.contains) {
			t.Errorf("GET %s: %d %q %s", c.path, r.Code, r.ContentType, trunc(r.Body))
		}
	}
	info := getNode(t, n.URL)
	if info.ID.String() != n.ID || info.Addr != n.Addr || info.Profile != "local" || info.Genesis.IsZero() {
		t.Errorf("/api/v1/node: %+v; started as %s at %s", info, n.ID, n.Addr)
	}
	var ring api.RingWalk
	getJSON(t, n.URL+"/api/v1/ring", &ring)
	if len(ring.Nodes) != 1 || ring.Nodes[0].ID.String() != n.ID || ring.Nodes[0].Addr != "ws://"+n.Addr {
		t.Errorf("/api/v1/ring: %+v", ring)
	}
	// The metrics count what was put.
	putOne(t, n.URL, "m", "1")
	r := doHTTP(t, http.MethodGet, n.URL+"/metrics", "", nil)
	if !strings.Contains(string(r.Body), "\nflownode_records_appended_total 1\n") {
		t.Errorf("metrics after one put:\n%s", r.Body)
	}
	// docs/api.md: the node's own metrics start with flownode_; the Go
	// runtime's and the process's keep their standard names, which stock
	// dashboards look for.
	for _, line := range strings.Split(string(r.Body), "\n") {
		name := strings.TrimPrefix(strings.TrimPrefix(line, "# HELP "), "# TYPE ")
		if line != "" && !strings.HasPrefix(name, "flownode_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Errorf("metric without the flownode_, go_ or process_ prefix: %s", line)
			break
		}
	}
	for _, std := range []string{"\ngo_goroutines ", "\ngo_memstats_heap_inuse_bytes ", "\nprocess_resident_memory_bytes "} {
		if !strings.Contains(string(r.Body), std) {
			t.Errorf("no standard metric %q", strings.TrimSpace(std))
		}
	}
	if code := n.Stop(); code != 0 {
		t.Errorf("SIGTERM: exit %d, want 0", code)
	}
}
