package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func parseString(t *testing.T, out string) *Results {
	t.Helper()
	res, err := Parse(strings.NewReader(out), looseUnits)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func wantValue(t *testing.T, res *Results, s source, want float64) {
	t.Helper()
	got, ok := res.value(s)
	if !ok {
		t.Errorf("%s %s: not found, want %v", s.bench, s.unit, want)
		return
	}
	if got != want {
		t.Errorf("%s %s = %v, want %v", s.bench, s.unit, got, want)
	}
}

func wantMissing(t *testing.T, res *Results, s source) {
	t.Helper()
	if v, ok := res.value(s); ok {
		t.Errorf("%s %s = %v, want not found", s.bench, s.unit, v)
	}
}

// testdata/bench.out is real output of the benchmarks the table reads (the
// limits, Ingest, Lookup, RingIngest nodes=5/wait=replicas), with make's
// command lines and the benchmarks' logs between them.
func TestParseCapturedRun(t *testing.T) {
	f, err := os.Open("testdata/bench.out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Parse(f, looseUnits)
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, res, source{"BenchmarkIngest/batch=500/clients=4", "rec/s"}, 4025)
	wantValue(t, res, source{"BenchmarkIngest/single/clients=1", "p50-ms"}, 2.661)
	wantValue(t, res, source{"BenchmarkRingIngest/nodes=5/wait=replicas", "records/s"}, 1061)
	wantValue(t, res, source{"BenchmarkLookup/ws/64", "p99-µs"}, 2317)
	wantValue(t, res, wsHops, 1.125)
	wantValue(t, res, signRate, 33654)
	wantValue(t, res, verifyRate, 15270)
	wantValue(t, res, batchStore, 82758)
	wantValue(t, res, fsyncP50, 99.95)
	wantValue(t, res, coapRTTp99, 285.9)
	// Not in this capture: the rows print "not measured".
	wantMissing(t, res, source{"BenchmarkRingIngest/nodes=5/wait=owner", "records/s"})
	wantMissing(t, res, idleGrowth)
	wantMissing(t, res, idleSealP50)
}

func TestParseFiguresAfterInterleavedOutput(t *testing.T) {
	res := parseString(t, `BenchmarkIngest/single/clients=1-2         	badger 2026/12/07 INFO: All 0 tables opened in 0s
badger 2026/12/07 INFO: Replay took: 2.1µs
       1	         2.661 p50-ms	        43.61 p99-ms	       212.7 rec/s
--- BENCH: BenchmarkIngest/single/clients=1-2
    bench_test.go:166: single/clients=1: 3000 records in 3000 requests: 213 rec/s
`)
	wantValue(t, res, source{"BenchmarkIngest/single/clients=1", "rec/s"}, 212.7)
	wantValue(t, res, source{"BenchmarkIngest/single/clients=1", "p99-ms"}, 43.61)
}

func TestParseSkippedBenchmarkTakesNoLaterFigures(t *testing.T) {
	res := parseString(t, `BenchmarkLookup/coaps/64-2   	
--- SKIP: BenchmarkLookup/coaps/64-2
    bench_test.go:27: coaps rings of 64 in-process nodes do not settle yet
PASS
ok  	github.com/flownode/flownode/chord/driver	51.448s
       1	  300 p50-µs
`)
	wantMissing(t, res, source{"BenchmarkLookup/coaps/64", "p50-µs"})
}

func TestParseMedianOfRepeatedRuns(t *testing.T) {
	res := parseString(t, `BenchmarkEd25519/sign-2 	1	46000 sign/s
BenchmarkEd25519/sign-2 	1	20000 sign/s
BenchmarkEd25519/sign-2 	1	45000 sign/s
BenchmarkFsync 	100	90 p50-µs
BenchmarkFsync 	100	110 p50-µs
`)
	wantValue(t, res, signRate, 45000)
	wantValue(t, res, fsyncP50, 100) // GOMAXPROCS=1 prints no suffix; even count: mean of the middle two
}

func TestParseLooseUnitsAnywhere(t *testing.T) {
	res := parseString(t, `node  start_bytes end_bytes MB/day
d1    1000 2000 0.40
mean growth: 0.40 MB/day per node (3000 bytes in 10 min over 3 nodes)
node2: 0.60 MB/day/node over 600 s
BenchmarkSealLatency/idle=5s-2 	20	3.2 p50-ms	64 p99-ms	0 ns/op
BenchmarkSealLatency/busy-2 	20	640 p50-ms	5600 p99-ms	0 ns/op
`)
	wantValue(t, res, idleGrowth, 0.5)
	wantValue(t, res, idleSealP50, 3.2)
	wantValue(t, res, idleSealP99, 64)
	wantValue(t, res, busySealP50, 640)
	wantValue(t, res, busySealP99, 5600)
}

func TestParseIgnoresMalformedLines(t *testing.T) {
	res := parseString(t, `Benchmark
BenchmarkIngest/batch=500/clients=4-2 	x	4025 rec/s
BenchmarkIngest/batch=500/clients=4-2 	1	4025 rec/s	7
BenchmarkIngest/batch=500/clients=4-2 	1	fast rec/s
ok MB/day/node
`)
	wantMissing(t, res, source{"BenchmarkIngest/batch=500/clients=4", "rec/s"})
	wantMissing(t, res, idleGrowth)
}

func TestCellsMeasuredLimitRatioTarget(t *testing.T) {
	res := parseString(t, `BenchmarkIngest/batch=500/clients=4-2 	1	15000 rec/s
BenchmarkEd25519/sign-2 	1	40000 sign/s
BenchmarkWrite/laptop/batch1000-2 	100	100000 rec/s
BenchmarkLookup/ws/64-2 	2000	120 p50-µs	900 p99-µs	2 hops
BenchmarkRoundTrip/ws/seq-2 	5000	50 p50-µs	100 p99-µs
`)
	for _, tc := range []struct {
		row  int
		want []string
	}{
		{0, []string{rows[0].figure, "15.0k rec/s", "40.0k rec/s (min(sign, batch store))", "0.38×", "≥ 30.0k rec/s", "no"}},
		{5, []string{rows[5].figure, "120 µs", "100 µs (WS p50 round trip × max(1, hops))", "1.20×", "≤ 150 µs", "yes"}},
		{6, []string{rows[6].figure, "900 µs", "200 µs (WS p99 round trip × max(1, hops))", "4.50×", "≤ 1000 µs", "yes"}},
		// The limit needs verify/s, which is missing.
		{3, []string{rows[3].figure, notMeasured, notMeasured + " (1/(1/sign + 2/verify + 3/batch store))", "—", "≥ 6000 rec/s", notMeasured}},
		{9, []string{rows[9].figure, notMeasured, "—", "—", "≤ 1.00 MB/day", notMeasured}},
		{10, []string{rows[10].figure, notMeasured, "—", "—", "≤ 1000 ms", notMeasured}},
		{11, []string{rows[11].figure, notMeasured, "—", "—", "—", "—"}},
	} {
		got := rows[tc.row].cells(res)
		if strings.Join(got, " | ") != strings.Join(tc.want, " | ") {
			t.Errorf("row %d:\n got %q\nwant %q", tc.row, got, tc.want)
		}
	}
}

func TestRingLimitCountsEveryRecordsWork(t *testing.T) {
	res := parseString(t, `BenchmarkEd25519/sign-2 	1	30000 sign/s
BenchmarkEd25519/verify-2 	1	15000 verify/s
BenchmarkWrite/laptop/batch1000-2 	100	90000 rec/s
`)
	// 1/30000 + 2/15000 + 3/90000 s per record = 1/5000.
	lim, ok := rows[3].limitValue(res)
	if !ok || lim < 4999.99 || lim > 5000.01 {
		t.Errorf("ring limit = %v, %v; want 5000", lim, ok)
	}
}

func TestPrintEmptyInputSaysNotMeasured(t *testing.T) {
	var out bytes.Buffer
	Print(&out, parseString(t, ""), "empty")
	s := out.String()
	for _, rw := range rows {
		if !strings.Contains(s, "| "+rw.figure+" ") {
			t.Errorf("row %q missing from:\n%s", rw.figure, s)
		}
	}
	if got, want := strings.Count(s, notMeasured), len(rows)+len(limitSources); got < want {
		t.Errorf("%d %q in the output, want at least %d:\n%s", got, notMeasured, want, s)
	}
}
