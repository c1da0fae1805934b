package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"
)

// The limits: what this machine does at best, measured in the same run as the
// figures they bound (make bench runs these benchmarks too).
var (
	signRate   = source{"BenchmarkEd25519/sign", "sign/s"}            // ledger: ed25519 signs/s of a record on all cores
	verifyRate = source{"BenchmarkEd25519/verify", "verify/s"}        // ledger: ed25519 verifies/s, all cores
	batchStore = source{"BenchmarkWrite/laptop/batch1000", "rec/s"}   // store: synced Badger batches of 1000
	batchSyncs = source{"BenchmarkWrite/laptop/batch1000", "syncs/s"} // store: those batches' commits/s
	singleSync = source{"BenchmarkWrite/laptop/single", "rec/s"}      // store: one synced commit per record
	fsyncRate  = source{"BenchmarkFsync", "fsync/s"}                  // store: append + fsync of a file
	fsyncP50   = source{"BenchmarkFsync", "p50-µs"}
	wsRTTp50   = source{"BenchmarkRoundTrip/ws/seq", "p50-µs"} // rpc: bare call over WebSocket, loopback
	wsRTTp99   = source{"BenchmarkRoundTrip/ws/seq", "p99-µs"}
	coapRTTp50 = source{"BenchmarkRoundTrip/coap/seq", "p50-µs"} // rpc: bare call over CoAP, loopback
	coapRTTp99 = source{"BenchmarkRoundTrip/coap/seq", "p99-µs"}
	wsHops     = source{"BenchmarkLookup/ws/64", "hops"} // chord/driver: mean hops of those lookups
	coapHops   = source{"BenchmarkLookup/coap/64", "hops"}
)

// The figure that comes from a script, matched by unit alone (source.bench
// empty), so that whatever prints it is found:
//
//	MB/day/node   idle disk growth of a node (scripts/idle-growth.sh; it
//	              may also write "MB/day per node", see unitAliases)
var idleGrowth = source{"", "MB/day/node"}

// Reading-to-seal latency (node BenchmarkSealLatency): a reading after the
// node had nothing to seal for 5 s, and readings every 10 ms.
var (
	idleSealP50 = source{"BenchmarkSealLatency/idle=5s", "p50-ms"}
	idleSealP99 = source{"BenchmarkSealLatency/idle=5s", "p99-ms"}
	busySealP50 = source{"BenchmarkSealLatency/busy", "p50-ms"}
	busySealP99 = source{"BenchmarkSealLatency/busy", "p99-ms"}
)

// looseUnits are the units Parse must collect from any line.
var looseUnits = []string{idleGrowth.unit}

// A limit is computed from figures of the run: how is a short formula for the
// table, calc gets a figure by its source.
type limit struct {
	how  string
	uses []source
	calc func(v map[source]float64) float64
}

// A part of a record's work: n times what one op of rate costs.
type part struct {
	n    float64
	rate source
}

// perRecord is the rate at which these cores do the work of one record when
// each part costs 1/rate of them: 1 / Σ n/rate.
func perRecord(parts ...part) func(map[source]float64) float64 {
	return func(v map[source]float64) float64 {
		cost := 0.0
		for _, p := range parts {
			cost += p.n / v[p.rate]
		}
		return 1 / cost
	}
}

var (
	// A node signs every record on all cores while the store syncs batches: the
	// slower of the two bounds it. (Were they to share the cores without
	// overlapping, the bound would be 1/(1/sign + 1/batch store), lower.)
	signOrStore = limit{"min(sign, batch store)", []source{signRate, batchStore},
		func(v map[source]float64) float64 { return min(v[signRate], v[batchStore]) }}
	// Every record of a k = 3 ring is signed once, verified by two replicas
	// and stored three times, all on the same cores in-process.
	signVerifyStore3 = limit{"1/(1/sign + 2/verify + 3/batch store)", []source{signRate, verifyRate, batchStore},
		perRecord(part{1, signRate}, part{2, verifyRate}, part{3, batchStore})}
	oneFsyncRate = limit{"fsyncs/s", []source{fsyncRate},
		func(v map[source]float64) float64 { return v[fsyncRate] }}
	oneFsyncTime = limit{"one fsync, p50", []source{fsyncP50},
		func(v map[source]float64) float64 { return v[fsyncP50] / 1000 }}
)

