package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flownode/flownode/node"
)

// metrics is the node's Prometheus registry: the node's own metrics start
// with flownode_, the Go runtime's with go_ and the process's with process_.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(n *node.Node) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flownode_http_requests_total", Help: "HTTP requests by route and status code.",
	}, []string{"route", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "flownode_http_request_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
	}, []string{"route"})
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	// The Go runtime's and the process's metrics keep their standard names
	// (go_*, process_*), which stock dashboards and alerts look for.
	m.reg.MustRegister(m.requests, m.latency,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		counter("flownode_records_appended_total", "Records signed and stored by this node since start.",
			func() float64 { return float64(n.Ledger().Stats().Records) }),
		counter("flownode_blocks_mined_total", "Blocks mined on this node's branch since start.",
			func() float64 { return float64(n.Ledger().Stats().Blocks) }),
		gauge("flownode_branch_head", "Number of the head block of this node's branch.",
			func() float64 { return float64(n.Ledger().Stats().HeadNo) }),
		gauge("flownode_unsealed_records", "Durable records in the head block, waiting for the next block's seal.",
			func() float64 { return float64(n.Ledger().Stats().Unsealed) }),
		counter("flownode_miner_attempts_total", "Hash attempts made by the fixed-rate miner.",
			func() float64 { return float64(n.MinerStats().Attempts) }),
		counter("flownode_miner_idle_ticks_total", "Miner ticks without an attempt because no record waited for a seal: an idle node mines no blocks.",
			func() float64 { return float64(n.MinerStats().Idle) }),
		counter("flownode_tampered_records_total", "Reads of records in this node's store whose bytes no longer verify: each was refused with a 500 naming it, never served.",
			func() float64 { return float64(n.DistStats().Tampered) }),
		counter("flownode_store_writes_total", "Durable writes handed to the store.",
			func() float64 { return float64(n.StoreStats().Writes) }),
		counter("flownode_store_syncs_total", "Group commits (each one fsync) made by the store.",
			func() float64 { return float64(n.StoreStats().Groups) }),
		gauge("flownode_members_known", "Memberships of this node's network it has seen (itself included), revoked ones too.",
			func() float64 { return float64(len(n.Members().Known())) }),
		gauge("flownode_revocations", "Revocations signed by the network's authority that this node holds.",
			func() float64 { return float64(len(n.Members().Revocations())) }),
		refusedCollector{n},
		// The HTTP port's guard (package httpguard): what it refused never
		// reaches a route, so it is counted here.
		gauge("flownode_http_connections", "Plain HTTP connections open.",
			func() float64 { return float64(n.HTTPStats().Conns) }),
		gauge("flownode_http_websockets", "WebSocket (hijacked) connections open: peers, devices, viewers.",
			func() float64 { return float64(n.HTTPStats().Hijacked) }),
		counter("flownode_http_connections_evicted_total", "Connections closed to make room for a new one at the cap.",
			func() float64 { return float64(n.HTTPStats().Evicted) }),
		counter("flownode_http_connections_refused_total", "New connections closed at the cap: every open one was being served.",
			func() float64 { return float64(n.HTTPStats().Refused) }),
		counter("flownode_http_busy_total", "Requests answered 503: no share of the body bytes in flight in time, or too many WebSockets.",
			func() float64 { return float64(n.HTTPStats().Busy) }),
		counter("flownode_http_body_timeouts_total", "Requests answered 408: the body did not arrive in time.",
			func() float64 { return float64(n.HTTPStats().TimedOut) }),
		counter("flownode_http_rejected_total", "Requests refused for their Host (421), Origin (403) or media type (415).",
			func() float64 { return float64(n.HTTPStats().Rejected) }),
	)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// instrument counts and times a route; the route is the pattern, never the raw path,
// so ids in paths cannot blow up the label set.
func (m *metrics) instrument(route string, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next(sw, r)
		m.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		m.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer (flush, hijack).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// refusedDesc is flownode_peers_refused_total: peers refused at the handshake,
// by reason (other network, expired, revoked, not signed by the authority, ...).
var refusedDesc = prometheus.NewDesc("flownode_peers_refused_total",
	"Peers refused at the handshake since start, by reason.", []string{"reason"}, nil)

// refusedCollector reads the refusal counts when scraped: the reasons are a
// small fixed set, named by package network.
type refusedCollector struct{ n *node.Node }

func (c refusedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- refusedDesc }

func (c refusedCollector) Collect(ch chan<- prometheus.Metric) {
	for reason, v := range c.n.Members().Refused() {
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(v), reason)
	}
}
