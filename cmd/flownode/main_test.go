package main

// Black-box tests and benchmarks of the flownode binary: TestMain builds it once, and
// every test starts real node processes on 127.0.0.1 with free ports (--http
// 127.0.0.1:0; the real address is parsed from the node's stdout line) and talks to
// them over HTTP and through the CLI, exactly as users and scripts do.
//
// Environment:
//
//	FLOWNODE_TEST_BIN=path       test this binary instead of building one
//	FLOWNODE_TEST_RACE_NODE=1    build the node with -race; a race report in a node's
//	                             stderr fails the test (slow: for hunting races)

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flownode/flownode/api"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
	"github.com/flownode/flownode/node"
)

// binPath is the flownode binary under test, set by TestMain.
var binPath string

// raceNode says the node binary was built with -race.
var raceNode bool

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if p := os.Getenv("FLOWNODE_TEST_BIN"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "FLOWNODE_TEST_BIN:", err)
			return 2
		}
		binPath = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "flownode-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "flownode")
	args := []string{"build", "-o", binPath}
	env := os.Environ()
	if os.Getenv("FLOWNODE_TEST_RACE_NODE") == "1" {
		raceNode = true
		args = append(args, "-race")
	} else {
		env = append(env, "CGO_ENABLED=0")
	}
	args = append(args, ".")
	cmd := exec.Command("go", args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go %s: %v\n%s", strings.Join(args, " "), err, out)
		return 2
	}
	return m.Run()
}

// cleanEnv is the test process's environment without FLOWNODE_* variables, so a
// developer's settings cannot leak into the processes under test, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FLOWNODE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// lockedBuffer collects a child's output; it is written by exec's copying goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// firstLineWriter hands the first complete line written to it to ch, then discards.
type firstLineWriter struct {
	mu   sync.Mutex
	buf  []byte
	sent bool
	ch   chan string
}

func (w *firstLineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sent {
		return len(p), nil
	}
	w.buf = append(w.buf, p...)
	if i := bytes.IndexByte(w.buf, '\n'); i >= 0 {
		w.sent = true
		w.ch <- string(w.buf[:i])
		w.buf = nil
	}
	return len(p), nil
}

// nodeProc is a running `flownode run`.
type nodeProc struct {
	tb      testing.TB
	cmd     *exec.Cmd
	Addr    string // host:port the node serves on
	URL     string // http://Addr
	ID      string // the node's 40-hex id from its stdout line
	Data    string
	Profile string
	stderr  *lockedBuffer
	done    chan struct{} // closed when the process has exited
	waitErr error
}

var runningLine = regexp.MustCompile(`^flownode ([0-9a-f]{40}) is running: dashboard at http://([^/ ]+)/ `)

// startNode runs `flownode run` on dataDir with the profile, on a free loopback port,
// and returns once the node has printed its "is running" line. The process is killed
// in tb.Cleanup if still alive; its stderr is logged if the test failed.
func startNode(tb testing.TB, dataDir, profile string, extraArgs ...string) *nodeProc {
	tb.Helper()
	admitOnce(tb, dataDir, profile)
	args := append([]string{"run", "--data", dataDir, "--http", "127.0.0.1:0", "--coap", "127.0.0.1:0", "--coaps", "127.0.0.1:0", "--profile", profile}, extraArgs...)
	cmd := exec.Command(binPath, args...)
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = childAttr()
	lines := make(chan string, 1)
	cmd.Stdout = &firstLineWriter{ch: lines}
	p := &nodeProc{tb: tb, cmd: cmd, Data: dataDir, Profile: profile, stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", binPath, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		p.Kill()
		if raceNode && strings.Contains(p.stderr.String(), "WARNING: DATA RACE") {
			tb.Errorf("the node (pid %d) reported a data race:\n%s", cmd.Process.Pid, p.stderr.String())
		} else if tb.Failed() {
			tb.Logf("stderr of node pid %d (%s):\n%s", cmd.Process.Pid, strings.Join(args, " "), tail(p.stderr.String(), 40))
		}
	})
	startTimeout := 15 * time.Second
	if raceNode {
		startTimeout = 60 * time.Second
	}
	select {
	case line := <-lines:
		m := runningLine.FindStringSubmatch(line)
		if m == nil {
			tb.Fatalf("unexpected first stdout line of flownode run: %q", line)
		}
		p.ID, p.Addr = m[1], m[2]
		p.URL = "http://" + p.Addr
	case <-p.done:
		tb.Fatalf("flownode run exited before serving (%v); stderr:\n%s", p.waitErr, p.stderr.String())
	case <-time.After(startTimeout):
		tb.Fatalf("flownode run printed no line within %v; stderr:\n%s", startTimeout, p.stderr.String())
	}
	return p
}

