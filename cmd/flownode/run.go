package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flownode/flownode/access"
	"github.com/flownode/flownode/api"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
	"github.com/flownode/flownode/node"
	"github.com/flownode/flownode/witness"
)

func cmdRun(args []string, stdout io.Writer) error {
	fs := newFlags("run")
	data := fs.String("data", "./data", "data directory (Badger store and node key)")
	httpAddr := fs.String("http", ":8000", "TCP address for HTTP, WebSocket and the API")
	coapAddr := fs.String("coap", ":5683", "UDP address for CoAP")
	coapsAddr := fs.String("coaps", node.DefaultCoAPSListen, "UDP address for devices' CoAP over DTLS with pre-shared keys (coaps://); \"\" turns it off")
	join := fs.String("join", "", "comma-separated peers to join: ws://HOST:PORT or coaps://HOST:PORT (CoAP over DTLS)")
	seed := fs.Bool("seed", false, "start a new ring when none of the --join peers is in one (give it to one node of a fixed set)")
	rpcPref := fs.String("rpc", "ws", "transport this node prefers for RPC: ws or coap")
	profileName := fs.String("profile", "laptop", "gateway, laptop or local")
	networkName := fs.String("network", "", "the network the data dir must belong to (flownode admit puts it there); a data dir with none becomes a one-node network of this name (default "+ledger.DefaultNetwork+")")
	advertise := fs.String("advertise", "", "host peers and clients reach this node at (default: the --http host, or 127.0.0.1)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	replicas := fs.Int("replicas", node.DefaultReplicas, "copies of each record in a ring, owner included (k)")
	debugAddr := fs.String("debug", "", "loopback address for pprof (e.g. 127.0.0.1:6060); off when empty")
	authMode := fs.String("auth", "", "who needs a credential (flownode token create) to write: all clients, or all but those on this machine (loopback); default all for the gateway profile, loopback otherwise")
	openReads := fs.Bool("open-reads", true, "anyone may read records, Thing Descriptions and live values; false: reads need a read token too")
	allowHost := fs.String("allow-host", "", "comma-separated host names clients may reach this node under, besides IP addresses, localhost and the --advertise host (others get 421: DNS rebinding)")
	allowOrigin := fs.String("allow-origin", "", "comma-separated origins (scheme://host[:port]) whose web pages may write to this node and open WebSockets (other foreign origins get 403)")
	edges := fs.String("edge", "", "comma-separated http(s) URLs outside the ring that take this node's checkpoints and blocks as its branch grows (Flowchain's NOTIFY_EDGE)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(rest, 0, "no arguments"); err != nil {
		return err
	}
	edgeURLs := splitList(*edges)
	if err := witness.ParseEdges(edgeURLs); err != nil {
		return usageErr("%v", err)
	}
	profile, err := node.ProfileNamed(*profileName)
	if err != nil {
		return usageErr("%v", err)
	}
	if *replicas < 1 || *replicas > 16 {
		return usageErr("--replicas %d: use 1 to 16", *replicas)
	}
	policy, err := authPolicy(*authMode, *openReads, profile)
	if err != nil {
		return err
	}
	if *rpcPref != "ws" && *rpcPref != "coap" {
		return usageErr("--rpc %q: use ws or coap", *rpcPref)
	}
	peers, err := parseJoin(*join)
	if err != nil {
		return usageErr("%v", err)
	}
	hosts, err := parseAllowHosts(*allowHost)
	if err != nil {
		return usageErr("%v", err)
	}
	origins, err := parseAllowOrigins(*allowOrigin)
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

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The coaps port listens from Start on, but the guard that knows the
	// devices' keys needs the started node's network: until it is set, every
	// device handshake fails (and the device retries).
	var guardReady atomic.Pointer[access.Guard]
	devicePSK := func(identity []byte) ([]byte, error) {
		if g := guardReady.Load(); g != nil {
			return g.PSK(identity)
		}
		return nil, errors.New("the node is starting")
	}
	n, err := node.Start(ctx, node.Config{DataDir: *data, Profile: profile, Network: *networkName, Advertise: *advertise,
		Replicas: *replicas, Log: log, Listen: *httpAddr, CoAPListen: *coapAddr, CoAPSListen: *coapsAddr, RPC: *rpcPref, Join: peers, Seed: *seed,
		AllowHosts: hosts, AllowOrigins: origins,
		AwaitChecks: true, // the Web of Things' device-signature checks (serveThings)
		DevicePSK:   devicePSK})
	if err != nil {
		var ae *node.AddrError
		switch {
		case errors.As(err, &ae) && ae.CoAPS:
			return usageErr("listen for CoAP over DTLS on --coaps %s: %v", ae.Addr, ae.Err)
		case errors.As(err, &ae) && ae.CoAP:
			return usageErr("listen for CoAP on --coap %s: %v", ae.Addr, ae.Err)
		case errors.As(err, &ae):
			return usageErr("listen on --http %s: %v", ae.Addr, ae.Err)
		}
		return usageErr("%v", err)
	}
	stopThings, stopWitness := func() {}, func() {}
	guard, err := newGuard(n, *data, policy, log)
	if err == nil {
		guardReady.Store(guard)
		srv := api.NewServer(n, log.Named("http"), guard)
		stopWitness, err = serveWitness(n, srv, log, guard, edgeURLs)
		n.Handle("/", srv)
	}
	if err == nil {
		stopThings, err = serveThings(n, log, guard)
		if err != nil {
			err = fmt.Errorf("web of things: %w", err)
		}
	}
	if err != nil {
		stopWitness()
		shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.Stop(shutCtx)
		return err
	}
	fmt.Fprintf(stdout, "flownode %s is running: dashboard at http://%s/ (data in %s, profile %s)\n", n.ID(), n.Self().Addr, *data, profile.Name)
	netw := n.Members().Description()
	fmt.Fprintf(stdout, "network %s (authority %s)\n", netw.Name, netw.Fingerprint())
	if _, err := os.Stat(filepath.Join(*data, network.AuthorityKeyFile)); err == nil {
		fmt.Fprintf(stdout, "this data dir holds the network's authority key; admit another node with\n"+
			"  flownode admit --network %s --data OTHERDIR\nthen start it with --join %s, and move %s off this node\n",
			*data, n.Self().Addr, network.AuthorityKeyFile)
	}

	runErr := n.Wait()
	stop()
	stopThings()
	stopWitness()
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Stop(shutCtx); err != nil && runErr == nil {
		runErr = fmt.Errorf("close store: %w", err)
	}
	return runErr
}

// parseJoin reads --join: comma-separated ws://HOST:PORT, coaps://HOST:PORT (or coap://), or
// HOST:PORT meaning ws (the peer's HTTP port).
func parseJoin(s string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if strings.TrimSpace(a) == "" {
			continue
		}
		u, err := node.PeerURL(a)
		if err != nil {
			return nil, fmt.Errorf("--join %q: want ws://HOST:PORT, coaps://HOST:PORT or HOST:PORT", u)
		}
		out = append(out, u)
	}
	return out, nil
}

// parseAllowHosts reads --allow-host: comma-separated host names (a port is
// ignored: the check is on the name).
func parseAllowHosts(s string) ([]string, error) {
	var out []string
	for _, h := range strings.Split(s, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if strings.Contains(h, "://") || strings.ContainsAny(h, "/ ") {
			return nil, fmt.Errorf("--allow-host %q: want a host name such as gw21.plant.lan", h)
		}
		out = append(out, h)
	}
	return out, nil
}

// parseAllowOrigins reads --allow-origin: comma-separated origins, each
// http:// or https:// with a host and nothing after it.
func parseAllowOrigins(s string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(s, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("--allow-origin %q: want an origin such as https://dash.example.com or http://10.0.0.5:3000", o)
		}
		out = append(out, o)
	}
	return out, nil
}
