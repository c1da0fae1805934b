package main

import (
	"context"
	"fmt"
	"net/http"
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
	put := buildAuditRing(b, nodes, total, 2*time.Minute)
	built := time.Since(t0)
	if put < total {
		b.Logf("only %d of %d records put within the 2-minute build budget: the figures below are for %d and scale linearly (one request per block, one signature check per record)", put, total, put)
	}
	to := waitSealed(b, nodes)

	// What the nodes spend without an audit (mining, witnessing, repair
	// rounds), to tell the audit's own cost from it.
	idle0, idleStart := procsCPU(nodes), time.Now()
	time.Sleep(3 * time.Second)
	idleRate := float64(procsCPU(nodes)-idle0) / float64(time.Since(idleStart))
	file := filepath.Join(b.TempDir(), "audit.jsonl")
	var rep *audit.Report
	var auditTime, checkTime, clientCPU, nodesCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := os.Create(file)
		if err != nil {
			b.Fatal(err)
		}
		start, cpu0, nodes0 := time.Now(), selfCPU(), procsCPU(nodes)
		rep, err = audit.Run(context.Background(), audit.Config{Node: nodes[i%size].URL, To: to, Out: f})
		auditTime += time.Since(start)
		clientCPU += selfCPU() - cpu0
		nodesCPU += procsCPU(nodes) - nodes0
		f.Close()
		if err != nil || !rep.Valid || !rep.Complete() || rep.Records < put {
			b.Fatalf("audit: %v %+v, want valid and complete with at least the %d records acknowledged", err, rep, put)
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
	b.Logf("CPU during the audit: %v in the auditor (%.0f µs per record), %v in the 5 nodes (serving it, and their own work: they used %.0f ms/s just before it); load average %s",
		(clientCPU / time.Duration(b.N)).Round(time.Millisecond), float64(clientCPU/time.Duration(b.N))/1e3/float64(rep.Records),
		(nodesCPU / time.Duration(b.N)).Round(time.Millisecond), idleRate*1e3, loadAverage())
	perRecord := auditTime.Seconds() / n / float64(rep.Records)
	b.Logf("%d nodes, %d records (%d per branch) put in %v; audit: %d blocks, %d records in %v (%.0f rec/s; %.1f s for %d), file %.1f MB; verify --merged %v",
		size, put, put/size, built.Round(time.Millisecond), rep.Blocks, rep.Records, (auditTime / time.Duration(b.N)).Round(time.Millisecond),
		1/perRecord, perRecord*float64(total), total, float64(st.Size())/1e6, (checkTime / time.Duration(b.N)).Round(time.Millisecond))
}

// buildAuditRing puts up to total records through the ring's nodes in turn, in
// batches of 500 from 2 clients, until total or the budget: a shared 2-core
// machine cannot always take 100 000 in a few minutes. A batch refused with
// 503 (an owner could not store its part in time) is retried after a pause;
// the parts other owners stored stay, so the ring may hold more records than
// the acknowledged count it returns.
func buildAuditRing(tb testing.TB, nodes []*nodeProc, total int, budget time.Duration) int {
	const batch, clients = 500, 2
	deadline := time.Now().Add(budget)
	var mu sync.Mutex
	put, next := 0, 0
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i*batch >= total || time.Now().After(deadline) {
					return
				}
				bodies := make([]string, min(batch, total-i*batch))
				for j := range bodies {
					bodies[j] = fmt.Sprintf(`{"thing":"audit-%d","data":%s}`, i%16, benchReading(i%16, i*batch+j))
				}
				for try := 0; ; try++ {
					rcs, code, msg := dlPut(nodes[i%len(nodes)], bodies, true, false)
					if rcs != nil {
						mu.Lock()
						put += len(rcs)
						mu.Unlock()
						break
					}
					if code != http.StatusServiceUnavailable || try == 5 {
						tb.Errorf("batch %d: %d %s", i, code, msg)
						return
					}
					time.Sleep(time.Second)
				}
			}
		}()
	}
	wg.Wait()
	if tb.Failed() {
		tb.FailNow()
	}
	return put
}
