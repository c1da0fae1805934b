package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/flownode/flownode/audit"
)

// BenchmarkAudit: flownode audit of a ring of 5 processes holding 20 000
// records per branch (FLOWNODE_BENCH_AUDIT_RECORDS sets the total; 100 000 by
// default), and the offline re-check of its file (verify --merged). The audit
// runs in this process (package audit, as the CLI does) against one node; it
// reads every branch, every block's records and checks every signature.
func BenchmarkAudit(b *testing.B) {
	total := 100000
	if v, err := strconv.Atoi(os.Getenv("FLOWNODE_BENCH_AUDIT_RECORDS")); err == nil && v > 0 {
		total = v
	}
	const size = 5
	first := startNode(b, filepath.Join(b.TempDir(), "n0"), "local", "--log-level", "warn")
	nodes := []*nodeProc{first}
	for i := 1; i < size; i++ {
		nodes = append(nodes, startNode(b, filepath.Join(b.TempDir(), fmt.Sprint("n", i)), "local", "--log-level", "warn", "--join", first.Addr))
	}
	if !waitFor(60*time.Second, 200*time.Millisecond, func() bool { return ringIdealErr(b, nodes) == "" }) {
		b.Fatalf("ring of %d not formed: %s", size, ringIdealErr(b, nodes))
	}
	t0 := time.Now()
	var wg sync.WaitGroup
	for i, p := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ingest(b, p.URL, 2, 500, total/size, fmt.Sprint("audit", i))
		}()
	}
	wg.Wait()
	built := time.Since(t0)
	to := waitSealed(b, nodes)

	file := filepath.Join(b.TempDir(), "audit.jsonl")
	var rep *audit.Report
	var auditTime, checkTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := os.Create(file)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		rep, err = audit.Run(context.Background(), audit.Config{Node: nodes[i%size].URL, To: to, Out: f})
		auditTime += time.Since(start)
		f.Close()
		if err != nil || !rep.Valid || !rep.Complete() || rep.Records != total {
			b.Fatalf("audit: %v %+v, want valid and complete with %d records", err, rep, total)
		}
		start = time.Now()
		f, _ = os.Open(file)
		chk, err := audit.Check(f)
		checkTime += time.Since(start)
		f.Close()
		if err != nil || !chk.Valid || chk.Head != rep.Head {
			b.Fatalf("verify --merged: %v %+v", err, chk)
		}
	}
	b.StopTimer()
	st, _ := os.Stat(file)
	n := float64(b.N)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(auditTime.Seconds()/n, "audit-s")
	b.ReportMetric(checkTime.Seconds()/n, "check-s")
	b.ReportMetric(float64(rep.Records)/(auditTime.Seconds()/n), "audit-rec/s")
	b.Logf("%d nodes, %d records (%d per branch) put in %v; audit: %d blocks, %d records in %v (%.0f rec/s), file %.1f MB; verify --merged %v",
		size, total, total/size, built.Round(time.Millisecond), rep.Blocks, rep.Records, (auditTime / time.Duration(b.N)).Round(time.Millisecond),
		float64(rep.Records)/(auditTime.Seconds()/n), float64(st.Size())/1e6, (checkTime / time.Duration(b.N)).Round(time.Millisecond))
}
