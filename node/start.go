package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/chord/driver"
	"github.com/flownode/flownode/httpguard"
	"github.com/flownode/flownode/rpc"
)

// Defaults of Start's listen addresses (the daemon's --http and --coap).
const (
	DefaultListen     = ":8000"
	DefaultCoAPListen = ":5683"
)

// running is what Start adds to a node: its ring, its HTTP server and the
// goroutines that mine and join.
type running struct {
	ctx    context.Context // ends with Start's ctx or Stop
	cancel context.CancelFunc
	ring   *driver.Driver
	mux    *http.ServeMux
	srv    *http.Server
	guard  *httpguard.Guard
	mined  chan struct{} // closed when the miner has returned
	joined chan struct{} // closed when the join (or its retries) ended

	failOnce sync.Once
	failed   chan struct{} // closed on the first failure, err
	err      error

	stopOnce sync.Once
	stopErr  error
}

func (r *running) fail(err error) {
	r.failOnce.Do(func() { r.err = err; close(r.failed) })
}

// An AddrError is a listen address Start could not use.
type AddrError struct {
	CoAP  bool // the CoAP (UDP) address, else the HTTP (TCP) one
	CoAPS bool // the devices' coaps (UDP) address
	Addr  string
	Err   error
}

func (e *AddrError) Error() string {
	if e.CoAPS {
		return fmt.Sprintf("listen for CoAP over DTLS (coaps) on %s: %v", e.Addr, e.Err)
	}
	if e.CoAP {
		return fmt.Sprintf("listen for CoAP on %s: %v", e.Addr, e.Err)
	}
	return fmt.Sprintf("listen on %s: %v", e.Addr, e.Err)
}

func (e *AddrError) Unwrap() error { return e.Err }

// PeerURL normalizes a peer address to join through: ws://HOST:PORT and
// coaps://HOST:PORT are kept, coap://HOST:PORT means coaps (peers speak CoAP
// over DTLS only), HOST:PORT means ws (the peer's HTTP port). On error it
// still returns the normalized address, for the message.
func PeerURL(addr string) (string, error) {
	a := strings.TrimSpace(addr)
	if !strings.Contains(a, "://") {
		a = "ws://" + a
	}
	if rest, ok := strings.CutPrefix(a, rpc.SchemeCoAP+"://"); ok {
		a = rpc.SchemeCoAPS + "://" + rest
	}
	scheme, _, err := rpc.SplitAddr(a)
	if err != nil || (scheme != rpc.SchemeWS && scheme != rpc.SchemeCoAPS) {
		return a, fmt.Errorf("peer %q: want ws://HOST:PORT, coaps://HOST:PORT or HOST:PORT", a)
	}
	return a, nil
}

// Start opens the node (see Open) and makes it a ring member: it listens for
// HTTP and WebSocket RPC on cfg.Listen (on a ServeMux the node owns: mount
// more with Handle) and for CoAP on cfg.CoAPListen, starts the Chord driver
// and the miner, and creates the ring or joins it through cfg.Join, retrying
// in the background until it works (peers started together may not all
// listen yet). Start returns once the node serves; Ready says when it is a
// member.
//
// The node mines and joins until ctx ends or Stop; Wait blocks until then,
// and Stop leaves the ring and closes the node. Do not call Run or Close on a
// started node.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.CoAPListen == "" {
		cfg.CoAPListen = DefaultCoAPListen
	}
	switch cfg.RPC {
	case "":
		cfg.RPC = rpc.SchemeWS
	case rpc.SchemeWS, rpc.SchemeCoAP:
	default:
		return nil, fmt.Errorf("RPC %q: use ws or coap", cfg.RPC)
	}
	peers := make([]string, 0, len(cfg.Join))
	for _, a := range cfg.Join {
		u, err := PeerURL(a)
		if err != nil {
			return nil, err
		}
		peers = append(peers, u)
	}
	if _, _, err := net.SplitHostPort(cfg.CoAPListen); err != nil {
		return nil, &AddrError{CoAP: true, Addr: cfg.CoAPListen, Err: errors.New("want HOST:PORT or :PORT")}
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, &AddrError{Addr: cfg.Listen, Err: err}
	}
	coapsConn, err := listenCoAPS(cfg.CoAPSListen)
	if err != nil {
		ln.Close()
		return nil, err
	}
	cfg.Advertise = advertised(cfg.Advertise, ln.Addr().(*net.TCPAddr))
	n, err := Open(cfg)
	if err != nil {
		ln.Close()
		if coapsConn != nil {
			coapsConn.Close()
		}
		return nil, err
	}
	log := cfg.Log
	r := &running{mux: http.NewServeMux(), mined: make(chan struct{}), joined: make(chan struct{}), failed: make(chan struct{})}
	advHost, _, _ := net.SplitHostPort(cfg.Advertise)
	if err := n.serveCoAPS(coapsConn, advHost); err != nil {
		ln.Close()
		n.Close()
		return nil, err
	}
	// Peers may call before the ring is attached to the node: it refuses
	// their messages as "starting" until then, and they retry.
	r.ring, err = n.startRing(advHost, ln.Addr().(*net.TCPAddr).Port, r.mux)
	if err != nil {
		n.stopCoAPS()
		ln.Close()
		n.Close()
		return nil, err
	}
	n.AttachRing(r.ring)
	n.run = r

	r.ctx, r.cancel = context.WithCancel(ctx)
	// Every path of the HTTP port (API, Web of Things, peers' RPC) is behind
	// one guard: what a client may cost, and which requests are accepted.
	r.guard = httpguard.New(httpguard.Config{Limits: cfg.Profile.HTTP, MaxBody: cfg.Profile.MaxBodyBytes,
		Hosts: append([]string{advHost}, cfg.AllowHosts...), Origins: cfg.AllowOrigins, AnyHost: []string{rpc.ReceivePattern}})
	r.srv = &http.Server{ErrorLog: zap.NewStdLog(log.Named("http"))}
	r.guard.Configure(r.srv, r.mux)
	go func() {
		if err := r.srv.Serve(r.guard.Listener(ln)); !errors.Is(err, http.ErrServerClosed) {
			r.fail(fmt.Errorf("http server: %w", err))
		}
	}()
	go func() {
		defer close(r.mined)
		if err := n.Run(r.ctx); err != nil {
			r.fail(fmt.Errorf("miner: %w", err))
		}
	}()
	go func() { defer close(r.joined); joinRing(r.ctx, r.ring, peers, cfg.Seed, log.Named("chord")) }()
	go n.revocationLoop(r.ctx, revocationInterval)

	log.Info("flownode started", zap.Stringer("id", n.ID()), zap.String("profile", cfg.Profile.Name), zap.String("rpc", r.ring.Self().Addr),
		zap.String("network", n.cfg.Network), zap.String("data", cfg.DataDir), zap.String("version", Version))
	return n, nil
}

