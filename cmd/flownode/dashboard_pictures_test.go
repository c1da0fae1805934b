package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flownode/flownode/api"
)

// TestDashboardPicturesInChromium renders the dashboard of a 3-node ring in headless
// Chromium and reads its pictures from the DOM: the ring circle (a mark per node,
// titled with its ID, this node's marked, a range arc and a successor arrow per
// node), each branch's chain of blocks with its sealed head, the checkpoints' state,
// and a record written on another node appearing in the live transactions. It keeps
// a screenshot (see screenshotDir).
func TestDashboardPicturesInChromium(t *testing.T) {
	bin := chromium(t)
	nodes := dlStartRing(t, 3)
	dlWaitRing(t, nodes, 90*time.Second)
	self, other := nodes[0], nodes[1]

	// A Thing in the directory, with records, so that blocks are mined and the page
	// has a Thing to follow live.
	const thing = "urn:dev:dash-pictures"
	td, err := json.Marshal(thermometerTD(self.URL, thing))
	if err != nil {
		t.Fatal(err)
	}
	if r := doHTTP(t, http.MethodPut, self.URL+"/things/"+url.PathEscape(thing), "application/td+json", td); r.Code/100 != 2 {
		t.Fatalf("PUT the TD: %d %s", r.Code, r.Body)
	}
	seeded := putOne(t, other.URL, thing, `{"temperature":20.5}`)
	// Blocks are mined only to seal records: records under self's own ID, which it owns.
	if !waitFor(60*time.Second, 50*time.Millisecond, func() bool {
		tryPut(self.URL, thing, self.ID)
		var got api.BlockList
		getJSON(t, self.URL+"/api/v1/blocks?branch="+self.ID, &got)
		return len(got.Blocks) >= 2
	}) {
		t.Fatal("no block mined on this node's branch in 60 s")
	}
	var branches api.BranchList
	getJSON(t, self.URL+"/api/v1/branches", &branches)
	if len(branches.Branches) == 0 {
		t.Fatal("GET /api/v1/branches lists no branch")
	}

	b := openBrowser(t, bin)
	b.navigate(self.URL + "/")

	// The ring circle: one mark per node titled with its full ID, this node's
	// marked, and per node its range arc and its successor arrow.
	var wants []string
	for _, n := range nodes {
		class := "ring-node"
		if n == self {
			class = "ring-node self"
		}
		wants = append(wants,
			fmt.Sprintf(`<g class="%s" data-id="%s"><title>%s`, class, n.ID, n.ID),
			fmt.Sprintf(`<path class="range" data-id="%s"`, n.ID),
			fmt.Sprintf(`<path class="succ" data-from="%s"`, n.ID))
	}
	dom := b.waitDOM("the ring circle", 60*time.Second, wants...)
	if got := strings.Count(dom, `<g class="ring-node`); got != 3 {
		t.Errorf("the circle has %d node marks, want 3", got)
	}
	if got := strings.Count(dom, `class="ring-node self"`); got != 1 {
		t.Errorf("%d node marks are this node's, want 1", got)
	}
	if got := strings.Count(dom, `marker-end="url(#arrow)"`); got != 3 {
		t.Errorf("the circle has %d successor arrows, want 3", got)
	}
	// Each successor link leads to the next node of the ring walk.
	var walk ringWalk
	getJSON(t, self.URL+"/api/v1/ring", &walk)
	for i, p := range walk.Nodes {
		next := walk.Nodes[(i+1)%len(walk.Nodes)]
		if want := fmt.Sprintf(`data-from="%s" data-to="%s"`, p.ID, next.ID); !strings.Contains(dom, want) {
			t.Errorf("no successor arrow from %s to %s", p.ID[:8], next.ID[:8])
		}
	}

	// The chains: this node's branch with its newest blocks, the last one marked as
	// the sealed head; and the checkpoints' state.
	headBox := regexp.MustCompile(`<g class="block head[^"]*" data-no="(\d+)">`)
	dom = b.waitFor("this node's chain", 60*time.Second, func(dom string) []string {
		var missing []string
		if !strings.Contains(dom, `<div class="chain" data-branch="`+self.ID+`">`) {
			missing = append(missing, "this node's chain")
		}
		if !headBox.MatchString(dom) {
			missing = append(missing, "a box marked as the sealed head")
		}
		if !strings.Contains(dom, "(this node) · sealed head #") {
			missing = append(missing, "its label")
		}
		return missing
	})
	if got := strings.Count(dom, `<div class="chain" data-branch="`); got < len(branches.Branches) && got < 24 {
		t.Errorf("%d chains drawn, GET /api/v1/branches lists %d", got, len(branches.Branches))
	}
	// The witnessed heads: every branch's checkpoints are cosigned by its witnesses
	// (the k-1 nodes after it), and the page marks the newest one it holds.
	witnessedBox := regexp.MustCompile(`(?s)<g class="block[^"]* witnessed" data-no="\d+">.*?(?:>|, )witnessed</text>`)
	b.waitFor("a witnessed head", 60*time.Second, func(dom string) []string {
		if !witnessedBox.MatchString(dom) || !regexp.MustCompile(`\d+ branch checkpoints, [1-9]\d* witnessed`).MatchString(dom) {
			return []string{"a block marked witnessed, and the checkpoints' count"}
		}
		return nil
	})

	// Live transactions: the seeded record shows, and then a record written on
	// another node after the page follows the Thing comes over its viewer.
	b.waitDOM("the seeded transaction", 60*time.Second,
		`<tr data-tx="`+seeded.TxID+`"`, "following 1 of 1 Things")
	written := map[string]receipt{}
	var seen string
	for i := 0; i < 60 && seen == ""; i++ {
		rc := putOne(t, other.URL, thing, fmt.Sprintf(`{"temperature":%d}`, 21+i))
		written[rc.TxID] = rc
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline) && seen == ""; time.Sleep(100 * time.Millisecond) {
			dom, err := b.dom()
			if err != nil {
				t.Fatal(err)
			}
			for tx := range written {
				if strings.Contains(dom, `<tr data-tx="`+tx+`"`) {
					seen = tx
				}
			}
		}
	}
	if seen == "" {
		t.Fatalf("none of the %d records written on another node appeared in the live list", len(written))
	}
	rc := written[seen]
	b.waitDOM("the live row", 10*time.Second,
		`<a href="/api/v1/records/`+seen+`">`+seen[:12]+`…</a></td><td class="mono">`+thing+`</td>`,
		`<td class="mono">`+rc.Block.Branch[:8])

	// The list is bounded: a batch of 60 readings leaves the newest 50 rows, the
	// batch's last reading among them.
	var batch []string
	for i := range 60 {
		batch = append(batch, fmt.Sprintf(`{"thing":%q,"data":{"temperature":%d}}`, thing, 100+i))
	}
	r := doHTTP(t, http.MethodPost, other.URL+"/api/v1/records?batch=1", "application/json", []byte("["+strings.Join(batch, ",")+"]"))
	var rcs []receipt
	if r.Code != http.StatusCreated || json.Unmarshal(r.Body, &rcs) != nil || len(rcs) != 60 {
		t.Fatalf("POST a batch of 60: %d %s", r.Code, r.Body)
	}
	last := rcs[len(rcs)-1].TxID
	dom = b.waitFor("the live list after a batch", 60*time.Second, func(dom string) []string {
		if !strings.Contains(dom, `<tr data-tx="`+last+`"`) {
			return []string{"the batch's last record"}
		}
		if got := strings.Count(dom, `<tr data-tx=`); got != 50 {
			return []string{fmt.Sprintf("50 rows (it has %d)", got)}
		}
		return nil
	})
	if !strings.Contains(dom, `<div id="alerts" role="alert" aria-live="assertive"></div>`) {
		t.Error("the alert area is not empty on a valid ledger")
	}

	shot := b.screenshot("dashboard-ring.png")
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("the screenshot is no PNG: %v", err)
	}
	if sz := img.Bounds().Size(); sz.X < 1000 || sz.Y < 800 {
		t.Errorf("the screenshot is %v, want the whole page", sz)
	}
}
