package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/flownode/flownode/api"
)

// chromium finds a headless-capable Chromium. Under CI (CI=true) its absence is a
// failure: .ci/run installs it, and a page test that silently skips proves nothing.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on PATH; .ci/run should have installed it")
	}
	t.Skip("no chromium on PATH (apt-get install chromium)")
	return ""
}

// TestDashboardRendersInChromium loads the dashboard in a real headless Chromium, lets
// its scripts run against the live node, and reads the DOM they produced.
func TestDashboardRendersInChromium(t *testing.T) {
	bin := chromium(t)
	n := startNode(t, t.TempDir(), "local")
	for i := 0; i < 3; i++ {
		putOne(t, n.URL, "dash", `{"i":1}`)
	}
	// Wait until the block that seals them is mined (a node mines only while
	// records wait for a seal), so the blocks table has rows of the miner's own.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var got api.BlockList
		getJSON(t, n.URL+"/api/v1/blocks?branch="+n.ID, &got)
		if len(got.Blocks) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no block mined in 30 s: %d blocks", len(got.Blocks))
		}
	}

	info := getNode(t, n.URL)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir="+chromiumProfile(t), "--virtual-time-budget=5000", "--dump-dom", n.URL+"/")
	cmd.SysProcAttr = groupAttr()
	out, err := cmd.Output()
	if cmd.Process != nil {
		killGroup(cmd.Process.Pid) // its helpers, which may outlive it
	}
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	for _, want := range []string{
		n.ID,                              // the node id, filled in by the script
		"ledger valid (3 records)",        // the verify line, from /api/v1/verify
		`<td class="mono">ws://` + n.Addr, // the ring table: peers by RPC address
		// The network section, from /api/v1/network.
		`<code id="net-name">` + info.Network + `</code>`,
		`<code id="net-authority">` + info.Authority + `</code>`,
		`<td class="mono">` + n.ID + ` (this node)</td>`,
		`<section id="thing" hidden="">`, // a Thing's page shows only at #/things/{id}
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered dashboard lacks %q", want)
		}
	}
	// Without a Web of Things layer (/things answers 404) the Things list stays hidden.
	if r := doHTTP(t, http.MethodGet, n.URL+"/things", "", nil); r.Code == http.StatusNotFound && !strings.Contains(dom, `<section id="things" hidden="">`) {
		t.Error("the Things section shows on a node without /things")
	}
	if !strings.Contains(dom, `<div id="err"></div>`) {
		t.Error("dashboard shows its error line")
	}
	if !strings.Contains(dom, `<tbody id="blocks"><tr>`) {
		t.Error("the blocks table is empty")
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
}
