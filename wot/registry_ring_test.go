package wot

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/flownode/flownode/network"
	"github.com/flownode/flownode/node"
)

// tdRing is a ring of real nodes in this process (node.Start, WebSocket RPC
// on loopback), each with the Web of Things layer mounted on its HTTP port.
type tdRing struct {
	tb    testing.TB
	nodes []*tdNode
}

type tdNode struct {
	n      *node.Node
	things *Things
	base   string // http://host:port
	down   bool
}

// tdAuthority is the test network every tdRing node is admitted to.
var tdAuthority = sync.OnceValues(func() (*network.Authority, error) {
	return network.NewAuthority("wot-td-test", node.LocalProfile().Mining)
})

// startTDRing starts size nodes (k = 3), joined through the first, and waits
// until every node sees the whole ring and knows its range.
func startTDRing(tb testing.TB, size int) *tdRing {
	tb.Helper()
	auth, err := tdAuthority()
	if err != nil {
		tb.Fatal(err)
	}
	r := &tdRing{tb: tb}
	// The directories first: cleanups run last-registered first, and the
	// nodes must stop before their directories go.
	dirs := make([]string, size)
	for i := range dirs {
		dirs[i] = tb.TempDir()
		if _, err := auth.AdmitDir(dirs[i], time.Now().Add(time.Hour)); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(r.stopAll)
	for i, dir := range dirs {
		cfg := node.Config{DataDir: dir, Profile: node.LocalProfile(), Listen: "127.0.0.1:0", CoAPListen: "127.0.0.1:0",
			Replicas: 3, Log: zap.NewNop()}
		if i > 0 {
			cfg.Join = []string{r.nodes[0].n.Self().Addr}
		}
		n, err := node.Start(context.Background(), cfg)
		if err != nil {
			tb.Fatal(err)
		}
		things, err := New(n, Config{HTTPAddr: n.Self().Addr, Log: zaptest.NewLogger(tb, zaptest.Level(zap.WarnLevel))})
		if err != nil {
			tb.Fatal(err)
		}
		h := things.Handler()
		for _, p := range []string{"/things", "/things/", "/.well-known/wot"} {
			n.Handle(p, h)
		}
		r.nodes = append(r.nodes, &tdNode{n: n, things: things, base: "http://" + n.Self().Addr})
	}
	r.waitWhole(60 * time.Second)
	return r
}

// waitWhole waits until every live node walks the whole live ring and owns a range.
func (r *tdRing) waitWhole(within time.Duration) {
	r.tb.Helper()
	live := r.live()
	eventually(r.tb, within, "the ring to form", func() bool {
		for _, tn := range live {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			ps, err := tn.n.WalkRing(ctx)
			cancel()
			if _, ok := tn.n.OwnRange(); err != nil || len(ps) != len(live) || !ok {
				return false
			}
		}
		return true
	})
}

func (r *tdRing) live() []*tdNode {
	var out []*tdNode
	for _, tn := range r.nodes {
		if !tn.down {
			out = append(out, tn)
		}
	}
	return out
}

// kill stops a node without handing its range on: a crash, as its peers see it.
func (r *tdRing) kill(tn *tdNode) {
	tn.down = true
	tn.things.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tn.n.Stop(ctx)
}

func (r *tdRing) stopAll() {
	for _, tn := range r.nodes {
		if !tn.down {
			tn.down = true
			tn.things.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			tn.n.Stop(ctx)
			cancel()
		}
	}
}

// eventually polls cond until it holds or within has passed.
func eventually(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("waited %v for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type answer struct {
	code int
	head http.Header
	body []byte
}

// call makes one HTTP request; contentType "" sends none.
func call(tb testing.TB, method, url, contentType string, body []byte) answer {
	tb.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// getTD reads a TD from a node and checks it against the W3C schema and
// the forms this node must add; nil when the node answers 404.
func getTD(tb testing.TB, tn *tdNode, id string) map[string]any {
	tb.Helper()
	a := call(tb, "GET", tn.base+tdPath(id), "", nil)
	if a.code == http.StatusNotFound {
		requireError(tb, a, http.StatusNotFound)
		return nil
	}
	if a.code != http.StatusOK || a.head.Get("Content-Type") != ctTD {
		tb.Fatalf("GET %s on %s: %d %s %s", id, tn.base, a.code, a.head.Get("Content-Type"), a.body)
	}
	td := requireValidTD(tb, a.body)
	checkServedBy(tb, tn, td)
	return td
}

// checkServedBy checks that every property has the node's own forms.
func checkServedBy(tb testing.TB, tn *tdNode, td map[string]any) {
	tb.Helper()
	props, _ := td["properties"].(map[string]any)
	thing, err := thingIDOf(td["id"].(string))
	if err != nil {
		tb.Fatal(err)
	}
	for name, p := range props {
		var ours []any
		for _, f := range formList(p.(map[string]any)["forms"]) {
			if isOurHref(thing, f.(map[string]any)["href"].(string)) {
				ours = append(ours, f)
			}
		}
		checkPropertyForms(tb, tn.things, thing, name, map[string]any{"forms": ours})
	}
}

// requireError checks an error answer: the code, JSON {"error": "..."}.
func requireError(tb testing.TB, a answer, code int) string {
	tb.Helper()
	var e struct{ Error string }
	if a.code != code || a.head.Get("Content-Type") != ctJSON || json.Unmarshal(a.body, &e) != nil || e.Error == "" {
		tb.Fatalf("want %d with a JSON error, got %d %s %s", code, a.code, a.head.Get("Content-Type"), a.body)
	}
	return e.Error
}

// listIDs reads the whole listing from a node, a page of limit at a time,
// following Link rel="next", and checks every TD.
func listIDs(tb testing.TB, tn *tdNode, limit int) []string {
	tb.Helper()
	ids, _ := readListing(tb, tn, limit, false)
	return ids
}

// readListing is listIDs; with tolerate503, a 503 answer ends it (ok false).
func readListing(tb testing.TB, tn *tdNode, limit int, tolerate503 bool) (ids []string, ok bool) {
	tb.Helper()
	url := tn.base + "/things?limit=" + itoa(limit)
	for pages := 0; url != ""; pages++ {
		if pages > 1000 {
			tb.Fatal("the listing does not end")
		}
		a := call(tb, "GET", url, "", nil)
		if a.code == http.StatusServiceUnavailable && tolerate503 {
			requireError(tb, a, http.StatusServiceUnavailable)
			return nil, false
		}
		if a.code != http.StatusOK || a.head.Get("Content-Type") != ctLD {
			tb.Fatalf("GET %s: %d %s", url, a.code, a.body)
		}
		var tds []json.RawMessage
		if err := json.Unmarshal(a.body, &tds); err != nil {
			tb.Fatalf("listing is not an array: %v", err)
		}
		if len(tds) > limit {
			tb.Fatalf("a page of %d holds %d", limit, len(tds))
		}
		for _, raw := range tds {
			td := requireValidTD(tb, raw)
			checkServedBy(tb, tn, td)
			id, _ := thingIDOf(td["id"].(string))
			ids = append(ids, id)
		}
		url = ""
		if link := a.head.Get("Link"); link != "" {
			start, end := strings.Index(link, "<"), strings.Index(link, ">")
			if start < 0 || end < start || !strings.Contains(link, `rel="next"`) {
				tb.Fatalf("Link %q", link)
			}
			url = tn.base + link[start+1:end]
		}
	}
	for i := 1; i < len(ids); i++ {
		if ids[i-1] >= ids[i] {
			tb.Fatalf("listing out of order or repeated at %d: %q, %q", i, ids[i-1], ids[i])
		}
	}
	return ids, true
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func has(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// registryRecords counts the registry records at a Thing's key, ring-wide.
func registryRecords(tb testing.TB, tn *tdNode, thing string) int {
	tb.Helper()
	key := registryKey(thing)
	recs, err := tn.n.RecordsByKey(context.Background(), key, 1000)
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, raw := range recs {
		if _, ok := versionOf(raw, thing, key); ok {
			n++
		}
	}
	return n
}

const lampID = "urn:dev:ops:32473-WoTLamp-1234"

// TestDirectoryOnRing: a TD PUT on one node is read, listed, patched and
// deleted through the others; every TD served is valid with the serving
// node's forms.
func TestDirectoryOnRing(t *testing.T) {
	r := startTDRing(t, 3)
	a, b, c := r.nodes[0], r.nodes[1], r.nodes[2]

	t.Run("directory TD", func(t *testing.T) {
		for _, tn := range r.nodes {
			ans := call(t, "GET", tn.base+"/.well-known/wot", "", nil)
			if ans.code != http.StatusOK || ans.head.Get("Content-Type") != ctTD {
				t.Fatalf("%d %s", ans.code, ans.head.Get("Content-Type"))
			}
			td := requireValidTD(t, ans.body)
			if td["base"] != tn.base+"/" {
				t.Errorf("base %v, want %s/", td["base"], tn.base)
			}
		}
	})

	t.Run("create read list patch delete", func(t *testing.T) {
		put := call(t, "PUT", a.base+tdPath(lampID), ctTD, []byte(lampTD))
		if put.code != http.StatusCreated || put.head.Get("Location") != tdPath(lampID) {
			t.Fatalf("PUT: %d %s %s", put.code, put.head.Get("Location"), put.body)
		}
		for _, tn := range r.nodes {
			td := getTD(t, tn, lampID)
			if td == nil || td["title"] != "MyLampThing" || td["id"] != lampID {
				t.Fatalf("GET on %s: %v", tn.base, td)
			}
			if !has(listIDs(t, tn, 100), lampID) {
				t.Errorf("%s does not list %s", tn.base, lampID)
			}
		}
		// Replace through B: 204, seen at once on B, and on C within the cache's TTL.
		replaced := strings.Replace(lampTD, `"MyLampThing"`, `"Lamp 2"`, 1)
		if ans := call(t, "PUT", b.base+tdPath(lampID), "application/td+json; charset=utf-8", []byte(replaced)); ans.code != http.StatusNoContent {
			t.Fatalf("PUT again: %d %s", ans.code, ans.body)
		}
		if td := getTD(t, b, lampID); td["title"] != "Lamp 2" {
			t.Errorf("B serves title %v after its own PUT", td["title"])
		}
		eventually(t, 10*time.Second, "C to see the new title", func() bool { return getTD(t, c, lampID)["title"] == "Lamp 2" })

		// Patch through C (by its TD id alias too: same Thing).
		patch := `{"title":"Patched","description":null,"properties":{"brightness":{"maximum":255}}}`
		if ans := call(t, "PATCH", c.base+tdPath(lampID), ctMergePatch, []byte(patch)); ans.code != http.StatusNoContent {
			t.Fatalf("PATCH: %d %s", ans.code, ans.body)
		}
		eventually(t, 10*time.Second, "A to see the patch", func() bool {
			td := getTD(t, a, lampID)
			bright := td["properties"].(map[string]any)["brightness"].(map[string]any)
			return td["title"] == "Patched" && td["description"] == nil && bright["maximum"] == json.Number("255")
		})

		// Delete through B: gone everywhere, and from the listings.
		if ans := call(t, "DELETE", b.base+tdPath(lampID), "", nil); ans.code != http.StatusNoContent {
			t.Fatalf("DELETE: %d %s", ans.code, ans.body)
		}
		for _, tn := range r.nodes {
			eventually(t, 10*time.Second, "the Thing to be gone on "+tn.base, func() bool {
				return getTD(t, tn, lampID) == nil && !has(listIDs(t, tn, 100), lampID)
			})
		}
		requireError(t, call(t, "DELETE", a.base+tdPath(lampID), "", nil), http.StatusNotFound)
		// Every change is a registry record: create, update, update, delete.
		if n := registryRecords(t, a, lampID); n != 4 {
			t.Errorf("%d registry records for the lamp, want 4", n)
		}
	})

	t.Run("things created by readings", func(t *testing.T) {
		ctx := context.Background()
		reading := json.RawMessage(`{"temperature":21.5,"humidity":40}`)
		var wg sync.WaitGroup
		errs := make([]error, len(r.nodes))
		for i, tn := range r.nodes {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = tn.things.ensureThing(ctx, "greenhouse-1", reading) }()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		td := getTD(t, c, "greenhouse-1")
		props := td["properties"].(map[string]any)
		if len(props) != 2 || props["temperature"].(map[string]any)["type"] != "number" || props["humidity"].(map[string]any)["type"] != "integer" {
			t.Errorf("derived properties: %v", props)
		}
		if td["id"] != "urn:flownode:thing:greenhouse-1" {
			t.Errorf("id %v", td["id"])
		}
		// The TD id names the same Thing.
		if got := getTD(t, a, "urn:flownode:thing:greenhouse-1"); got["id"] != td["id"] {
			t.Errorf("by TD id: %v", got["id"])
		}
		// A later reading of another shape does not change the TD.
		before := registryRecords(t, a, "greenhouse-1")
		if err := a.things.ensureThing(ctx, "greenhouse-1", json.RawMessage(`{"co2":400}`)); err != nil {
			t.Fatal(err)
		}
		if after := registryRecords(t, a, "greenhouse-1"); after != before || before < 1 || before > len(r.nodes) {
			t.Errorf("registry records %d then %d", before, after)
		}
		raw, err := a.things.ThingTD(ctx, "greenhouse-1")
		if err != nil {
			t.Fatal(err)
		}
		requireValidTD(t, raw)
		if err := a.things.ensureThing(ctx, registryThing, reading); err == nil {
			t.Error("ensureThing accepted the registry's own Thing")
		}
		if _, err := b.things.ThingTD(ctx, "no-such-thing"); err != ErrNoThing {
			t.Errorf("ThingTD of no Thing: %v", err)
		}
	})

	t.Run("paging", func(t *testing.T) {
		var created []string
		for i := 0; i < 25; i++ {
			tn := r.nodes[i%3]
			// 6 KB each: a node's part takes more than one answer (30 KiB).
			anon := `{"@context":"https://www.w3.org/2022/wot/td/v1.1","title":"anon","description":"` + strings.Repeat("d", 6<<10) +
				`","securityDefinitions":{"s":{"scheme":"nosec"}},"security":"s","properties":{"p":{"type":"number"}}}`
			ans := call(t, "POST", tn.base+"/things", ctTD, []byte(anon))
			loc := ans.head.Get("Location")
			if ans.code != http.StatusCreated || !strings.HasPrefix(loc, "/things/urn:uuid:") {
				t.Fatalf("POST: %d %q %s", ans.code, loc, ans.body)
			}
			created = append(created, strings.TrimPrefix(loc, "/things/"))
		}
		all := listIDs(t, a, 1000)
		for _, id := range created {
			if !has(all, id) {
				t.Fatalf("the listing lacks %s", id)
			}
		}
		for i, tn := range r.nodes {
			for _, limit := range []int{1, 7, 25} {
				if limit == 1 && i > 0 {
					continue // pages of one cost a listing per Thing: on one node only
				}
				if got := listIDs(t, tn, limit); strings.Join(got, " ") != strings.Join(all, " ") {
					t.Errorf("pages of %d on %s:\n%v\nwant\n%v", limit, tn.base, got, all)
				}
			}
		}
		ans := call(t, "GET", b.base+"/things?offset=5&limit=5", "", nil)
		var tds []map[string]any
		if err := json.Unmarshal(ans.body, &tds); err != nil || len(tds) != 5 {
			t.Fatalf("offset 5 limit 5: %v %d", err, len(tds))
		}
		for i, td := range tds {
			if id, _ := thingIDOf(td["id"].(string)); id != all[5+i] {
				t.Errorf("offset page item %d is %s, want %s", i, id, all[5+i])
			}
		}
		if link := ans.head.Get("Link"); link != `</things?limit=5&offset=10>; rel="next"` {
			t.Errorf("Link %q", link)
		}
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		const thing = "lamp-bad"
		good := strings.Replace(lampTD, lampID, thing, 1)
		if ans := call(t, "PUT", a.base+tdPath(thing), ctJSON, []byte(good)); ans.code != http.StatusCreated {
			t.Fatalf("PUT: %d %s", ans.code, ans.body)
		}
		before := call(t, "GET", a.base+tdPath(thing), "", nil).body
		big := strings.Replace(good, `"A lamp"`, `"`+strings.Repeat("x", 70<<10)+`"`, 1)
		bigStored := strings.Replace(good, `"A lamp"`, `"`+strings.Repeat("x", 40<<10)+`"`, 1)
		invalid := strings.Replace(good, `"title": "MyLampThing",`, ``, 1)
		cases := []struct {
			method, path, ct, body string
			code                   int
			says                   string
		}{
			{"PUT", tdPath(thing), ctTD, `{"title":`, 400, "not one JSON object"},
			{"PUT", tdPath(thing), ctTD, `[1,2]`, 400, "JSON object"},
			{"PUT", tdPath(thing), ctTD, good + good, 400, "more than one JSON value"},
			{"PUT", tdPath(thing), ctTD, ``, 400, "empty"},
			{"PUT", tdPath(thing), "text/plain", good, 415, "application/td+json"},
			{"PUT", tdPath(thing), "", good, 415, "content type"},
			{"PUT", tdPath(thing), ctTD, big, 413, "larger than"},
			{"PUT", tdPath(thing), ctTD, bigStored, 413, "at most"},
			{"PUT", tdPath(thing), ctTD, invalid, 400, "title"},
			{"PUT", tdPath(thing), ctTD, strings.Replace(good, `"id": "lamp-bad"`, `"id": "urn:other"`, 1), 400, "does not name"},
			{"PUT", "/things/a%2Fb", ctTD, good, 400, "invalid"},
			{"PUT", "/things/urn:flownode:things", ctTD, good, 400, "urn:flownode:"},
			{"PUT", "/things/" + strings.Repeat("a", 201), ctTD, good, 400, "invalid"},
			{"POST", "/things", ctTD, good, 409, "PUT"},
			{"POST", "/things", ctTD, strings.Replace(good, `"id": "lamp-bad"`, `"id": 7`, 1), 400, "invalid"},
			{"PATCH", tdPath(thing), ctJSON, `{"title":"x"}`, 415, "merge-patch"},
			{"PATCH", tdPath(thing), ctMergePatch, `{"title":null}`, 400, "title"},
			{"PATCH", tdPath(thing), ctMergePatch, `{"id":"urn:x"}`, 400, "id"},
			{"PATCH", tdPath(thing), ctMergePatch, `{"id":{"a":1}}`, 400, "id"},
			{"PATCH", tdPath(thing), ctMergePatch, `[1]`, 400, "JSON object"},
			{"PATCH", tdPath(thing), ctMergePatch, `{"properties":{"status":{"forms":[{"href":"x","op":"bogus"}]}}}`, 400, "/properties/status/forms"},
			{"PATCH", tdPath("ghost"), ctMergePatch, `{"title":"x"}`, 404, "ghost"},
			{"DELETE", tdPath("ghost"), "", ``, 404, "ghost"},
			{"GET", tdPath("ghost"), "", ``, 404, "ghost"},
			{"GET", "/things?limit=0", "", ``, 400, "limit"},
			{"GET", "/things?offset=-1", "", ``, 400, "offset"},
			{"GET", "/things?format=collection", "", ``, 400, "format"},
			{"POST", tdPath(thing), ctTD, good, 405, "PUT"},
			{"DELETE", "/things", "", ``, 405, "POST"},
			{"PUT", "/.well-known/wot", ctTD, good, 405, "GET"},
		}
		for _, c := range cases {
			ans := call(t, c.method, b.base+c.path, c.ct, []byte(c.body))
			if msg := requireError(t, ans, c.code); !strings.Contains(msg, c.says) {
				t.Errorf("%s %s (%s): %q does not say %q", c.method, c.path, c.ct, msg, c.says)
			}
		}
		if after := call(t, "GET", a.base+tdPath(thing), "", nil).body; !bytes.Equal(before, after) {
			t.Errorf("the TD changed:\n%s\n%s", before, after)
		}
		if n := registryRecords(t, c, thing); n != 1 {
			t.Errorf("%d registry records for %s, want 1", n, thing)
		}
		if n := registryRecords(t, c, "ghost"); n != 0 {
			t.Errorf("%d registry records for ghost", n)
		}
	})
}

// TestDirectorySurvivesOwnerLoss: a TD stays readable and listed on every
// survivor when the node owning it fails (k = 3).
func TestDirectorySurvivesOwnerLoss(t *testing.T) {
	r := startTDRing(t, 3)
	ctx := context.Background()
	const thing = "urn:dev:ops:owner-loss"
	td := strings.Replace(lampTD, lampID, thing, 1)
	if ans := call(t, "PUT", r.nodes[0].base+tdPath(thing), ctTD, []byte(td)); ans.code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", ans.code, ans.body)
	}
	owner, err := r.nodes[0].n.Owner(ctx, registryKey(thing))
	if err != nil {
		t.Fatal(err)
	}
	var victim *tdNode
	for _, tn := range r.nodes {
		if tn.n.ID() == owner.ID {
			victim = tn
		}
	}
	if victim == nil {
		t.Fatalf("owner %s is not a ring node", owner.Addr)
	}
	eventually(t, 30*time.Second, "every node to hold the TD's record", func() bool {
		for _, tn := range r.nodes {
			if !holdsRegistryRecord(tn, thing) {
				return false
			}
		}
		return true
	})
	r.kill(victim)
	for _, tn := range r.live() {
		eventually(t, 60*time.Second, "a survivor to serve and list the TD", func() bool {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			b, err := tn.things.ThingTD(ctx, thing)
			if err != nil {
				return false
			}
			requireValidTD(t, b)
			ids, ok := readListing(t, tn, 10, true)
			return ok && getTD(t, tn, thing) != nil && has(ids, thing)
		})
	}
}

// holdsRegistryRecord reports whether a node's own store holds a registry
// record of thing.
func holdsRegistryRecord(tn *tdNode, thing string) bool {
	recs, err := tn.n.LocalRecordsByThing(registryThing, 0, 0, 0)
	if err != nil {
		return false
	}
	for _, raw := range recs {
		if _, ok := versionOf(raw, thing, registryKey(thing)); ok {
			return true
		}
	}
	return false
}
