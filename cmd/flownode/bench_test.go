package main

// Benchmarks of a real node process over HTTP on loopback. They print figures and never
// fail on timing (only on wrong answers):
//
//	go test -run '^$' -bench . -benchtime 1x ./cmd/flownode/
//
// Client and node share the machine's cores, so the figures are end-to-end on one box.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flownode/flownode/api"
	"github.com/flownode/flownode/ledger"
)

// benchReading is a gateway-like sensor reading of about 150 bytes.
func benchReading(client, i int) string {
	return fmt.Sprintf(`{"battery":3.71,"device":"sensor-%04d","humidity":%d.%d,"pressure":1013.25,"seq":%d,"status":"ok","temperature":%d.%02d}`,
		client, 30+i%50, i%10, i, 15+i%20, i%100)
}

// loadResult is what one load run measured.
type loadResult struct {
	records   int
	requests  int
	elapsed   time.Duration
	latencies []time.Duration // one per request
}

func (r loadResult) rate() float64 { return float64(r.records) / r.elapsed.Seconds() }

func (r loadResult) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(p * float64(len(r.latencies)-1))
	return r.latencies[i]
}

// ingest puts total records into the node at base with the given number of concurrent
// clients, singly (batch 0) or in batches, and measures each request. Bodies are built
// before the clock starts. Every request must get its 201 with the right number of
// receipts.
func ingest(tb testing.TB, base string, clients, batch, total int, tag string) loadResult {
	tb.Helper()
	per := max(batch, 1)
	nreq := (total + per - 1) / per
	bodies := make([][]byte, nreq)
	counts := make([]int, nreq)
	for i := range bodies {
		k := min(per, total-i*per)
		counts[i] = k
		if batch == 0 {
			bodies[i] = []byte(fmt.Sprintf(`{"thing":"%s-%d","data":%s}`, tag, i%clients, benchReading(i%clients, i)))
			continue
		}
		var sb strings.Builder
		sb.WriteByte('[')
		for j := 0; j < k; j++ {
			if j > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"thing":"%s-%d","data":%s}`, tag, i%clients, benchReading(i%clients, i*per+j))
		}
		sb.WriteByte(']')
		bodies[i] = []byte(sb.String())
	}
	url := base + "/api/v1/records"
	if batch > 0 {
		url += "?batch=1"
	}
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		MaxIdleConns: clients * 2, MaxIdleConnsPerHost: clients * 2, DisableCompression: true}}
	defer client.CloseIdleConnections()

	lat := make([]time.Duration, nreq)
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= nreq {
					return
				}
				t0 := time.Now()
				r, err := tryHTTP(client, http.MethodPost, url, "application/json", bodies[i])
				lat[i] = time.Since(t0)
				if err != nil || r.Code != http.StatusCreated {
					failed.Store(true)
					tb.Errorf("put %d: %v %d %s", i, err, r.Code, trunc(r.Body))
					return
				}
				if batch > 0 {
					var rcs []json.RawMessage
					if err := json.Unmarshal(r.Body, &rcs); err != nil || len(rcs) != counts[i] {
						failed.Store(true)
						tb.Errorf("put %d: %d receipts for %d readings (%v)", i, len(rcs), counts[i], err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	res := loadResult{records: total, requests: nreq, elapsed: time.Since(start), latencies: lat}
	if failed.Load() {
		tb.FailNow()
	}
	sort.Slice(res.latencies, func(i, j int) bool { return res.latencies[i] < res.latencies[j] })
	return res
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkIngest: durable records per second over HTTP (a 201 means synced to disk),
// for single puts from 1 and 32 clients and for batches, each on a fresh laptop node.
func BenchmarkIngest(b *testing.B) {
	cases := []struct {
		name           string
		clients, batch int
		records        int
	}{
		{"single/clients=1", 1, 0, 3000},
		{"single/clients=32", 32, 0, 3000},
		{"batch=500/clients=4", 4, 500, 20000},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			args := []string{"--log-level", "warn"}
			profDir := os.Getenv("FLOWNODE_BENCH_CPUPROFILE")
			var debugAddr string
			if profDir != "" {
				debugAddr = freeLoopbackAddr(b)
				args = append(args, "--debug", debugAddr)
			}
			n := startNode(b, b.TempDir(), "laptop", args...)
			if profDir != "" {
				profileNode(b, debugAddr, filepath.Join(profDir, strings.NewReplacer("/", "_", "=", "").Replace(c.name)+".cpu"),
					func(tag string) { ingest(b, n.URL, c.clients, c.batch, c.records, tag) })
			}
			before := nodeStats(b, n.URL).Records
			var total loadResult
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := ingest(b, n.URL, c.clients, c.batch, c.records, fmt.Sprintf("ingest%d", i))
				total.records += r.records
				total.requests += r.requests
				total.elapsed += r.elapsed
				total.latencies = append(total.latencies, r.latencies...)
			}
			b.StopTimer()
			sort.Slice(total.latencies, func(i, j int) bool { return total.latencies[i] < total.latencies[j] })
			info := nodeStats(b, n.URL)
			if info.Records-before != uint64(total.records) {
				b.Fatalf("node counts %d new records, %d were acknowledged", info.Records-before, total.records)
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(total.rate(), "rec/s")
			b.ReportMetric(ms(total.percentile(0.50)), "p50-ms")
			b.ReportMetric(ms(total.percentile(0.99)), "p99-ms")
			b.Logf("%s: %d records in %d requests in %v: %.0f rec/s; per request p50 %.2f ms, p99 %.2f ms, max %.2f ms; %d store syncs (mean group %.1f writes)",
				c.name, total.records, total.requests, total.elapsed.Round(time.Millisecond), total.rate(),
				ms(total.percentile(0.50)), ms(total.percentile(0.99)), ms(total.percentile(1)), info.StoreSyncs, info.MeanGroupSize)
		})
	}
}

// nodeStats GETs the stats object of GET /api/v1/node.
func nodeStats(tb testing.TB, base string) api.NodeStats {
	tb.Helper()
	return getNode(tb, base).Stats
}

// BenchmarkVerify: the full verification of a ledger of 20,000 records, live (GET
// /api/v1/verify) and offline (flownode verify --data, process start included).
func BenchmarkVerify(b *testing.B) {
	const records = 20000
	dir := b.TempDir()
	n := startNode(b, dir, "laptop", "--log-level", "warn")
	ingest(b, n.URL, 4, 500, records, "verify")
	var rep ledger.Report
	if !waitFor(30*time.Second, 50*time.Millisecond, func() bool { rep = getVerify(b, n.URL); return rep.Unsealed == 0 }) {
		b.Logf("records still unsealed after 30 s: %+v", rep)
	}
	b.ResetTimer()
	var live time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		rep = getVerify(b, n.URL)
		live += time.Since(t0)
		if !rep.Valid || rep.Records != records {
			b.Fatalf("verify: %+v, want valid with %d records", rep, records)
		}
	}
	b.StopTimer()
	if code := n.Stop(); code != 0 {
		b.Fatalf("SIGTERM: exit %d", code)
	}
	t0 := time.Now()
	res := runCLI(b, nil, "verify", "--data", dir)
	offline := time.Since(t0)
	if recs, _ := parseVerifyOutput(b, res); recs != records {
		b.Fatalf("verify --data: %d records, want %d", recs, records)
	}
	liveRate := float64(records*b.N) / live.Seconds()
	offRate := float64(records) / offline.Seconds()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(liveRate, "rec/s")
	b.ReportMetric(offRate, "offline-rec/s")
	b.Logf("verify of %d records in %d blocks: live %v per run (%.0f rec/s); offline flownode verify --data %v (%.0f rec/s, process start included)",
		records, rep.Blocks, (live / time.Duration(b.N)).Round(time.Millisecond), liveRate, offline.Round(time.Millisecond), offRate)
}

// procStatusKB reads a "VmXXX:  N kB" field of /proc/PID/status.
func procStatusKB(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// BenchmarkGatewayRSS: a gateway-profile node (low-memory Badger, GOMEMLIMIT 24 MiB)
// takes 100,000 records in batches of 500; reports its peak RSS (VmHWM), its RSS 3 s
// after the load, and the ingest rate. Skipped with -short.
func BenchmarkGatewayRSS(b *testing.B) {
	if testing.Short() {
		b.Skip("loads 100,000 records; skipped with -short")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("needs /proc/PID/status")
	}
	const (
		records = 100000
		batch   = 500 // the gateway profile allows 1000 and a 1 MiB body
		clients = 2
	)
	var peakKB, steadyKB, steadyAnonKB, steadyFileKB, startKB int64
	var sampled rssSample
	var rate float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		n := startNode(b, b.TempDir(), "gateway", "--log-level", "warn", "--auth", "loopback") // the token check is BenchmarkTokenCheck (access)
		kb, err := procStatusKB(n.Pid(), "VmRSS")
		if err != nil {
			b.Fatal(err)
		}
		startKB = kb
		// Sample RSS during the load too: VmHWM counts the store's mapped file pages,
		// which the kernel can drop, as well as anonymous memory, which it cannot.
		stopSampling := make(chan struct{})
		samples := make(chan rssSample)
		go func() {
			var hi rssSample
			tk := time.NewTicker(50 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-stopSampling:
					samples <- hi
					return
				case <-tk.C:
					hi = hi.max(sampleRSS(n.Pid()))
				}
			}
		}()
		b.StartTimer()
		r := ingest(b, n.URL, clients, batch, records, fmt.Sprintf("gw%d", i))
		b.StopTimer()
		close(stopSampling)
		sampled = <-samples
		rate = r.rate()
		settle := time.Now().Add(3 * time.Second)
		if info := nodeStats(b, n.URL); info.Records != records {
			b.Fatalf("node counts %d records, want %d", info.Records, records)
		}
		time.Sleep(time.Until(settle)) // the measurement is "3 s after the load", not a synchronisation
		steady := sampleRSS(n.Pid())
		steadyKB, steadyAnonKB, steadyFileKB = steady.rss, steady.anon, steady.file
		if peakKB, err = procStatusKB(n.Pid(), "VmHWM"); err != nil {
			b.Fatal(err)
		}
		if rep := getVerify(b, n.URL); !rep.Valid || rep.Records != records {
			b.Fatalf("verify after the load: %+v", rep)
		}
		if code := n.Stop(); code != 0 {
			b.Fatalf("SIGTERM: exit %d", code)
		}
	}
	mb := func(kb int64) float64 { return float64(kb) / 1024 }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(mb(peakKB), "peak-MB")
	b.ReportMetric(mb(steadyKB), "steady-MB")
	b.ReportMetric(mb(sampled.anon), "peak-anon-MB")
	b.ReportMetric(rate, "rec/s")
	b.Logf("gateway profile, %d records in batches of %d from %d clients: %.0f rec/s; RSS at start %.1f MB, peak (VmHWM) %.1f MB; "+
		"highest sampled during the load: RSS %.1f MB, anonymous %.1f MB, file-backed %.1f MB; 3 s after the load: RSS %.1f MB (anonymous %.1f MB, file-backed %.1f MB)",
		records, batch, clients, rate, mb(startKB), mb(peakKB), mb(sampled.rss), mb(sampled.anon), mb(sampled.file),
		mb(steadyKB), mb(steadyAnonKB), mb(steadyFileKB))
}

// rssSample is one reading of a process's resident memory, in kB.
type rssSample struct{ rss, anon, file int64 }

func (a rssSample) max(b rssSample) rssSample {
	return rssSample{max(a.rss, b.rss), max(a.anon, b.anon), max(a.file, b.file)}
}

// sampleRSS reads VmRSS, RssAnon and RssFile; a field it cannot read is 0.
func sampleRSS(pid int) rssSample {
	var s rssSample
	s.rss, _ = procStatusKB(pid, "VmRSS")
	s.anon, _ = procStatusKB(pid, "RssAnon")
	s.file, _ = procStatusKB(pid, "RssFile")
	return s
}

// freeLoopbackAddr returns a loopback address with a port free a moment ago.
func freeLoopbackAddr(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// profileNode writes to file a 10 s CPU profile of the node serving pprof at
// debugAddr while load runs again and again (FLOWNODE_BENCH_CPUPROFILE=DIR: the
// profile of the node process, not of the benchmark's client). The load's own
// figures are discarded: the timed runs come after.
func profileNode(tb testing.TB, debugAddr, file string, load func(tag string)) {
	tb.Helper()
	type result struct {
		body []byte
		err  error
	}
	got := make(chan result, 1)
	go func() {
		r, err := http.Get("http://" + debugAddr + "/debug/pprof/profile?seconds=10")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer r.Body.Close()
		body, err := io.ReadAll(r.Body)
		got <- result{body, err}
	}()
	for i := 0; ; i++ {
		select {
		case r := <-got:
			if r.err != nil {
				tb.Fatalf("cpu profile: %v", r.err)
			}
			if err := os.WriteFile(file, r.body, 0o644); err != nil {
				tb.Fatal(err)
			}
			tb.Logf("node CPU profile: %s", file)
			return
		default:
			load(fmt.Sprintf("profile%d", i))
		}
	}
}
