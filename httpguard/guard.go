package httpguard

import (
	"encoding/json"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Config is what a Guard needs besides its Limits.
type Config struct {
	Limits Limits
	// MaxBody is the largest request body (node.Profile.MaxBodyBytes).
	MaxBody int64
	// Hosts are the names the node is reached at besides IP literals and
	// localhost: its advertised host and the --allow-host list.
	Hosts []string
	// Origins are the foreign origins (scheme://host[:port]) allowed to
	// send state-changing requests and open WebSockets: --allow-origin.
	Origins []string
	// AnyHost are ServeMux patterns served whatever the Host: the peers'
	// RPC (rpc.ReceivePattern), whom membership TLS authenticates and who
	// dial each other by their advertised addresses.
	AnyHost []string
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
}

// A Guard holds a node's HTTP server to its Limits. Make one with New, then
// Configure the server and serve it on Listener(ln).
type Guard struct {
	busy, timedOut, rejected atomic.Uint64

	cfg     Config
	conns   *table
	bodies  *budget
	hosts   map[string]bool
	origins map[string]bool
	anyHost *http.ServeMux
}

// New makes a Guard. Limits left zero take LaptopLimits' values.
func New(cfg Config) *Guard {
	def := LaptopLimits()
	l := &cfg.Limits
	for _, f := range []struct {
		v *time.Duration
		d time.Duration
	}{{&l.BodyWait, def.BodyWait}, {&l.HeaderTimeout, def.HeaderTimeout}, {&l.BodyTimeout, def.BodyTimeout},
		{&l.IdleTimeout, def.IdleTimeout}} {
		if *f.v <= 0 {
			*f.v = f.d
		}
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = def.MaxHeaderBytes
	}
	if l.MaxConns <= 0 {
		l.MaxConns = def.MaxConns
	}
	if l.MaxHijacked <= 0 {
		l.MaxHijacked = def.MaxHijacked
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	if l.BodyBytes <= 0 {
		l.BodyBytes = def.BodyBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Guard{cfg: cfg, conns: newTable(cfg.Limits, cfg.Now), bodies: newBudget(l.BodyBytes),
		hosts: make(map[string]bool), origins: make(map[string]bool), anyHost: http.NewServeMux()}
	for _, h := range cfg.Hosts {
		if h = hostname(h); h != "" {
			g.hosts[h] = true
		}
	}
	for _, o := range cfg.Origins {
		if o, ok := canonicalOrigin(o); ok {
			g.origins[o] = true
		}
	}
	for _, p := range cfg.AnyHost {
		g.anyHost.Handle(p, http.NotFoundHandler())
	}
	return g
}

// Configure makes srv serve h behind the guard: it sets Handler, the header
// and idle timeouts and the ConnState and ConnContext hooks (which must not
// be set otherwise). Serve srv on Listener(ln).
func (g *Guard) Configure(srv *http.Server, h http.Handler) {
	srv.Handler = g.Handler(h)
	srv.ReadHeaderTimeout = g.cfg.Limits.HeaderTimeout
	srv.MaxHeaderBytes = g.cfg.Limits.MaxHeaderBytes
	srv.IdleTimeout = g.cfg.Limits.IdleTimeout
	srv.ConnState = g.conns.connState
	srv.ConnContext = connContext
}

// Listener wraps ln so that every connection it accepts counts against
// MaxConns (see the package doc for eviction).
func (g *Guard) Listener(ln net.Listener) net.Listener {
	return &listener{Listener: ln, t: g.conns}
}

// Stats are the guard's counters now.
func (g *Guard) Stats() Stats {
	st := g.conns.stats()
	st.Busy, st.TimedOut, st.Rejected = g.busy.Load(), g.timedOut.Load(), g.rejected.Load()
	return st
}

// Handler checks each request (Host, Origin, media type), reads its body
// within the limits, and hands it to h; it answers the refusals itself.
func (g *Guard) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := connOf(r)
		if code, msg := g.check(r); code != 0 {
			if c != nil {
				c.t.set(c, phaseServing)
			}
			g.rejected.Add(1)
			refuse(w, code, msg)
			return
		}
		if isUpgrade(r) && c != nil {
			if !c.t.reserve(c) {
				g.busy.Add(1)
				w.Header().Set("Retry-After", "5")
				refuse(w, http.StatusServiceUnavailable, "this node serves too many WebSocket connections; retry later")
				return
			}
			defer c.t.unreserve(c)
		}
		release, ok := g.readBody(w, r, c)
		if !ok {
			return
		}
		defer release()
		h.ServeHTTP(w, r)
	})
}

// refuse answers a refused request: {"error": msg}, as the API's errors.
func refuse(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
