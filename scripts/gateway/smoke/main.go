// Command smoke is the gateway smoke test that make gateway-test runs: it starts the
// gateway binary under qemu-mipsel-static (gateway profile, GOMEMLIMIT 24 MiB), puts
// readings in through the HTTP API from a few concurrent clients, reads every one back
// by txID and compares it with what was put, asks for GET /api/v1/verify, and prints
// the figures: peak and steady RSS, Go heap, records/s (emulated), data dir size.
//
//	go run ./scripts/gateway/smoke -bin bin/flownode-linux-mipsle
//	go run ./scripts/gateway/smoke -bin bin/flownode -qemu ''   # a native binary, no emulation
//
// It exits 1 on any lost, wrong or unreadable record, an invalid ledger or a node that
// dies, and 2 when it cannot run.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flownode/flownode/api"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

func main() {
	bin := flag.String("bin", "bin/flownode-linux-mipsle", "the flownode binary to run")
	qemu := flag.String("qemu", "qemu-mipsel-static", "emulator to run -bin with; empty runs it directly")
	records := flag.Int("records", 100000, "readings to put and read back")
	batch := flag.Int("batch", 500, "readings per POST (the gateway profile allows 1000 and 1 MiB bodies)")
	clients := flag.Int("clients", 4, "concurrent clients putting batches")
	readers := flag.Int("readers", 8, "concurrent clients reading records back by txID")
	dataDir := flag.String("data", "", "data directory for the node, on ext4 or tmpfs (default: a new temporary directory, removed at the end)")
	memLimit := flag.String("gomemlimit", "24MiB", "GOMEMLIMIT for the node")
	idle := flag.Duration("idle", 15*time.Second, "idle time after the load before the steady RSS is read")
	timeout := flag.Duration("timeout", 14*time.Minute, "the whole run's time limit")
	verifyAll := flag.Bool("verify", true, "ask for GET /api/v1/verify after the read-back (minutes under emulation)")
	debugAddr := flag.String("debug", "", "loopback address for the node's pprof (run --debug), e.g. 127.0.0.1:6060; off when empty")
	flag.Parse()
	if *records < 1 || *batch < 1 || *batch > 1000 || *clients < 1 || *readers < 1 {
		fatal(2, "need -records ≥ 1, 1 ≤ -batch ≤ 1000, -clients ≥ 1, -readers ≥ 1")
	}
	s := &smoke{records: *records, batch: *batch, clients: *clients, readers: *readers, mode: "emulated", debug: *debugAddr, verifyAll: *verifyAll}
	if *qemu == "" {
		s.mode = "native"
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	code := s.run(ctx, *bin, *qemu, *dataDir, *memLimit, *idle)
	os.Exit(code)
}

func fatal(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "smoke: "+format+"\n", args...)
	os.Exit(code)
}

type smoke struct {
	records, batch, clients, readers int
	mode                             string // "emulated" or "native", for the figures
	debug                            string // the node's --debug address, if any
	verifyAll                        bool   // ask for GET /api/v1/verify

	base    string // http://127.0.0.1:PORT
	client  *http.Client
	token   string // an admin bearer token (makeToken)
	node    *exec.Cmd
	exited  chan struct{} // closed when the node process has exited
	exitErr error

	things   []string // thing of reading i
	data     [][]byte // data of reading i
	txIDs    []string // from the receipts
	keys     []string
	peakRSS  atomic.Int64 // highest VmRSS sampled, kB
	peakAnon atomic.Int64 // highest RssAnon sampled, kB
	peakHeap atomic.Int64 // highest go_memstats_heap_inuse_bytes sampled
	peakSys  atomic.Int64 // highest go_memstats_sys_bytes sampled
}