// Handle mounts an HTTP handler on the started node's ServeMux (the one its
// WebSocket RPC is served on, at rpc.ReceivePattern), as http.ServeMux.Handle;
// it may be called while the node serves. The daemon mounts the API at "/".
func (n *Node) Handle(pattern string, h http.Handler) {
	if n.run == nil {
		panic("node: Handle on a node not made by Start")
	}
	n.run.mux.Handle(pattern, h)
}

// HTTPStats are the counters of the guard in front of the started node's
// HTTP port (connections open, evicted and refused, requests refused); zero
// for a node not made by Start.
func (n *Node) HTTPStats() httpguard.Stats {
	if n.run == nil {
		return httpguard.Stats{}
	}
	return n.run.guard.Stats()
}

// Wait blocks until the started node's context ends (nil) or a part of it
// fails: its HTTP server or its miner (that error). Stop it either way.
func (n *Node) Wait() error {
	if n.run == nil {
		return errors.New("node: Wait on a node not made by Start")
	}
	select {
	case <-n.run.ctx.Done():
		return nil
	case <-n.run.failed:
		return n.run.err
	}
}

// Stop shuts a started node down, in this order: it stops mining and
// joining, hands its range to its replicas and tells its neighbours it
// leaves (at most 8 s of ctx), closes the ring, shuts the HTTP server down
// (within ctx), waits for the miner, and closes the node (Close). ctx
// bounds the shutdown; the daemon gives it 10 s. Stop returns Close's error;
// calling it again returns the same.
func (n *Node) Stop(ctx context.Context) error {
	r := n.run
	if r == nil {
		return n.Close()
	}
	r.stopOnce.Do(func() {
		r.cancel()
		n.stopCoAPS()
		n.log.Info("shutting down")
		<-r.joined
		// Hand the range on and tell the neighbours before going, so they close
		// the ring at once and nothing this node owns waits for anti-entropy.
		leaveCtx, cancelLeave := context.WithTimeout(ctx, 8*time.Second)
		if err := n.Leave(leaveCtx); err != nil {
			n.log.Info("leave: not all handed on or told", zap.Error(err))
		}
		cancelLeave()
		r.ring.Close()
		if err := r.srv.Shutdown(ctx); err != nil {
			n.log.Warn("http shutdown", zap.Error(err))
		}
		<-r.mined
		r.stopErr = n.Close()
	})
	return r.stopErr
}

// revocationInterval is how often a node sends its revocations to its
// neighbours, for those that missed them.
const revocationInterval = 30 * time.Second

// advertised is the host:port peers and clients use: adv if set (a host, or
// host:port), else the listener's host, with unspecified addresses (":8000",
// "0.0.0.0") shown as 127.0.0.1.
func advertised(adv string, la *net.TCPAddr) string {
	port := fmt.Sprint(la.Port)
	if adv != "" {
		if h, p, err := net.SplitHostPort(adv); err == nil {
			return net.JoinHostPort(h, p)
		}
		return net.JoinHostPort(strings.Trim(adv, "[]"), port)
	}
	if la.IP == nil || la.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return net.JoinHostPort(la.IP.String(), port)
}

