package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// browser is a headless Chromium driven over the DevTools protocol, for pages that
// keep a connection open (an SSE observation): --virtual-time-budget never runs out
// while a fetch is pending, so such a page is read in real time instead, polling its
// DOM until it shows what the test waits for.
type browser struct {
	t    *testing.T
	cmd  *exec.Cmd
	conn *websocket.Conn
	mu   sync.Mutex
	next int
}

// chromiumProfile is a fresh profile directory for one Chromium run. It is
// removed after the test with retries: Chromium's helper processes may still
// write there for a moment after it was killed, which a plain t.TempDir
// reports as a failed test ("directory not empty").
func chromiumProfile(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "flownode-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			err := os.RemoveAll(dir)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Logf("chromium profile %s not removed: %v", dir, err)
				return
			}
		}
	})
	return dir
}

// openBrowser starts Chromium with remote debugging on a loopback port it picks, and
// attaches to its page. Chromium is stopped in t.Cleanup.
func openBrowser(t *testing.T, bin string) *browser {
	t.Helper()
	dir := chromiumProfile(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir="+dir, "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank")
	cmd.SysProcAttr = groupAttr()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("chromium: %v", err)
	}
	b := &browser{t: t, cmd: cmd}
	t.Cleanup(func() {
		if b.conn != nil {
			b.conn.Close()
		}
		killGroup(cmd.Process.Pid)
		cancel()
		cmd.Wait()
	})
	// Chromium writes the port it listens on to DevToolsActivePort in its profile.
	var port string
	for deadline := time.Now().Add(30 * time.Second); port == ""; time.Sleep(50 * time.Millisecond) {
		if raw, err := os.ReadFile(filepath.Join(dir, "DevToolsActivePort")); err == nil {
			if line, _, ok := strings.Cut(string(raw), "\n"); ok {
				port = line
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("chromium did not open its DevTools port in 30 s")
		}
	}
	var targets []struct{ Type, WebSocketDebuggerURL string }
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		targets = nil
		if resp, err := http.Get("http://127.0.0.1:" + port + "/json/list"); err == nil {
			json.NewDecoder(resp.Body).Decode(&targets)
			resp.Body.Close()
		}
		if len(targets) > 0 && targets[0].Type == "page" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromium shows no page target in 30 s: %+v", targets)
		}
	}
	conn, _, err := websocket.DefaultDialer.Dial(targets[0].WebSocketDebuggerURL, nil)
	if err != nil {
		t.Fatalf("DevTools: %v", err)
	}
	b.conn = conn
	return b
}

// call sends one DevTools command and returns its result, skipping the events
// Chromium sends meanwhile.
func (b *browser) call(method string, params any) (json.RawMessage, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	id := b.next
	b.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := b.conn.WriteJSON(map[string]any{"id": id, "method": method, "params": params}); err != nil {
		return nil, err
	}
	b.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var msg struct {
			ID     int
			Result json.RawMessage
			Error  *struct{ Message string }
		}
		if err := b.conn.ReadJSON(&msg); err != nil {
			return nil, err
		}
		if msg.ID != id {
			continue
		}
		if msg.Error != nil {
			return nil, fmt.Errorf("%s: %s", method, msg.Error.Message)
		}
		return msg.Result, nil
	}
}

// navigate loads url in the page.
func (b *browser) navigate(url string) {
	b.t.Helper()
	if _, err := b.call("Page.navigate", map[string]any{"url": url}); err != nil {
		b.t.Fatal(err)
	}
}

// dom returns the page's current DOM as HTML.
func (b *browser) dom() (string, error) {
	raw, err := b.call("Runtime.evaluate", map[string]any{"expression": "document.documentElement.outerHTML", "returnByValue": true})
	if err != nil {
		return "", err
	}
	var r struct{ Result struct{ Value string } }
	if err := json.Unmarshal(raw, &r); err != nil {
		return "", err
	}
	return r.Result.Value, nil
}

// waitDOM polls the page's DOM until it contains every string of wants, and fails
// the test, naming what is missing and logging the DOM, if that takes over timeout.
func (b *browser) waitDOM(what string, timeout time.Duration, wants ...string) string {
	b.t.Helper()
	return b.waitFor(what, timeout, func(dom string) (missing []string) {
		for _, w := range wants {
			if !strings.Contains(dom, w) {
				missing = append(missing, fmt.Sprintf("%q", w))
			}
		}
		return missing
	})
}

// waitFor polls the page's DOM until lacks finds nothing lacking in it, and fails the
// test with what lacks last named, logging the DOM, if that takes over timeout.
func (b *browser) waitFor(what string, timeout time.Duration, lacks func(dom string) []string) string {
	b.t.Helper()
	var dom string
	var missing []string
	for deadline := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) {
		var err error
		if dom, err = b.dom(); err != nil {
			b.t.Fatalf("%s: %v", what, err)
		}
		if missing = lacks(dom); len(missing) == 0 {
			return dom
		}
		if time.Now().After(deadline) {
			break
		}
	}
	for _, m := range missing {
		b.t.Errorf("%s lacks %s after %v", what, m, timeout)
	}
	b.t.Logf("DOM of %s:\n%s", what, dom)
	return dom
}

// screenshotDir is where page tests keep their screenshots: $FLOWNODE_SCREENSHOT_DIR
// when set (CI can collect it), else testdata/out/ beside this package (.gitignored).
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FLOWNODE_SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join("testdata", "out")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("screenshot dir: %v", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// screenshot saves the whole page (not only the viewport) as a PNG named name in
// screenshotDir, logs its path and returns the PNG's bytes.
func (b *browser) screenshot(name string) []byte {
	b.t.Helper()
	if _, err := b.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}); err != nil {
		b.t.Fatal(err)
	}
	raw, err := b.call("Page.getLayoutMetrics", nil)
	if err != nil {
		b.t.Fatal(err)
	}
	var metrics struct {
		CSSContentSize struct{ Width, Height float64 }
	}
	if err := json.Unmarshal(raw, &metrics); err != nil {
		b.t.Fatalf("layout metrics: %v", err)
	}
	size := metrics.CSSContentSize
	clip := map[string]any{"x": 0, "y": 0, "width": max(size.Width, 1280), "height": min(max(size.Height, 900), 8000), "scale": 1}
	raw, err = b.call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true, "clip": clip})
	if err != nil {
		b.t.Fatal(err)
	}
	var shot struct{ Data []byte }
	if err := json.Unmarshal(raw, &shot); err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(screenshotDir(b.t), name)
	if err := os.WriteFile(path, shot.Data, 0o644); err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	b.t.Logf("screenshot of the page: %s", path)
	return shot.Data
}
