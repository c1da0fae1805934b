package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The gateway profile's memory budget under each abuse below (docs/api.md,
// "Limits"): the node's peak RssAnon (heap, stacks, buffers: the memory the
// kernel cannot take back from it; the Go heap limit is 24 MiB) stays
// within 48 MB. Its private memory (Private_Clean + Private_Dirty of
// smaps_rollup) is reported beside it: it also counts the store's mapped
// files, which grow with the data stored, whoever sent it, and which the
// kernel reclaims as page cache.
const gatewayAnonBudgetMB = 48

// abuseFigures is what one abuse did to a gateway node.
type abuseFigures struct {
	name        string
	peakMB      float64       // peak private memory during the abuse
	peakAnonMB  float64       // peak RssAnon: the Go heap, stacks and buffers
	startMB     float64       // private memory when the abuse began
	startAnonMB float64       // RssAnon when the abuse began
	worstHealth time.Duration // slowest /healthz (a new connection each time)
	healthFail  int           // /healthz polls that failed or took over 5 s
	putsOK      int           // honest puts stored
	putsFailed  int           // honest puts refused or failed
	worstPut    time.Duration
	outcome     string // what the abusive clients got
}

// abuses are the four abuses of issue 15, each bounded in time.
var abuses = []struct {
	name, short string
	prepare     func(tb testing.TB, n *nodeProc) // before the watch starts
	run         func(tb testing.TB, n *nodeProc) string
}{
	{"30 concurrent maximal batches", "batches", nil, abuseBatches},
	{"5000 trickling bodies", "trickle", nil, abuseTrickle},
	{"10000 idle connections", "idle", nil, abuseIdle},
	{"6 concurrent verify calls", "verify", preloadVerify, abuseVerify},
}

// abuseRun starts a gateway node and runs the abuse on it while /healthz is
// polled every 100 ms and an honest device puts a reading every 250 ms. It
// fails tb only when the harness itself cannot run.
func abuseRun(tb testing.TB, i int) abuseFigures {
	tb.Helper()
	a := abuses[i]
	// --auth loopback lets the test's clients in without a token, so the
	// abuses are those of a client that holds credentials (a compromised
	// device, an admin's script): the worst case, since a client without
	// one is refused after its body was read within the same limits.
	n := startNode(tb, tb.TempDir(), "gateway", "--log-level", "error", "--auth", "loopback")
	if !waitFor(30*time.Second, 100*time.Millisecond, func() bool {
		r, err := tryHTTP(httpClient, http.MethodGet, n.URL+"/readyz", "", nil)
		return err == nil && r.Code == http.StatusOK
	}) {
		tb.Fatal("the gateway node was not ready within 30 s")
	}
	if a.prepare != nil {
		a.prepare(tb, n)
	}
	f := watch(tb, n, a.name, a.run)
	n.Stop()
	return f
}

// preloadVerify gives verify something to read: 20,000 readings.
func preloadVerify(tb testing.TB, n *nodeProc) {
	if r := ingest(tb, n.URL, 4, 500, 20000, "preload"); r.records != 20000 {
		tb.Fatalf("preload: %d of 20000 readings stored", r.records)
	}
	time.Sleep(3 * time.Second) // the figure is "settled", not a synchronisation

}

