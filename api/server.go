package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/flownode/flownode/access"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

// Server is the HTTP side of a node: API, health, metrics, dashboard.
type Server struct {
	node     *node.Node
	log      *zap.Logger
	maxBody  int64
	maxBatch int
	mux      *http.ServeMux
	metrics  *metrics
	auth     access.Authorizer // nil: every request is allowed

	verifying chan struct{} // holds one token while a verify runs
}

// NewServer builds the node's HTTP handler. auth decides who may read and
// write (package access); nil lets every request in, as tests and embedders
// that guard the handler themselves want.
func NewServer(n *node.Node, log *zap.Logger, auth access.Authorizer) *Server {
	if log == nil {
		log = zap.NewNop()
	}
	p := n.Profile()
	s := &Server{node: n, log: log, maxBody: p.MaxBodyBytes, maxBatch: p.MaxBatch, mux: http.NewServeMux(), auth: auth,
		verifying: make(chan struct{}, 1)}
	s.metrics = newMetrics(n)
	s.routes()
	return s
}

func (s *Server) routes() {
	h := func(pattern string, fn http.HandlerFunc) { s.mux.Handle(pattern, s.metrics.instrument(pattern, fn)) }
	h("GET /healthz", s.healthz)
	h("GET /readyz", s.readyz)
	h("GET /api/v1/node", s.getNode)
	h("GET /api/v1/ring", s.getRing)
	h("POST /api/v1/records", s.postRecords)
	h("GET /api/v1/records/{txID}", s.getRecord)
	// A key's records may be of many Things, a block seals many: reading
	// them needs a credential for every Thing when reads are not open.
	h("GET /api/v1/keys/{key}", s.need(access.Read, "", s.getKey))
	h("GET /api/v1/things/{id}/records", s.need(access.Read, "{id}", s.getThingRecords))
	h("GET /api/v1/blocks", s.need(access.Read, "", s.getBlocks))
	h("GET /api/v1/blocks/{branch}/{no}/records", s.need(access.Read, "", s.getBlockRecords))
	h("GET /api/v1/branches", s.need(access.Read, "", s.getBranches))
	h("GET /api/v1/verify", s.need(access.Admin, "", s.getVerify))
	h("GET /api/v1/network", s.getNetwork)
	h("POST /api/v1/network/revocations", s.postRevocation)
	h("GET "+ledger.ContextPath, s.getContext)
	h("GET /{$}", s.dashboard)
	s.mux.Handle("GET /metrics", s.metrics.handler())
	// Anything else gets the same JSON error shape as the API, not Go's text 404/405.
	s.mux.HandleFunc("/", s.notFound)
}

// Handle mounts a route of a layer beside the API (package witness) on the API's
// mux, counted in its metrics like the API's own routes. The layer checks its
// credentials itself.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, s.metrics.instrument(pattern, h.ServeHTTP))
}

// Register adds a layer's collectors to /metrics; their names start with flownode_.
func (s *Server) Register(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := s.metrics.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// need wraps a handler with the authorization its route asks: scope on the
// Thing named by the path value thing ("{id}"), or on every Thing ("").
func (s *Server) need(scope access.Scope, thing string, fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := ""
		if name, ok := strings.CutPrefix(thing, "{"); ok {
			id = r.PathValue(strings.TrimSuffix(name, "}"))
		}
		if access.Check(s.auth, w, r, id, scope) {
			fn(w, r)
		}
	}
}

// notFound answers a request no route took: 405 with Allow when the path exists for
// other methods, else 404. (With a catch-all route, ServeMux itself never sends 405.)
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		if slices.Contains(allow, http.MethodGet) {
			allow = append(allow, http.MethodHead)
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")))
		return
	}
	writeError(w, http.StatusNotFound, "no such path: "+r.URL.Path)
}

// ServeHTTP serves the API; a panic in a handler becomes a 500, never a crash.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("handler panic", zap.Any("panic", v), zap.String("path", r.URL.Path), zap.Stack("stack"))
			writeError(w, http.StatusInternalServerError, "internal error; see the node's log")
		}
	}()
	s.mux.ServeHTTP(w, r)
}