func (s *smoke) run(ctx context.Context, bin, qemu, dataDir, memLimit string, idle time.Duration) int {
	if _, err := os.Stat(bin); err != nil {
		fmt.Fprintf(os.Stderr, "smoke: %v (make gateway builds it)\n", err)
		return 2
	}
	if qemu != "" {
		if _, err := exec.LookPath(qemu); err != nil {
			fmt.Fprintf(os.Stderr, "smoke: %s not found: apt-get install qemu-user-static\n", qemu)
			return 2
		}
	}
	keep := dataDir != ""
	if dataDir == "" {
		d, err := os.MkdirTemp("", "flownode-gateway-smoke-")
		if err != nil {
			fmt.Fprintf(os.Stderr, "smoke: %v\n", err)
			return 2
		}
		dataDir = filepath.Join(d, "data")
		defer os.RemoveAll(d)
	}
	logPath := filepath.Join(filepath.Dir(dataDir), "flownode-gateway-smoke.log")
	if keep {
		logPath = dataDir + ".log"
	}
	info, _ := os.Stat(bin)
	fmt.Printf("smoke: %s (%.1f MB) under %s; gateway profile, GOMEMLIMIT=%s; data in %s (%s)\n",
		bin, float64(info.Size())/1e6, or(qemu, "no emulator"), memLimit, dataDir, fsType(filepath.Dir(dataDir)))

	if err := s.start(ctx, bin, qemu, dataDir, memLimit, logPath); err != nil {
		fmt.Fprintf(os.Stderr, "smoke: start: %v\n", err)
		s.stop()
		printLog(logPath)
		return 2
	}
	pid := s.node.Process.Pid
	startRSS, _ := procStatusKB(pid, "VmRSS")
	fmt.Printf("smoke: node ready; RSS %.1f MB\n", mb(startRSS))

	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() { defer sampler.Done(); s.sample(pid, stopSampling) }()

	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "smoke: FAIL: "+format+"\n", args...)
		close(stopSampling)
		sampler.Wait()
		s.stop()
		printLog(logPath)
		return 1
	}

	s.makeReadings()
	t0 := time.Now()
	if err := s.put(ctx); err != nil {
		return fail("put: %v", err)
	}
	putTime := time.Since(t0)
	putHWM, _ := procStatusKB(pid, "VmHWM")
	fmt.Printf("smoke: put %d readings in %v: %.0f rec/s (%s); VmHWM %.1f MB\n",
		s.records, putTime.Round(time.Millisecond), float64(s.records)/putTime.Seconds(), s.mode, mb(putHWM))

	t0 = time.Now()
	if err := s.readBack(ctx); err != nil {
		return fail("read back: %v", err)
	}
	readTime := time.Since(t0)
	fmt.Printf("smoke: read back and matched %d records by txID in %v: %.0f rec/s (%s, %d readers)\n",
		s.records, readTime.Round(time.Millisecond), float64(s.records)/readTime.Seconds(), s.mode, s.readers)

	verified := "verify skipped (-verify=false)"
	if s.verifyAll {
		t0 = time.Now()
		rep, err := s.verify(ctx)
		if err != nil {
			return fail("verify: %v", err)
		}
		fmt.Printf("smoke: verify in %v: %s\n", time.Since(t0).Round(time.Millisecond), verdict(rep))
		verified = "verify valid"
	}
	if err := s.pointers(ctx); err != nil {
		return fail("%v", err)
	}

	close(stopSampling)
	sampler.Wait()
	peakKB, _ := procStatusKB(pid, "VmHWM")
	select {
	case <-time.After(idle):
	case <-ctx.Done():
		return fail("out of time before the idle wait ended")
	case <-s.exited:
		return fail("node exited: %v", s.exitErr)
	}
	steady := sampleRSS(pid)
	heap, sys, _ := s.heap(ctx)
	du, apparent := dirSize(dataDir)
	code := s.stop()
	if code != 0 {
		return fail("the node exited %d after SIGTERM (want 0)", code)
	}

	peakNote := "the node process"
	if s.mode == "emulated" {
		peakNote = "the qemu-user process: the emulator's own memory included"
	}
	fmt.Printf(`
gateway smoke test: %d readings (batches of %d from %d clients), all read back by txID and matched, %s
  binary                 %s: %.1f MB
  peak RSS (VmHWM)       %.1f MB   (%s)
  highest sampled RSS    %.1f MB during the load (anonymous %.1f MB highest)
  Go heap in use         %.1f MB highest sampled, %.1f MB after the load; Go runtime sys %.1f MB highest, %.1f MB after
  steady RSS             %.1f MB   (%v idle after the load; anonymous %.1f MB, file-backed %.1f MB)
  put                    %.0f rec/s (%s)
  read by txID           %.0f rec/s (%s, %d concurrent readers)
  data dir               %.1f MB on disk (%.1f MB apparent)
`, s.records, s.batch, s.clients, verified, bin, float64(info.Size())/1e6,
		mb(peakKB), peakNote, mb(s.peakRSS.Load()), mb(s.peakAnon.Load()),
		float64(max(s.peakHeap.Load(), heap))/(1<<20), float64(heap)/(1<<20), float64(max(s.peakSys.Load(), sys))/(1<<20), float64(sys)/(1<<20),
		mb(steady.rss), idle, mb(steady.anon), mb(steady.file),
		float64(s.records)/putTime.Seconds(), s.mode, float64(s.records)/readTime.Seconds(), s.mode, s.readers,
		float64(du)/1e6, float64(apparent)/1e6)
	return 0
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func mb(kb int64) float64 { return float64(kb) / 1024 }