// hopsTimes is a lookup's floor: a bare round trip per hop, and at least
// one (the owner confirms every answer; a lookup answered from the range
// cache counts no hop but still costs that round trip).
func hopsTimes(rtt, hops source, what string) *limit {
	return &limit{what + " round trip × max(1, hops)", []source{rtt, hops},
		func(v map[source]float64) float64 { return v[rtt] * max(1, v[hops]) }}
}

// A target is what issue 17 asks of a figure: at least or at most value.
type target struct {
	atMost bool
	value  float64
}

func (t *target) op() string {
	if t.atMost {
		return "≤"
	}
	return "≥"
}

func (t *target) met(v float64) bool {
	if t.atMost {
		return v <= t.value
	}
	return v >= t.value
}

// A row is one figure of the table; unit is how the table names the unit of
// measured (and of its limit and target).
type row struct {
	figure   string
	measured source
	unit     string
	limit    *limit
	target   *target
}

func atLeast(v float64) *target { return &target{value: v} }
func atMost(v float64) *target  { return &target{atMost: true, value: v} }

// rows are issue 17's table. A row's figure names the benchmark that makes it,
// so a reader can find it in the output above the table.
var rows = []row{
	{"1 node, HTTP batches of 500, 4 clients (cmd/flownode Ingest/batch=500/clients=4)",
		source{"BenchmarkIngest/batch=500/clients=4", "rec/s"}, "rec/s", &signOrStore, atLeast(30000)},
	{"1 node, single puts, 1 client (cmd/flownode Ingest/single/clients=1)",
		source{"BenchmarkIngest/single/clients=1", "rec/s"}, "rec/s", &oneFsyncRate, nil},
	{"  the same, p50 per put",
		source{"BenchmarkIngest/single/clients=1", "p50-ms"}, "ms", &oneFsyncTime, atMost(0.5)},
	{"5 nodes, k = 3, wait=replicas, in-process (node RingIngest/nodes=5/wait=replicas)",
		source{"BenchmarkRingIngest/nodes=5/wait=replicas", "records/s"}, "rec/s", &signVerifyStore3, atLeast(6000)},
	{"5 nodes, k = 3, wait=owner, in-process (node RingIngest/nodes=5/wait=owner)",
		source{"BenchmarkRingIngest/nodes=5/wait=owner", "records/s"}, "rec/s", &signVerifyStore3, atLeast(6000)},
	{"lookup p50, 64 nodes, WebSocket (chord/driver Lookup/ws/64)",
		source{"BenchmarkLookup/ws/64", "p50-µs"}, "µs", hopsTimes(wsRTTp50, wsHops, "WS p50"), atMost(150)},
	{"lookup p99, 64 nodes, WebSocket",
		source{"BenchmarkLookup/ws/64", "p99-µs"}, "µs", hopsTimes(wsRTTp99, wsHops, "WS p99"), atMost(1000)},
	{"lookup p50, 64 nodes, CoAP (chord/driver Lookup/coap/64)",
		source{"BenchmarkLookup/coap/64", "p50-µs"}, "µs", hopsTimes(coapRTTp50, coapHops, "CoAP p50"), atMost(250)},
	{"lookup p99, 64 nodes, CoAP",
		source{"BenchmarkLookup/coap/64", "p99-µs"}, "µs", hopsTimes(coapRTTp99, coapHops, "CoAP p99"), atMost(5000)},
	{"idle disk growth per node", idleGrowth, "MB/day", nil, atMost(1)},
	{"reading-to-seal, after 5 s idle, p50 (node SealLatency/idle=5s)", idleSealP50, "ms", nil, atMost(1000)},
	{"  the same, p99", idleSealP99, "ms", nil, nil},
	{"reading-to-seal, a reading every 10 ms, p50 (node SealLatency/busy)", busySealP50, "ms", nil, atMost(1000)},
	{"  the same, p99", busySealP99, "ms", nil, nil},
}

