package main

import (
	"bufio"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// metric reads one unlabelled counter or gauge from a node's /metrics.
func metric(tb testing.TB, base, name string) float64 {
	tb.Helper()
	r := doHTTP(tb, http.MethodGet, base+"/metrics", "", nil)
	sc := bufio.NewScanner(strings.NewReader(string(r.Body)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return f
		}
	}
	tb.Fatalf("no metric %s", name)
	return 0
}

// BenchmarkCosigning prints what witnessing costs a node of a 3-node ring of the
// laptop profile (a block a second, a checkpoint round a second): the witnessing
// requests it sends and their bytes each way, per minute, measured over 30 s after
// the ring settled.
//
//	go test -run '^$' -bench Cosigning -benchtime 1x ./cmd/flownode/
func BenchmarkCosigning(b *testing.B) {
	for i := 0; i < b.N; i++ {
		base := b.TempDir()
		n1 := startNode(b, filepath.Join(base, "n1"), "laptop")
		n2 := startNode(b, filepath.Join(base, "n2"), "laptop", "--join", n1.Addr)
		n3 := startNode(b, filepath.Join(base, "n3"), "laptop", "--join", n1.Addr)
		nodes := []*nodeProc{n1, n2, n3}
		if !waitFor(60*time.Second, 200*time.Millisecond, func() bool { ok, _ := ringIs(nodes); return ok }) {
			b.Fatal("no ring")
		}
		time.Sleep(5 * time.Second)
		names := []string{"flownode_witness_messages_total", "flownode_witness_bytes_sent_total", "flownode_witness_bytes_received_total", "flownode_checkpoint_cosignatures_total"}
		before := make([][]float64, len(nodes))
		for j, n := range nodes {
			for _, name := range names {
				before[j] = append(before[j], metric(b, n.URL, name))
			}
		}
		start := time.Now()
		time.Sleep(30 * time.Second)
		perMin := 60 / time.Since(start).Seconds()
		for j, n := range nodes {
			var d []float64
			for k, name := range names {
				d = append(d, (metric(b, n.URL, name)-before[j][k])*perMin)
			}
			fmt.Printf("cosigning, node %s: %.0f requests/min, %.0f B/min sent, %.0f B/min received, %.0f cosignatures/min of its branch\n",
				n.ID[:8], d[0], d[1], d[2], d[3])
		}
	}
}