// start runs the node and waits until it answers /readyz.
func (s *smoke) start(ctx context.Context, bin, qemu, dataDir, memLimit, logPath string) error {
	httpPort, err := freePort("tcp")
	if err != nil {
		return err
	}
	coapPort, err := freePort("udp")
	if err != nil {
		return err
	}
	s.base = "http://127.0.0.1:" + strconv.Itoa(httpPort)
	args := []string{"run", "--profile", "gateway", "--data", dataDir, "--log-level", "warn",
		"--http", "127.0.0.1:" + strconv.Itoa(httpPort), "--coap", "127.0.0.1:" + strconv.Itoa(coapPort), "--coaps", "127.0.0.1:0"}
	if s.debug != "" {
		args = append(args, "--debug", s.debug)
	}
	name := bin
	if qemu != "" {
		name, args = qemu, append([]string{bin}, args...)
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own copy
	s.node = exec.Command(name, args...)
	s.node.Env = append(os.Environ(), "GOMEMLIMIT="+memLimit)
	s.node.Stdout, s.node.Stderr = logf, logf
	s.node.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.node.Start(); err != nil {
		s.node = nil
		return err
	}
	s.exited = make(chan struct{})
	go func() { s.exitErr = s.node.Wait(); close(s.exited) }()
	s.client = &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		MaxIdleConns: 32, MaxIdleConnsPerHost: 32, DisableCompression: true}}

	deadline := time.Now().Add(2 * time.Minute) // qemu starts a 19 MB binary slowly
	for {
		resp, err := s.client.Get(s.base + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s.makeToken(ctx, bin, qemu, dataDir)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after 2 minutes (last: %v)", err)
		}
		select {
		case <-s.exited:
			return fmt.Errorf("node exited: %v", s.exitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// makeToken signs an admin token with the authority key of the node's
// one-node network (in its data dir): a gateway asks every client for a
// credential (--auth all), loopback included, so the smoke test writes and
// verifies as a real client would, through the emulated token check.
func (s *smoke) makeToken(ctx context.Context, bin, qemu, dataDir string) error {
	name, args := bin, []string{"token", "create", "--data", dataDir, "--thing", "*", "--scope", "admin", "--quiet"}
	if qemu != "" {
		name, args = qemu, append([]string{bin}, args...)
	}
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return fmt.Errorf("token create: %v", err)
	}
	s.token = strings.TrimSpace(string(out))
	return nil
}

// stop sends SIGTERM, waits up to 30 s, then kills the process group; it returns the
// node's exit code (-1 if it was killed or never started).
func (s *smoke) stop() int {
	if s.node == nil || s.node.Process == nil {
		return -1
	}
	select {
	case <-s.exited:
	default:
		s.node.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			fmt.Fprintln(os.Stderr, "smoke: node still running 30 s after SIGTERM; killing it")
			syscall.Kill(-s.node.Process.Pid, syscall.SIGKILL)
			<-s.exited
			return -1
		}
	}
	if s.node.ProcessState == nil {
		return -1
	}
	return s.node.ProcessState.ExitCode()
}

func freePort(network string) (int, error) {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// makeReadings builds every reading's thing and data: ~150-byte sensor readings
// spread over 20 things.
func (s *smoke) makeReadings() {
	n := s.records
	s.things, s.data = make([]string, n), make([][]byte, n)
	s.txIDs, s.keys = make([]string, n), make([]string, n)
	for i := range n {
		s.things[i] = fmt.Sprintf("gw-smoke-%02d", i%20)
		s.data[i] = fmt.Appendf(nil, `{"battery":3.%02d,"device":"sensor-%04d","humidity":%d.%d,"pressure":1013.25,"seq":%d,"status":"ok","temperature":%d.%02d}`,
			i%100, i%20, 30+i%50, i%10, i, 15+i%20, i%100)
	}
}

// put sends the readings in batches from s.clients goroutines and keeps each receipt.
func (s *smoke) put(ctx context.Context) error {
	nreq := (s.records + s.batch - 1) / s.batch
	var next atomic.Int64
	errs := make(chan error, s.clients)
	var wg sync.WaitGroup
	for range s.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				r := int(next.Add(1) - 1)
				if r >= nreq || ctx.Err() != nil {
					return
				}
				lo, hi := r*s.batch, min((r+1)*s.batch, s.records)
				items := make([]api.PutRequest, 0, hi-lo)
				for i := lo; i < hi; i++ {
					items = append(items, api.PutRequest{Thing: s.things[i], Data: s.data[i]})
				}
				body, _ := json.Marshal(items)
				var rcs []node.Receipt
				code, err := s.do(ctx, http.MethodPost, "/api/v1/records?batch=1", body, &rcs)
				if err == nil && code != http.StatusCreated {
					err = fmt.Errorf("status %d", code)
				}
				if err == nil && len(rcs) != hi-lo {
					err = fmt.Errorf("%d receipts for %d readings", len(rcs), hi-lo)
				}
				if err != nil {
					errs <- fmt.Errorf("batch %d (readings %d-%d): %v", r, lo, hi-1, err)
					next.Store(int64(nreq)) // the others stop too
					return
				}
				for j, rc := range rcs {
					if rc.TxID.IsZero() {
						errs <- fmt.Errorf("reading %d: receipt without a txID: %+v", lo+j, rc)
						next.Store(int64(nreq))
						return
					}
					s.txIDs[lo+j], s.keys[lo+j] = rc.TxID.String(), rc.Key.String()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	seen := make(map[string]int, s.records)
	for i, tx := range s.txIDs {
		if j, dup := seen[tx]; dup {
			return fmt.Errorf("readings %d and %d got the same txID %s", j, i, tx)
		}
		seen[tx] = i
	}
	return nil
}

// readBack gets every record by txID from s.readers goroutines and compares it with
// what was put. It stops at the first difference and reports up to 5 of them.
func (s *smoke) readBack(ctx context.Context) error {
	var next atomic.Int64
	var bad atomic.Int64
	var mu sync.Mutex
	var problems []string
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 5 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
		bad.Add(1)
	}
	var wg sync.WaitGroup
	for range s.readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for bad.Load() == 0 && ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= s.records {
					return
				}
				var rec ledger.Record
				code, err := s.do(ctx, http.MethodGet, "/api/v1/records/"+s.txIDs[i], nil, &rec)
				switch {
				case err != nil:
					report("reading %d (txID %s): %v", i, s.txIDs[i], err)
				case code != http.StatusOK:
					report("reading %d (txID %s): status %d", i, s.txIDs[i], code)
				case rec.TxID.String() != s.txIDs[i] || rec.Thing != s.things[i] || rec.Key.String() != s.keys[i] || rec.Type != ledger.RecordType:
					report("reading %d: got txID %s thing %q key %s type %q, want txID %s thing %q key %s type Reading",
						i, rec.TxID, rec.Thing, rec.Key, rec.Type, s.txIDs[i], s.things[i], s.keys[i])
				case !sameJSON(rec.Data, s.data[i]):
					report("reading %d (txID %s): data %s, want %s", i, s.txIDs[i], rec.Data, s.data[i])
				}
			}
		}()
	}
	wg.Wait()
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n  "))
	}
	return ctx.Err()
}

