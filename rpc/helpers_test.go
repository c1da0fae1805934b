package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// nodeID returns a test node ID: n as 40 hex digits.
func nodeID(n int) string { return fmt.Sprintf("%040x", n) }

// testLogger records logs for assertions. It never writes to t after the
// test ends (go-coap reports errors from its own goroutines), which zaptest
// would. Set RPC_TEST_LOG=1 to also see them on stderr.
func testLogger(t testing.TB) (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	if os.Getenv("RPC_TEST_LOG") != "" {
		enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
		core = zapcore.NewTee(core, zapcore.NewCore(enc, zapcore.Lock(os.Stderr), zapcore.DebugLevel))
	}
	return zap.New(core).Named(t.Name()), logs
}

// hasLog reports whether a log entry at level or above contains msg.
func hasLog(logs *observer.ObservedLogs, level zapcore.Level, msg string) bool {
	for _, e := range logs.All() {
		if e.Level >= level && strings.Contains(e.Message, msg) {
			return true
		}
	}
	return false
}

// echo answers every request with FOUND_SUCCESSOR carrying the request's
// payload; a payload of "slow" waits until ctx ends or 5 s pass, and "fail"
// returns an error reply.
func echo(ctx context.Context, env *Envelope) *Envelope {
	switch string(env.Payload) {
	case `"slow"`:
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	case `"fail"`:
		return &Envelope{Type: TypeFoundSuccessor, Error: "no such key"}
	case `"none"`:
		return nil
	}
	return &Envelope{Type: TypeFoundSuccessor, Payload: env.Payload}
}

func request(from Peer, id uint64, payload string) *Envelope {
	return &Envelope{Type: TypeFindSuccessor, ID: id, From: from, Key: nodeID(99), Payload: json.RawMessage(payload)}
}

// wsNode is a WS transport mounted on a real HTTP server on 127.0.0.1.
type wsNode struct {
	*WS
	srv  *http.Server
	logs *observer.ObservedLogs
}

// startWS starts a WS node on addr ("127.0.0.1:0" for a new port).
func startWS(t testing.TB, n int, addr string, h Handler, tweak ...func(*WSConfig)) *wsNode {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	log, logs := testLogger(t)
	cfg := WSConfig{Self: Peer{ID: nodeID(n), Addr: "ws://" + ln.Addr().String()}, Handler: h, Logger: log}
	for _, f := range tweak {
		f(&cfg)
	}
	tr, err := NewWS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(ReceivePattern, tr.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	w := &wsNode{WS: tr, srv: srv, logs: logs}
	t.Cleanup(w.stop)
	return w
}

func (w *wsNode) stop() {
	w.WS.Close()
	w.srv.Close()
}

// hostport returns the node's TCP address.
func (w *wsNode) hostport() string { return strings.TrimPrefix(w.self.Addr, "ws://") }

type coapNode struct {
	*CoAP
	logs *observer.ObservedLogs
}

// startCoAP starts a CoAP node on addr ("127.0.0.1:0" for a new port).
func startCoAP(t testing.TB, n int, addr string, h Handler, tweak ...func(*CoAPConfig)) *coapNode {
	t.Helper()
	log, logs := testLogger(t)
	cfg := CoAPConfig{Self: Peer{ID: nodeID(n)}, Listen: addr, Handler: h, Logger: log}
	for _, f := range tweak {
		f(&cfg)
	}
	tr, err := NewCoAP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return &coapNode{CoAP: tr, logs: logs}
}

// checkGoroutines fails t if, within a few seconds, the number of goroutines
// does not come back down to before.
func checkGoroutines(t testing.TB, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines left running, %d before:\n%s", n, before, buf)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventually polls cond for up to 5 s: for effects of other goroutines.
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// ctxTimeout returns a context that ends after d, cancelled at cleanup.
func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
