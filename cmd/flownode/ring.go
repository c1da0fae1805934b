package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/chord/driver"
	"github.com/flownode/flownode/rpc"
)

// ringFlags is what `flownode run` needs to put the node in a ring.
type ringFlags struct {
	id        chord.ID
	profile   driver.Profile
	rpc       string   // "ws" or "coap": the transport this node advertises
	join      []string // peer URLs; empty: create a ring
	coap      string   // UDP address to listen on
	advHost   string   // host peers reach this node at
	httpPort  int
	mux       *http.ServeMux // where the WS RPC handler goes
	log       *zap.Logger
	coapBound *net.UDPAddr // set once the CoAP transport listens
	// messages answers application MESSAGEs (node.Node.HandleMessage).
	messages func(ctx context.Context, from chord.Peer, data json.RawMessage) (json.RawMessage, error)
	// events sees the core's events (node.Node.RingEvent).
	events func(chord.Event)
}

// parseJoin reads --join: comma-separated ws://HOST:PORT, coap://HOST:PORT, or
// HOST:PORT meaning ws (the peer's HTTP port).
func parseJoin(s string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if !strings.Contains(a, "://") {
			a = "ws://" + a
		}
		scheme, _, err := rpc.SplitAddr(a)
		if err != nil || (scheme != rpc.SchemeWS && scheme != rpc.SchemeCoAP) {
			return nil, fmt.Errorf("--join %q: want ws://HOST:PORT, coap://HOST:PORT or HOST:PORT", a)
		}
		out = append(out, a)
	}
	return out, nil
}

// startRing builds the WS and CoAP transports and the driver. The WS handler
// is mounted on rf.mux at rpc.ReceivePattern.
func startRing(rf *ringFlags) (*driver.Driver, error) {
	wsAddr := "ws://" + net.JoinHostPort(rf.advHost, fmt.Sprint(rf.httpPort))
	var self chord.Peer
	build := func(h rpc.Handler) (rpc.Transport, error) {
		log := rf.log.Named("rpc")
		ws, err := rpc.NewWS(rpc.WSConfig{Self: rpc.Peer{ID: rf.id.Hex(), Addr: wsAddr}, Handler: h, Logger: log})
		if err != nil {
			return nil, err
		}
		listen, port, err := coapPort(rf.coap)
		if err != nil {
			ws.Close()
			return nil, err
		}
		co, err := rpc.NewCoAP(rpc.CoAPConfig{Self: rpc.Peer{ID: rf.id.Hex(), Addr: "coap://" + net.JoinHostPort(rf.advHost, port)},
			Listen: listen, Handler: h, Logger: log})
		if err != nil {
			ws.Close()
			return nil, fmt.Errorf("listen for CoAP on --coap %s: %w", rf.coap, err)
		}
		rf.coapBound, _ = co.LocalAddr().(*net.UDPAddr)
		rf.mux.Handle(rpc.ReceivePattern, ws.Handler())
		self = chord.Peer{ID: rf.id, Addr: wsAddr}
		if rf.rpc == rpc.SchemeCoAP {
			self.Addr = "coap://" + net.JoinHostPort(rf.advHost, fmt.Sprint(rf.coapBound.Port))
		}
		return advertising{rpc.NewMulti(map[string]rpc.Transport{rpc.SchemeWS: ws, rpc.SchemeCoAP: co}), &self}, nil
	}
	return driver.New(driver.Config{Self: chord.Peer{ID: rf.id}, Profile: rf.profile, Transport: build,
		Messages: rf.messages, OnEvent: rf.events, Logger: rf.log.Named("chord")})
}

// coapPort returns the UDP address to listen on and its port. Port 0 (tests)
// is resolved to a free port first, because the transport must know the
// address it advertises before it listens.
func coapPort(addr string) (listen, port string, err error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", fmt.Errorf("--coap %q: want HOST:PORT or :PORT", addr)
	}
	if port != "0" {
		return addr, port, nil
	}
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return "", "", fmt.Errorf("listen for CoAP on --coap %s: %w", addr, err)
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