// sameJSON compares two JSON values as values: the node stores data in canonical
// (RFC 8785) form, which may differ in bytes from what was sent.
func sameJSON(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// verdict is a verify report in one line.
func verdict(r ledger.Report) string {
	if !r.Valid {
		return fmt.Sprintf("INVALID at %s: expected %s, actual %s", r.Where, r.Expected, r.Actual)
	}
	return fmt.Sprintf("valid: %d records (%d unsealed) in %d blocks of %d branches", r.Records, r.Unsealed, r.Blocks, r.Branches)
}

func (s *smoke) verify(ctx context.Context) (ledger.Report, error) {
	var rep ledger.Report
	// Verify checks every signature and block: minutes under emulation. The run's
	// deadline bounds it, not the client's per-request timeout.
	code, err := s.doWith(ctx, &http.Client{Transport: s.client.Transport}, http.MethodGet, "/api/v1/verify", nil, &rep)
	switch {
	case err != nil:
		return rep, err
	case code != http.StatusOK:
		return rep, fmt.Errorf("status %d", code)
	case !rep.Valid:
		return rep, errors.New(verdict(rep))
	case rep.Records != s.records:
		return rep, fmt.Errorf("verify counts %d records, %d were put: %s", rep.Records, s.records, verdict(rep))
	}
	return rep, nil
}

// pointers waits (at most a minute) for the node's background txID-pointer writes
// and fails if any could not be written: reads by txID still work without them, by
// searching, so the read-back alone would not notice.
func (s *smoke) pointers(ctx context.Context) error {
	var v struct {
		Stats struct {
			Records uint64 `json:"records"`
			Dist    struct {
				PtrPending   int64  `json:"ptrPending"`
				PointerFails uint64 `json:"pointerFails"`
			} `json:"dist"`
		} `json:"stats"`
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := s.do(ctx, http.MethodGet, "/api/v1/node", nil, &v); err != nil {
			return fmt.Errorf("node stats: %v", err)
		}
		d := v.Stats.Dist
		if d.PointerFails > 0 {
			return fmt.Errorf("%d txID pointers could not be written (stats.dist.pointerFails)", d.PointerFails)
		}
		if d.PtrPending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d txID pointers still pending a minute after the load", d.PtrPending)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// do makes one request and decodes a JSON answer into v (on 2xx).
func (s *smoke) do(ctx context.Context, method, path string, body []byte, v any) (int, error) {
	return s.doWith(ctx, s.client, method, path, body, v)
}

func (s *smoke) doWith(ctx context.Context, client *http.Client, method, path string, body []byte, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return resp.StatusCode, fmt.Errorf("answer is not the JSON expected: %v: %.200s", err, b)
	}
	return resp.StatusCode, nil
}

// sample records the highest RSS every 100 ms and the Go heap every 2 s until stop.
func (s *smoke) sample(pid int, stop <-chan struct{}) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastHeap := time.Now()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		r := sampleRSS(pid)
		s.peakRSS.Store(max(s.peakRSS.Load(), r.rss))
		s.peakAnon.Store(max(s.peakAnon.Load(), r.anon))
		if time.Since(lastHeap) >= 2*time.Second {
			lastHeap = time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if heap, sys, err := s.heap(ctx); err == nil {
				s.peakHeap.Store(max(s.peakHeap.Load(), heap))
				s.peakSys.Store(max(s.peakSys.Load(), sys))
			}
			cancel()
		}
	}
}