// startRing builds the WS and CoAP transports and the driver. The WS handler
// is mounted on mux at rpc.ReceivePattern.
func (n *Node) startRing(advHost string, httpPort int, mux *http.ServeMux) (*driver.Driver, error) {
	id := n.ID()
	log := n.log
	wsAddr := "ws://" + net.JoinHostPort(advHost, fmt.Sprint(httpPort))
	var self chord.Peer
	auth, err := n.PeerAuth()
	if err != nil {
		return nil, err
	}
	build := func(h rpc.Handler) (rpc.Transport, error) {
		log := log.Named("rpc")
		ws, err := rpc.NewWS(rpc.WSConfig{Self: rpc.Peer{ID: id.Hex(), Addr: wsAddr}, Auth: auth, Handler: h, Logger: log})
		if err != nil {
			return nil, err
		}
		listen, port, err := coapPort(n.cfg.CoAPListen)
		if err != nil {
			ws.Close()
			return nil, err
		}
		co, err := rpc.NewCoAP(rpc.CoAPConfig{Self: rpc.Peer{ID: id.Hex(), Addr: rpc.SchemeCoAPS + "://" + net.JoinHostPort(advHost, port)},
			Auth: auth, Listen: listen, Handler: h, Logger: log, Plain: n.servePlainCoAP})
		if err != nil {
			ws.Close()
			return nil, &AddrError{CoAP: true, Addr: n.cfg.CoAPListen, Err: err}
		}
		n.reverifiers = append(n.reverifiers, ws, co)
		bound, _ := co.LocalAddr().(*net.UDPAddr)
		n.coapAddr = net.JoinHostPort(advHost, fmt.Sprint(bound.Port))
		mux.Handle(rpc.ReceivePattern, ws.Handler())
		self = chord.Peer{ID: id, Addr: wsAddr}
		if n.cfg.RPC == rpc.SchemeCoAP {
			self.Addr = rpc.SchemeCoAPS + "://" + net.JoinHostPort(advHost, fmt.Sprint(bound.Port))
		}
		return advertising{rpc.NewMulti(map[string]rpc.Transport{rpc.SchemeWS: ws, rpc.SchemeCoAPS: co}), &self}, nil
	}
	return driver.New(driver.Config{Self: chord.Peer{ID: id}, Profile: n.cfg.Profile.Ring, Transport: build,
		Messages: n.HandleMessage, OnEvent: n.RingEvent, Logger: log.Named("chord")})
}

// coapPort returns the UDP address to listen on and its port. Port 0 (tests)
// is resolved to a free port first, because the transport must know the
// address it advertises before it listens.
func coapPort(addr string) (listen, port string, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", &AddrError{CoAP: true, Addr: addr, Err: errors.New("want HOST:PORT or :PORT")}
	}
	if port != "0" {
		return addr, port, nil
	}
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return "", "", &AddrError{CoAP: true, Addr: addr, Err: err}
	}
	port = fmt.Sprint(c.LocalAddr().(*net.UDPAddr).Port)
	c.Close()
	return net.JoinHostPort(host, port), port, nil
}

// advertising tells the driver the address this node advertises, which
// depends on the port the CoAP listener got.
type advertising struct {
	rpc.Transport
	self *chord.Peer
}

func (a advertising) Addr() string { return a.self.Addr }

// joinRing creates a ring, or joins through the peers, retrying (with a pause)
// until it works or ctx ends: peers started together may not all listen yet.
func joinRing(ctx context.Context, d *driver.Driver, peers []string, seed bool, log *zap.Logger) {
	if len(peers) == 0 {
		if err := d.Start(ctx); err != nil {
			log.Error("create ring", zap.Error(err))
		}
		return
	}
	pause := d.Profile().Tick * 4
	for failed := 1; ctx.Err() == nil; failed++ {
		jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := d.Join(jctx, peers)
		cancel()
		if err == nil {
			log.Info("joined the ring", zap.Strings("through", peers))
			return
		}
		if seed && seedCreates(err, failed) {
			log.Info("no --join peer is in a ring: this seed node starts one", zap.Strings("peers", peers), zap.Error(err))
			if err := d.Start(ctx); err != nil {
				log.Error("create ring", zap.Error(err))
			}
			return
		}
		log.Warn("join failed; retrying", zap.Strings("peers", peers), zap.Error(err))
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		pause = min(2*pause, 10*time.Second)
	}
}

// seedJoinAttempts is how many joins a seed node tries through peers that
// answer before it concludes that none of them is in a ring.
const seedJoinAttempts = 3

// seedCreates decides whether a seed node whose failed-th join attempt just
// failed with err starts a ring of its own. When no peer answered at all (a
// cold start: the seed is the first one up) it does at once; when peers
// answered but the join still failed it retries a few times first, because
// a seed that gives up on a live ring too early splits it in two.
func seedCreates(err error, failed int) bool {
	if errors.Is(err, driver.ErrNoBootstrap) {
		return true
	}
	return failed >= seedJoinAttempts && !errors.Is(err, context.Canceled)
}