// limitSources are listed under the table with their figures, so that every
// limit can be checked against the output.
var limitSources = []struct {
	what string
	src  source
}{
	{"ed25519 sign, all cores (ledger)", signRate},
	{"ed25519 verify, all cores (ledger)", verifyRate},
	{"synced Badger batch of 1000 (store)", batchStore},
	{"  its commits", batchSyncs},
	{"synced Badger write of 1 record (store)", singleSync},
	{"append + fsync (store)", fsyncRate},
	{"  one fsync, p50", fsyncP50},
	{"bare rpc call over WS, p50 (rpc)", wsRTTp50},
	{"  p99", wsRTTp99},
	{"bare rpc call over CoAP, p50 (rpc)", coapRTTp50},
	{"  p99", coapRTTp99},
	{"lookup hops, WS 64 nodes (chord/driver)", wsHops},
	{"lookup hops, CoAP 64 nodes (chord/driver)", coapHops},
}

const notMeasured = "not measured"

// cells is a row of the printed table: figure, measured, limit, ratio, target, met?
func (rw row) cells(res *Results) []string {
	c := []string{rw.figure, notMeasured, "—", "—", "—", "—"}
	if rw.target != nil {
		c[4] = rw.target.op() + " " + number(rw.target.value) + " " + rw.unit
	}
	lim, limOK := rw.limitValue(res)
	if rw.limit != nil {
		c[2] = notMeasured + " (" + rw.limit.how + ")"
		if limOK {
			c[2] = number(lim) + " " + rw.unit + " (" + rw.limit.how + ")"
		}
	}
	v, ok := res.value(rw.measured)
	if !ok {
		if rw.target != nil {
			c[5] = notMeasured
		}
		return c
	}
	c[1] = number(v) + " " + rw.unit
	if limOK && lim > 0 {
		c[3] = fmt.Sprintf("%.2f×", v/lim)
	}
	if rw.target != nil {
		c[5] = map[bool]string{true: "yes", false: "no"}[rw.target.met(v)]
	}
	return c
}

// limitValue computes the row's limit, or false when the row has none or a
// figure it needs is missing or not a positive number.
func (rw row) limitValue(res *Results) (float64, bool) {
	if rw.limit == nil {
		return 0, false
	}
	vals := map[source]float64{}
	for _, s := range rw.limit.uses {
		v, ok := res.value(s)
		if !ok || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return 0, false
		}
		vals[s] = v
	}
	lim := rw.limit.calc(vals)
	return lim, !math.IsInf(lim, 0) && !math.IsNaN(lim)
}

// number prints a figure with about three significant digits.
func number(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// Print writes the table and the limits it used.
func Print(w io.Writer, res *Results, from string) {
	fmt.Fprintf(w, "\nIssue 17 figures from %s; every limit is measured in the same run (ratio = measured / limit):\n\n", from)
	table := [][]string{{"figure", "measured", "limit (this run)", "ratio", "target", "met?"}}
	for _, rw := range rows {
		table = append(table, rw.cells(res))
	}
	writeTable(w, table)
	fmt.Fprintf(w, "\nLimits (median of this run's figures):\n\n")
	lt := [][]string{{"limit", "benchmark", "figure"}}
	for _, l := range limitSources {
		fig := notMeasured
		if v, ok := res.value(l.src); ok {
			fig = number(v) + " " + l.src.unit
		}
		lt = append(lt, []string{l.what, l.src.bench, fig})
	}
	writeTable(w, lt)
}

// writeTable prints rows as a Markdown table with padded columns; the first row
// is the header.
func writeTable(w io.Writer, rows [][]string) {
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	line := func(r []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range r {
			b.WriteString(" " + c + strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)) + " |")
		}
		fmt.Fprintln(w, b.String())
	}
	line(rows[0])
	sep := make([]string, len(width))
	for i, n := range width {
		sep[i] = strings.Repeat("-", n)
	}
	line(sep)
	for _, r := range rows[1:] {
		line(r)
	}
}