// heap reads the node's Go heap in use and the Go runtime's memory from the OS from
// /metrics.
func (s *smoke) heap(ctx context.Context) (inuse, sys int64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes":
			f, _ := strconv.ParseFloat(val, 64)
			inuse = int64(f)
		case "go_memstats_sys_bytes":
			f, _ := strconv.ParseFloat(val, 64)
			sys = int64(f)
		}
	}
	if inuse == 0 {
		return 0, 0, errors.New("no go_memstats_heap_inuse_bytes in /metrics")
	}
	return inuse, sys, sc.Err()
}

// procStatusKB reads a "VmXXX:  N kB" field of /proc/PID/status. Under qemu-user the
// emulated program runs in the emulator's process, so this is the pair's memory.
func procStatusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

type rssSample struct{ rss, anon, file int64 }

func sampleRSS(pid int) rssSample {
	var r rssSample
	r.rss, _ = procStatusKB(pid, "VmRSS")
	r.anon, _ = procStatusKB(pid, "RssAnon")
	r.file, _ = procStatusKB(pid, "RssFile")
	return r
}

// dirSize returns the bytes dir's files take on disk and their apparent size (Badger's
// value-log files are sparse).
func dirSize(dir string) (disk, apparent int64) {
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			apparent += fi.Size()
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				disk += st.Blocks * 512
			}
		}
		return nil
	})
	return disk, apparent
}

// fsType names the file system dir is on, for the report (Badger needs ext4/f2fs or
// tmpfs, not JFFS2).
func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "file system unknown"
	}
	switch uint32(st.Type) {
	case 0xEF53:
		return "ext4"
	case 0x01021994:
		return "tmpfs"
	case 0xF2F52010:
		return "f2fs"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x794C7630:
		return "overlayfs"
	}
	return fmt.Sprintf("file system 0x%x", uint32(st.Type))
}

// printLog shows the end of the node's log after a failure.
func printLog(path string) {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	fmt.Fprintf(os.Stderr, "--- end of the node's log (%s) ---\n%s\n", path, b)
}