// watch runs one abuse while sampling the node's private memory (every
// 50 ms), polling /healthz (every 100 ms, a new connection each time: a
// newcomer must get in) and putting honest readings (every 250 ms).
func watch(tb testing.TB, n *nodeProc, name string, abuse func(testing.TB, *nodeProc) string) abuseFigures {
	f := abuseFigures{name: name}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	every := func(d time.Duration, fn func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(d)
			defer t.Stop()
			for {
				fn()
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
	}
	pid := n.Pid()
	if kb, err := readPrivateKB(pid); err == nil {
		f.startMB = float64(kb) / 1024
	}
	if kb, err := procStatusKB(pid, "RssAnon"); err == nil {
		f.startAnonMB = float64(kb) / 1024
	}
	every(50*time.Millisecond, func() {
		kb, err := readPrivateKB(pid)
		anon, err2 := procStatusKB(pid, "RssAnon")
		mu.Lock()
		defer mu.Unlock()
		if err == nil {
			f.peakMB = max(f.peakMB, float64(kb)/1024)
		}
		if err2 == nil {
			f.peakAnonMB = max(f.peakAnonMB, float64(anon)/1024)
		}
	})
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	every(100*time.Millisecond, func() {
		t0 := time.Now()
		r, err := tryHTTP(fresh, http.MethodGet, n.URL+"/healthz", "", nil)
		d := time.Since(t0)
		mu.Lock()
		defer mu.Unlock()
		if err != nil || r.Code != http.StatusOK {
			f.healthFail++
			d = max(d, 5*time.Second)
		}
		f.worstHealth = max(f.worstHealth, d)
	})
	// The honest device keeps its connection and names each reading with
	// an Idempotency-Key, so that its client may resend a reading whose
	// connection the node closed as idle (Go's transport does).
	device := &http.Client{Timeout: 30 * time.Second}
	var seq atomic.Int64
	every(250*time.Millisecond, func() {
		i := seq.Add(1)
		body := fmt.Sprintf(`{"thing":"honest-meter","data":{"seq":%d,"kWh":1.5}}`, i)
		req, _ := http.NewRequest(http.MethodPost, n.URL+"/api/v1/records", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", fmt.Sprintf("%s/%d", name, i))
		t0 := time.Now()
		resp, err := device.Do(req)
		code := 0
		var answer []byte
		if err == nil {
			code = resp.StatusCode
			answer, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		d := time.Since(t0)
		mu.Lock()
		defer mu.Unlock()
		if err != nil || code != http.StatusCreated {
			f.putsFailed++
			tb.Logf("%s: an honest put failed: %v %d %s", name, err, code, trunc(answer))
			return
		}
		f.putsOK++
		f.worstPut = max(f.worstPut, d)
	})
	f.outcome = abuse(tb, n)
	time.Sleep(time.Second) // the watchers see the node settle
	close(stop)
	wg.Wait()
	return f
}

func readPrivateKB(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	var kb int64
	for _, l := range strings.Split(string(raw), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && (f[0] == "Private_Clean:" || f[0] == "Private_Dirty:") {
			var v int64
			fmt.Sscan(f[1], &v)
			kb += v
		}
	}
	return kb, nil
}

// statusCounts tallies answers by status (0: no answer).
type statusCounts struct {
	mu sync.Mutex
	m  map[int]int
}

func (s *statusCounts) add(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[int]int{}
	}
	s.m[code]++
}

func (s *statusCounts) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for _, c := range []int{0, 200, 201, 408, 413, 429, 503} {
		if s.m[c] > 0 {
			parts = append(parts, fmt.Sprintf("%d×%d", s.m[c], c))
		}
	}
	return strings.Join(parts, " ")
}

// maximalBatch is a batch of 1000 readings (the gateway's MaxBatch) in just
// under 1 MiB (its MaxBodyBytes).
func maximalBatch(client int) []byte {
	pad := strings.Repeat("x", 990)
	var sb strings.Builder
	sb.WriteByte('[')
	for i := range 1000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"thing":"abuser-%02d","data":{"i":%d,"pad":"%s"}}`, client, i, pad)
	}
	sb.WriteByte(']')
	if sb.Len() > 1<<20 {
		panic(fmt.Sprintf("the batch has %d bytes, over 1 MiB", sb.Len()))
	}
	return []byte(sb.String())
}

// abuseBatches: 30 clients each send a maximal batch at the same moment,
// three rounds (the rounds wait for every answer).
func abuseBatches(tb testing.TB, n *nodeProc) string {
	var codes statusCounts
	bodies := make([][]byte, 30)
	for c := range bodies {
		bodies[c] = maximalBatch(c)
	}
	for range 3 {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for _, body := range bodies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
				<-start
				r, err := tryHTTP(cl, http.MethodPost, n.URL+"/api/v1/records?batch=1", "application/json", body)
				if err != nil {
					codes.add(0)
					return
				}
				codes.add(r.Code)
			}()
		}
		close(start)
		wg.Wait()
	}
	return "batches answered " + codes.String()
}

// dialMany opens count connections to addr from 8 dialers, at most rate a
// second (a held-connection abuse, not a SYN flood: that one is the
// kernel's, with SYN cookies), and returns those that could be opened and
// pass each.
func dialMany(addr string, count, rate int, each func(c net.Conn) bool) []net.Conn {
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	var next atomic.Int64
	start := time.Now()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 5 * time.Second}
			for {
				i := next.Add(1)
				if i > int64(count) {
					return
				}
				time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
				c, err := d.Dial("tcp", addr)
				if err != nil {
					continue
				}
				if each != nil && !each(c) {
					c.Close()
					continue
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return conns
}

// openCount is how many of conns the server has not closed: a read that
// waits (rather than seeing EOF, a reset or an answer) means open.
func openCount(conns []net.Conn) int {
	var open atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < len(conns); i += 500 {
		part := conns[i:min(i+500, len(conns))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 512)
			for _, c := range part {
				c.SetReadDeadline(time.Now().Add(time.Millisecond))
				_, err := c.Read(buf)
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					open.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(open.Load())
}

// abuseTrickle: 5000 connections (opened in 2 s) each send a put's header
// announcing a 1 MB body, then one byte of it a second, for 13 s (more than
// the gateway's 10 s body timeout).
func abuseTrickle(tb testing.TB, n *nodeProc) string {
	head := "POST /api/v1/records?batch=1 HTTP/1.1\r\nHost: " + n.Addr + "\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n["
	conns := dialMany(n.Addr, 5000, 2500, func(c net.Conn) bool {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		_, err := io.WriteString(c, head)
		return err == nil
	})
	opened := len(conns)
	end := time.Now().Add(13 * time.Second)
	for time.Now().Before(end) {
		time.Sleep(time.Second)
		for _, c := range conns {
			c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
			c.Write([]byte(" ")) // JSON whitespace: the body never ends, never fails
		}
	}
	open := openCount(conns)
	for _, c := range conns {
		c.Close()
	}
	return fmt.Sprintf("%d of 5000 trickling connections opened; %d still open after 13 s", opened, open)
}

// abuseIdle: 10000 connections (opened in 4 s) that send nothing, held 5 s.
func abuseIdle(tb testing.TB, n *nodeProc) string {
	conns := dialMany(n.Addr, 10000, 2500, nil)
	time.Sleep(5 * time.Second)
	open := openCount(conns)
	for _, c := range conns {
		c.Close()
	}
	return fmt.Sprintf("%d of 10000 idle connections opened; %d still open after 5 s", len(conns), open)
}

// abuseVerify: six clients call GET /api/v1/verify at once, again and again,
// for 6 s.
func abuseVerify(tb testing.TB, n *nodeProc) string {
	var codes statusCounts
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &http.Client{Timeout: time.Minute}
			for ctx.Err() == nil {
				r, err := tryHTTP(cl, http.MethodGet, n.URL+"/api/v1/verify", "", nil)
				if err != nil {
					codes.add(0)
					continue
				}
				codes.add(r.Code)
			}
		}()
	}
	wg.Wait()
	return "verify calls answered " + codes.String()
}

func logFigures(tb testing.TB, figs []abuseFigures) {
	for _, f := range figs {
		tb.Logf("%-30s peak private %5.1f MB (RssAnon %5.1f MB), from %.1f (%.1f) MB; /healthz worst %v (%d failed); honest puts %d stored, %d failed, worst %v; %s",
			f.name, f.peakMB, f.peakAnonMB, f.startMB, f.startAnonMB, f.worstHealth.Round(time.Millisecond), f.healthFail, f.putsOK, f.putsFailed, f.worstPut.Round(time.Millisecond), f.outcome)
	}
}

// TestGatewayAbuse: a gateway-profile node under each abuse of issue 15
// stays within its memory budget, answers /healthz within a second
// throughout, and keeps storing an honest device's readings.
func TestGatewayAbuse(t *testing.T) {
	if testing.Short() {
		t.Skip("about a minute of abuse; skipped with -short")
	}
	if _, err := os.Stat("/proc/self/smaps_rollup"); err != nil {
		t.Skip("needs /proc/PID/smaps_rollup")
	}
	for i, a := range abuses {
		t.Run(a.short, func(t *testing.T) {
			f := abuseRun(t, i)
			logFigures(t, []abuseFigures{f})
			if f.peakAnonMB > gatewayAnonBudgetMB {
				t.Errorf("%s: peak RssAnon %.1f MB, over the gateway's %d MB budget", f.name, f.peakAnonMB, gatewayAnonBudgetMB)
			}
			if f.healthFail > 0 || f.worstHealth > time.Second {
				t.Errorf("%s: /healthz took up to %v (%d polls failed), want within 1 s", f.name, f.worstHealth, f.healthFail)
			}
			if f.putsFailed > 0 || f.putsOK == 0 {
				t.Errorf("%s: honest puts %d stored, %d failed; want all stored", f.name, f.putsOK, f.putsFailed)
			}
		})
	}
}

// BenchmarkGatewayAbuse prints the gateway node's peak private memory and
// RssAnon under each abuse (the rest of the figures in the log). Run it
// against an older binary with FLOWNODE_TEST_BIN for the "before" figures;
// it never fails on a figure.
func BenchmarkGatewayAbuse(b *testing.B) {
	if _, err := os.Stat("/proc/self/smaps_rollup"); err != nil {
		b.Skip("needs /proc/PID/smaps_rollup")
	}
	for i, a := range abuses {
		b.Run(a.short, func(b *testing.B) {
			for range b.N {
				f := abuseRun(b, i)
				logFigures(b, []abuseFigures{f})
				b.ReportMetric(f.peakMB, "peak-private-MB")
				b.ReportMetric(f.peakAnonMB, "peak-anon-MB")
				b.ReportMetric(float64(f.worstHealth.Milliseconds()), "healthz-worst-ms")
				b.ReportMetric(float64(f.putsFailed), "honest-puts-failed")
			}
		})
	}
}