// Pid is the node's process id.
func (p *nodeProc) Pid() int { return p.cmd.Process.Pid }

// Exited says whether the process has exited.
func (p *nodeProc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL (if the process is alive) and waits for it to be gone.
func (p *nodeProc) Kill() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.tb.Errorf("pid %d still running 10 s after SIGKILL", p.Pid())
	}
}

// Stop sends SIGTERM and returns the exit code once the process is gone; it fails the
// test if the node takes longer than 20 s to shut down.
func (p *nodeProc) Stop() int {
	p.tb.Helper()
	if !p.Exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.Kill()
		p.tb.Fatalf("node pid %d did not stop within 20 s of SIGTERM", p.Pid())
	}
	return p.cmd.ProcessState.ExitCode()
}

// Stderr is everything the node wrote to stderr so far.
func (p *nodeProc) Stderr() string { return p.stderr.String() }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// cliResult is what one CLI invocation did.
type cliResult struct {
	Stdout, Stderr string
	Code           int
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
}

// runCLI runs the binary with args and the given extra environment (FLOWNODE_* from
// the test's own environment removed), bounded to 60 s.
func runCLI(tb testing.TB, env []string, args ...string) cliResult {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = cleanEnv(env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		tb.Fatalf("flownode %s: no exit within 60 s", strings.Join(args, " "))
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			tb.Fatalf("flownode %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return cliResult{Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
}

// httpClient is shared by the tests: keep-alive to each node, generous pool.
var httpClient = &http.Client{
	Timeout:   60 * time.Second,
	Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128, IdleConnTimeout: 30 * time.Second},
}

// apiResp is one HTTP answer.
type apiResp struct {
	Code        int
	Body        []byte
	ContentType string
	Header      http.Header
}

func doHTTP(tb testing.TB, method, url, contentType string, body []byte) apiResp {
	tb.Helper()
	r, err := tryHTTP(httpClient, method, url, contentType, body)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

func tryHTTP(c *http.Client, method, url, contentType string, body []byte) (apiResp, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return apiResp{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		return apiResp{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return apiResp{}, err
	}
	return apiResp{Code: resp.StatusCode, Body: b, ContentType: resp.Header.Get("Content-Type"), Header: resp.Header}, nil
}

// getJSON GETs url, wants 200 and decodes the body into v.
func getJSON(tb testing.TB, url string, v any) {
	tb.Helper()
	r := doHTTP(tb, http.MethodGet, url, "", nil)
	if r.Code != http.StatusOK {
		tb.Fatalf("GET %s: %d %s", url, r.Code, r.Body)
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("GET %s: %v in %s", url, err, r.Body)
	}
}

// peerJSON is a peer as the API names it ({"id","addr"}), read as plain strings:
// the ring and dist tests compare IDs with nodeProc.ID and slice them for logs.
// (The CLI itself decodes node.Peer, inside api.NodeInfo and api.RingWalk.)
type peerJSON struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
}

// receipt is the answer to a put (node.Receipt), read with plain strings and raw
// replicas: the dist and durability tests use txIDs and keys as strings (map keys,
// URLs, oracles) and check each replica themselves.
type receipt struct {
	TxID  string `json:"txID"`
	Key   string `json:"key"`
	Owner struct {
		ID   string `json:"id"`
		Addr string `json:"addr"`
	} `json:"owner"`
	Block struct {
		Branch string `json:"branch"`
		No     uint64 `json:"no"`
		Hash   string `json:"hash"`
	} `json:"block"`
	Replicas []json.RawMessage `json:"replicas"`
}

// putOne POSTs one reading and wants a 201 receipt.
func putOne(tb testing.TB, base, thing, data string, key ...string) receipt {
	tb.Helper()
	body := fmt.Sprintf(`{"thing":%q,"data":%s}`, thing, data)
	if len(key) > 0 {
		body = fmt.Sprintf(`{"thing":%q,"data":%s,"key":%q}`, thing, data, key[0])
	}
	r := doHTTP(tb, http.MethodPost, base+"/api/v1/records", "application/json", []byte(body))
	if r.Code != http.StatusCreated {
		tb.Fatalf("POST %s: %d %s", body, r.Code, r.Body)
	}
	var rc receipt
	if err := json.Unmarshal(r.Body, &rc); err != nil {
		tb.Fatalf("receipt %s: %v", r.Body, err)
	}
	return rc
}

// getNode GETs /api/v1/node.
func getNode(tb testing.TB, base string) api.NodeInfo {
	tb.Helper()
	var n api.NodeInfo
	getJSON(tb, base+"/api/v1/node", &n)
	return n
}

// getVerify GETs /api/v1/verify.
func getVerify(tb testing.TB, base string) ledger.Report {
	tb.Helper()
	var v ledger.Report
	getJSON(tb, base+"/api/v1/verify", &v)
	return v
}

// waitFor polls cond every interval until it holds or timeout passes, and returns
// whether it held.
func waitFor(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

// offlineVerify matches the second line of `flownode verify` when valid.
var verifySummary = regexp.MustCompile(`^(\d+) branch\(es\), (\d+) block\(s\), (\d+) record\(s\), (\d+) not yet sealed$`)

// verifyMode matches the last line of `flownode verify`: what it read.
var verifyMode = regexp.MustCompile(`^(full(: .+)?|incremental: \d+ block\(s\) and \d+ record\(s\) written since store version \d+ checked .*)$`)

// parseVerifyOutput checks `flownode verify` printed "valid" and its summary and
// returns the record and unsealed counts.
func parseVerifyOutput(tb testing.TB, r cliResult) (records, unsealed int) {
	tb.Helper()
	lines := strings.Split(strings.TrimRight(r.Stdout, "\n"), "\n")
	if r.Code != 0 || len(lines) != 3 || lines[0] != "valid" || !verifyMode.MatchString(lines[2]) {
		tb.Fatalf("flownode verify: want valid, its summary and mode, and exit 0, got %v", r)
	}
	m := verifySummary.FindStringSubmatch(lines[1])
	if m == nil {
		tb.Fatalf("flownode verify: unexpected summary line %q", lines[1])
	}
	fmt.Sscan(m[3], &records)
	fmt.Sscan(m[4], &unsealed)
	return records, unsealed
}

// oneLine fails unless s is exactly one non-empty line ending in a newline.
func oneLine(tb testing.TB, what, s string) string {
	tb.Helper()
	if !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 || strings.TrimSpace(s) == "" {
		tb.Errorf("%s: want one line on stderr, got %q", what, s)
	}
	return strings.TrimSpace(s)
}

// scanLines splits text into lines.
func scanLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// testAuthorities are the networks of the process tests, one per profile (its
// mining rules are the network's): every node a test starts on a fresh data
// directory is admitted to the one of its profile, as flownode admit would.
var testAuthorities sync.Map // profile name → *network.Authority

// admitOnce admits dataDir to the test network of profile unless it already
// belongs to a network.
func admitOnce(tb testing.TB, dataDir, profile string) {
	tb.Helper()
	if _, err := os.Stat(filepath.Join(dataDir, network.DescriptionFile)); err == nil {
		return
	}
	prof, err := node.ProfileNamed(profile)
	if err != nil {
		return // the test expects run to refuse the profile
	}
	a, ok := testAuthorities.Load(profile)
	if !ok {
		na, err := network.NewAuthority("flownode-test", prof.Mining)
		if err != nil {
			tb.Fatal(err)
		}
		a, _ = testAuthorities.LoadOrStore(profile, na)
	}
	if _, err := a.(*network.Authority).AdmitDir(dataDir, time.Now().Add(24*time.Hour)); err != nil {
		tb.Fatal(err)
	}
}
