package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/api"
	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

func cmdRun(args []string, stdout io.Writer) error {
	fs := newFlags("run")
	data := fs.String("data", "./data", "data directory (Badger store and node key)")
	httpAddr := fs.String("http", ":8000", "TCP address for HTTP, WebSocket and the API")
	coapAddr := fs.String("coap", ":5683", "UDP address for CoAP")
	join := fs.String("join", "", "comma-separated peers to join: ws://HOST:PORT or coap://HOST:PORT")
	seed := fs.Bool("seed", false, "start a new ring when none of the --join peers is in one (give it to one node of a fixed set)")
	rpcPref := fs.String("rpc", "ws", "transport this node prefers for RPC: ws or coap")
	profileName := fs.String("profile", "laptop", "gateway, laptop or local")
	network := fs.String("network", ledger.DefaultNetwork, "network name; nodes of different networks refuse each other")
	advertise := fs.String("advertise", "", "host peers and clients reach this node at (default: the --http host, or 127.0.0.1)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	replicas := fs.Int("replicas", node.DefaultReplicas, "copies of each record in a ring, owner included (k)")
	debugAddr := fs.String("debug", "", "loopback address for pprof (e.g. 127.0.0.1:6060); off when empty")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(rest, 0, "no arguments"); err != nil {
		return err
	}
	profile, err := node.ProfileNamed(*profileName)
	if err != nil {
		return usageErr("%v", err)
	}
	if *replicas < 1 || *replicas > 16 {
		return usageErr("--replicas %d: use 1 to 16", *replicas)
	}
	if *rpcPref != "ws" && *rpcPref != "coap" {
		return usageErr("--rpc %q: use ws or coap", *rpcPref)
	}
	peers, err := parseJoin(*join)
	if err != nil {
		return usageErr("%v", err)
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	defer log.Sync()
	if *debugAddr != "" {
		stopDebug, err := serveDebug(*debugAddr, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return usageErr("listen on --http %s: %v", *httpAddr, err)
	}
	addr := advertised(*advertise, ln.Addr().(*net.TCPAddr))
	n, err := node.Open(node.Config{DataDir: *data, Profile: profile, Network: *network, Advertise: addr, Replicas: *replicas, Log: log})
	if err != nil {
		ln.Close()
		return usageErr("%v", err)
	}
	advHost, _, _ := net.SplitHostPort(addr)
	mux := http.NewServeMux()
	mux.Handle("/", api.NewServer(n, log.Named("http")))
	// Peers may call before the ring is attached to the node: it refuses
	// their messages as "starting" until then, and they retry.
	ring, err := startRing(&ringFlags{id: chord.ID(n.ID()), profile: profile.Ring, rpc: *rpcPref, coap: *coapAddr,
		advHost: advHost, httpPort: ln.Addr().(*net.TCPAddr).Port, mux: mux, log: log, messages: n.HandleMessage, events: n.RingEvent})
	if err != nil {
		ln.Close()
		n.Close()
		return usageErr("%v", err)
	}
	n.AttachRing(ring)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: 2 * time.Minute, ErrorLog: zap.NewStdLog(log.Named("http"))}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	mineErr := make(chan error, 1)
	go func() { mineErr <- n.Run(ctx) }()
	joined := make(chan struct{})
	go func() { defer close(joined); joinRing(ctx, ring, peers, *seed, log.Named("chord")) }()

	log.Info("flownode started", zap.Stringer("id", n.ID()), zap.String("profile", profile.Name), zap.String("rpc", ring.Self().Addr),
		zap.String("network", *network), zap.String("data", *data), zap.String("version", node.Version))
	fmt.Fprintf(stdout, "flownode %s is running: dashboard at http://%s/ (data in %s, profile %s)\n", n.ID(), addr, *data, profile.Name)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("http server: %w", err)
	case err := <-mineErr:
		if err != nil {
			runErr = fmt.Errorf("miner: %w", err)
		}
	}
	stop()
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	<-joined
	// Hand the range on and tell the neighbours before going, so they close
	// the ring at once and nothing this node owns waits for anti-entropy.
	leaveCtx, cancelLeave := context.WithTimeout(shutCtx, 8*time.Second)
	if err := n.Leave(leaveCtx); err != nil {
		log.Info("leave: not all handed on or told", zap.Error(err))
	}
	cancelLeave()
	ring.Close()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Warn("http shutdown", zap.Error(err))
	}
	<-mineErr
	if err := n.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("close store: %w", err)
	}
	return runErr
}

// advertised is the host:port peers and clients use: --advertise if set, else the
// listener's host, with unspecified addresses (":8000", "0.0.0.0") shown as 127.0.0.1.
func advertised(host string, la *net.TCPAddr) string {
	port := fmt.Sprint(la.Port)
	if host != "" {
		if h, p, err := net.SplitHostPort(host); err == nil {
			return net.JoinHostPort(h, p)
		}
		return net.JoinHostPort(strings.Trim(host, "[]"), port)
	}
	if la.IP == nil || la.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return net.JoinHostPort(la.IP.String(), port)
}