func (s *Server) serverError(w http.ResponseWriter, err error) {
	var te *ledger.TamperedError
	if errors.As(err, &te) {
		// A stored record that no longer verifies: named, never served. The
		// node logged and counted it where it read it (ringledger/stored.go).
		writeError(w, http.StatusInternalServerError, te.Error())
		return
	}
	s.log.Error("request failed", zap.Error(err))
	writeError(w, http.StatusInternalServerError, "the node could not read its store; see its log")
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.node.Ready(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"reason": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
}

// NodeInfo is the answer to GET /api/v1/node: who the node is, where it stands in
// the ring and its counters. Peers are named by their RPC URLs (ws:// or coap://)
// except Addr, the node's HTTP address.
type NodeInfo struct {
	ID                ledger.Key    `json:"id"`
	Addr              string        `json:"addr"`
	Profile           string        `json:"profile"`
	Version           string        `json:"version"`
	Network           string        `json:"network"`
	Authority         string        `json:"authority"`         // fingerprint of the network's authority key
	MembershipExpires time.Time     `json:"membershipExpires"` // this node's membership
	RPC               string        `json:"rpc,omitempty"`     // the address peers reach this node's Chord RPC at
	CoAP              string        `json:"coap,omitempty"`    // host:port of the CoAP port (devices' plain CoAP, peers' DTLS)
	CoAPS             string        `json:"coaps,omitempty"`   // host:port of the devices' CoAP over DTLS PSK; "" when off
	Status            string        `json:"status"`            // where the node stands in the ring
	Genesis           ledger.Hash   `json:"genesis"`
	Predecessor       *node.Peer    `json:"predecessor"`
	Successors        []node.Peer   `json:"successors"`
	Fingers           []node.Peer   `json:"fingers"`
	Branch            node.BlockRef `json:"branch"`
	Stats             NodeStats     `json:"stats"`
}

// NodeStats is NodeInfo's "stats": the node's counters since it started.
type NodeStats struct {
	UptimeSeconds float64 `json:"uptimeSeconds"`
	Records       uint64  `json:"records"`
	Unsealed      int     `json:"unsealed"`
	BlocksMined   uint64  `json:"blocksMined"`
	MinerAttempts uint64  `json:"minerAttempts"`
	StoreWrites   uint64  `json:"storeWrites"`
	StoreSyncs    uint64  `json:"storeSyncs"`
	MeanGroupSize float64 `json:"meanGroupSize"` // mean writes per group commit
	// Dist counts this node's part in the distributed ledger: readings
	// forwarded and owned, replication, anti-entropy, refused peer input.
	Dist node.DistStats `json:"dist"`
}

func (s *Server) getNode(w http.ResponseWriter, r *http.Request) {
	n := s.node
	ls := n.Ledger().Stats()
	ms := n.MinerStats()
	ss := n.StoreStats()
	self := n.Self()
	g := n.Ledger().Genesis()
	nb := n.Neighbours()
	members := n.Members()
	writeJSON(w, http.StatusOK, NodeInfo{
		ID: self.ID, Addr: self.Addr, Profile: n.Profile().Name, Version: node.Version,
		Network: g.Network, Authority: members.Description().Fingerprint(), MembershipExpires: members.Self().NotAfter.UTC(),
		Genesis: g.Hash, RPC: nb.RPC, CoAP: n.CoAPAddr(), CoAPS: n.CoAPSAddr(), Status: nb.Status,
		Predecessor: nb.Predecessor, Successors: nb.Successors, Fingers: nb.Fingers,
		Branch: node.BlockRef{Branch: self.ID, No: ls.HeadNo, Hash: ls.HeadHash},
		Stats: NodeStats{UptimeSeconds: n.Uptime().Round(time.Millisecond).Seconds(), Records: ls.Records,
			Unsealed: ls.Unsealed, BlocksMined: ls.Blocks, MinerAttempts: ms.Attempts,
			StoreWrites: ss.Writes, StoreSyncs: ss.Groups, MeanGroupSize: ss.MeanGroupSize, Dist: n.DistStats()},
	})
}

// RingWalk is the answer to GET /api/v1/ring: the nodes met walking the ring by
// successors from this one, and why the walk stopped short, if it did.
type RingWalk struct {
	Nodes []node.Peer `json:"nodes"`
	Error string      `json:"error,omitempty"`
}

// ringWalkTimeout bounds GET /api/v1/ring, which asks every node in turn.
const ringWalkTimeout = 20 * time.Second

// getRing walks the ring by successors. A walk that stops short (a node did
// not answer, or the successors lead elsewhere) still answers 200 with the
// nodes visited and the reason in "error": a broken ring is what an operator
// runs this to see.
func (s *Server) getRing(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), ringWalkTimeout)
	defer cancel()
	nodes, err := s.node.WalkRing(ctx)
	out := RingWalk{Nodes: nodes}
	if err != nil {
		out.Error = err.Error()
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getContext(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/ld+json")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	w.Write([]byte(ledger.ContextDocument))
}
