package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pair is two nodes on one transport: a calls b.
type pair struct {
	a      Transport
	aSelf  Peer
	aStats func() Stats
	b      Peer
	bStats func() Stats
	// nowhere is an address of the same scheme where nothing listens.
	nowhere string
}

type kind struct {
	name string
	pair func(t *testing.T, ha, hb Handler) pair
}

var kinds = []kind{
	{"mem", func(t *testing.T, ha, hb Handler) pair {
		n := NewMemNetwork()
		a, err := n.Transport(Peer{ID: nodeID(1), Addr: "mem://a"}, ha)
		if err != nil {
			t.Fatal(err)
		}
		b, err := n.Transport(Peer{ID: nodeID(2), Addr: "mem://b"}, hb)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close(); b.Close() })
		return pair{a, a.self, a.Stats, b.self, b.Stats, "mem://nowhere"}
	}},
	{"ws", func(t *testing.T, ha, hb Handler) pair {
		a := startWS(t, 1, "127.0.0.1:0", ha)
		b := startWS(t, 2, "127.0.0.1:0", hb)
		return pair{a, a.self, a.Stats, b.self, b.Stats, "ws://127.0.0.1:1"}
	}},
	{"coap", func(t *testing.T, ha, hb Handler) pair {
		a := startCoAP(t, 1, "127.0.0.1:0", ha)
		b := startCoAP(t, 2, "127.0.0.1:0", hb)
		return pair{a, a.self, a.Stats, b.self, b.Stats, "coap://127.0.0.1:1"}
	}},
}

func forEachKind(t *testing.T, f func(t *testing.T, k kind)) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) { f(t, k) })
	}
}

func TestCallAndSend(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		gotA := make(chan *Envelope, 4)
		gotB := make(chan *Envelope, 4)
		ha := func(ctx context.Context, env *Envelope) *Envelope { gotA <- env; return nil }
		handledB := make(chan uint64, 8)
		hb := func(ctx context.Context, env *Envelope) *Envelope {
			handledB <- env.ID
			if env.Type == TypeNotifySuccessor {
				gotB <- env
				return nil
			}
			return echo(ctx, env)
		}
		p := k.pair(t, ha, hb)
		ctx := ctxTimeout(t, 10*time.Second)

		req := request(p.aSelf, 41, `{"n":1}`)
		req.To = p.b
		reply, err := p.a.Call(ctx, p.b.Addr, req)
		if err != nil {
			t.Fatal(err)
		}
		if reply.ID != 41 || reply.Type != TypeFoundSuccessor || string(reply.Payload) != `{"n":1}` || reply.From != p.b {
			t.Fatalf("reply %+v", reply)
		}

		// One way: the handler gets it, nothing comes back.
		note := &Envelope{Type: TypeNotifySuccessor, ID: 42, From: p.aSelf}
		if err := p.a.Send(ctx, p.b.Addr, note); err != nil {
			t.Fatal(err)
		}
		if got := <-gotB; got.ID != 42 || got.From != p.aSelf {
			t.Fatalf("b got %+v", got)
		}

		// A Send whose handler replies: over a connection (WS, mem) the reply
		// reaches a's handler; over CoAP the handler runs and its reply is
		// dropped (a one-way POST has nothing to carry it back).
		if err := p.a.Send(ctx, p.b.Addr, request(p.aSelf, 43, `"sent"`)); err != nil {
			t.Fatal(err)
		}
		for ran := false; !ran; {
			select {
			case id := <-handledB:
				ran = id == 43
			case <-ctx.Done():
				t.Fatal("b's handler never saw the Send")
			}
		}
		if k.name == "coap" {
			select {
			case got := <-gotA:
				t.Fatalf("a got %+v for a one-way message", got)
			case <-time.After(100 * time.Millisecond):
			}
		} else {
			select {
			case got := <-gotA:
				if got.ID != 43 || got.Type != TypeFoundSuccessor || string(got.Payload) != `"sent"` {
					t.Fatalf("a got %+v", got)
				}
			case <-ctx.Done():
				t.Fatal("the reply to a Send never reached the sender's handler")
			}
		}
		sa, sb := p.aStats(), p.bStats()
		if sa.Calls != 1 || sa.Sent < 3 || sb.Received < 3 || sa.BytesOut == 0 || sb.BytesIn == 0 {
			t.Errorf("stats a %+v b %+v", sa, sb)
		}
	})
}

// TestConcurrentCalls runs 32 goroutines × 100 calls on one connection and
// checks each reply belongs to its request.
func TestConcurrentCalls(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		p := k.pair(t, echo, echo)
		ctx := ctxTimeout(t, 60*time.Second)
		var next atomic.Uint64
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for g := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 100 {
					id := next.Add(1)
					payload := fmt.Sprintf(`{"g":%d,"id":%d}`, g, id)
					reply, err := p.a.Call(ctx, p.b.Addr, request(p.aSelf, id, payload))
					if err != nil {
						errs <- err
						return
					}
					if reply.ID != id || string(reply.Payload) != payload {
						errs <- fmt.Errorf("call %d got reply %d %s", id, reply.ID, reply.Payload)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if s := p.aStats(); s.Calls != 3200 || s.Retries != 0 {
			t.Errorf("stats %+v", s)
		}
	})
}

func TestCallDeadline(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		p := k.pair(t, echo, echo)
		ctx := ctxTimeout(t, 10*time.Second)
		// Warm the connection so the goroutine count below is steady.
		if _, err := p.a.Call(ctx, p.b.Addr, request(p.aSelf, 1, `1`)); err != nil {
			t.Fatal(err)
		}
		before := runtime.NumGoroutine()
		for i := range 3 {
			short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			start := time.Now()
			_, err := p.a.Call(short, p.b.Addr, request(p.aSelf, uint64(10+i), `"slow"`))
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("slow call: %v, want DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("slow call took %v with a 100ms deadline", d)
			}
		}
		// The connection still works, and the timed-out calls left nothing.
		if r, err := p.a.Call(ctx, p.b.Addr, request(p.aSelf, 20, `2`)); err != nil || r.ID != 20 {
			t.Fatalf("call after timeouts: %v %v", r, err)
		}
		if s := p.aStats(); s.CallTimeouts != 3 || s.Retries != 0 {
			t.Errorf("stats %+v", s)
		}
		// The slow handlers are still running on b (they end at Close);
		// a itself must not keep anything per timed-out call.
		if k.name != "mem" {
			checkGoroutines(t, before+3*2)
		}
	})
}

func TestDefaultDeadlineAndRetries(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		var p pair
		switch k.name {
		case "mem":
			n := NewMemNetwork(MemCall(CallOptions{Timeout: 150 * time.Millisecond, Backoff: time.Millisecond}))
			a, _ := n.Transport(Peer{ID: nodeID(1), Addr: "mem://a"}, echo)
			b, _ := n.Transport(Peer{ID: nodeID(2), Addr: "mem://b"}, echo)
			t.Cleanup(func() { a.Close(); b.Close() })
			p = pair{a, a.self, a.Stats, b.self, b.Stats, "mem://nowhere"}
		case "ws":
			a := startWS(t, 1, "127.0.0.1:0", echo, func(c *WSConfig) { c.Call = CallOptions{Timeout: 150 * time.Millisecond, Backoff: time.Millisecond} })
			b := startWS(t, 2, "127.0.0.1:0", echo)
			p = pair{a, a.self, a.Stats, b.self, b.Stats, "ws://127.0.0.1:1"}
		case "coap":
			a := startCoAP(t, 1, "127.0.0.1:0", echo, func(c *CoAPConfig) { c.Call = CallOptions{Timeout: 150 * time.Millisecond, Backoff: time.Millisecond} })
			b := startCoAP(t, 2, "127.0.0.1:0", echo)
			p = pair{a, a.self, a.Stats, b.self, b.Stats, "coap://127.0.0.1:1"}
		}
		// No deadline on ctx: each attempt gets Timeout, then 2 retries.
		start := time.Now()
		_, err := p.a.Call(context.Background(), p.b.Addr, request(p.aSelf, 1, `"slow"`))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("slow call: %v", err)
		}
		if d := time.Since(start); d < 400*time.Millisecond || d > 3*time.Second {
			t.Errorf("3 attempts of 150ms took %v", d)
		}
		if s := p.aStats(); s.Retries != 2 || s.CallTimeouts != 3 {
			t.Errorf("stats %+v", s)
		}
		// Nobody there: connection errors (or silence) are retried too.
		_, err = p.a.Call(context.Background(), p.nowhere, request(p.aSelf, 2, `1`))
		if !errors.Is(err, ErrUnreachable) && !errors.Is(err, ErrConnLost) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call to nowhere: %v", err)
		}
		if s := p.aStats(); s.Retries != 4 {
			t.Errorf("retries %d, want 4", s.Retries)
		}
	})
}

func TestErrorReplyIsNotRetried(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		p := k.pair(t, echo, echo)
		_, err := p.a.Call(ctxTimeout(t, 5*time.Second), p.b.Addr, request(p.aSelf, 5, `"fail"`))
		var re *RemoteError
		if !errors.As(err, &re) || re.ID != 5 || !strings.Contains(re.Msg, "no such key") || re.From != p.b {
			t.Fatalf("err = %v (%+v)", err, re)
		}
		if s := p.aStats(); s.Retries != 0 {
			t.Errorf("retried an error reply: %+v", s)
		}
	})
}

func TestOversizeEnvelope(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		p := k.pair(t, echo, echo)
		ctx := ctxTimeout(t, 5*time.Second)
		big := request(p.aSelf, 1, `"`+strings.Repeat("x", DefaultMaxSize)+`"`)
		if _, err := p.a.Call(ctx, p.b.Addr, big); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "limit") {
			t.Fatalf("oversize call: %v", err)
		}
		if err := p.a.Send(ctx, p.b.Addr, big); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("oversize send: %v", err)
		}
		if r, err := p.a.Call(ctx, p.b.Addr, request(p.aSelf, 2, `2`)); err != nil || r.ID != 2 {
			t.Fatalf("after oversize: %v %v", r, err)
		}
	})
}

// TestLargeEnvelope sends a 20 KiB envelope and gets a 20 KiB reply (CoAP
// moves both block-wise).
func TestLargeEnvelope(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		p := k.pair(t, echo, echo)
		payload := `"` + strings.Repeat("0123456789abcdef", 20<<10/16) + `"`
		r, err := p.a.Call(ctxTimeout(t, 10*time.Second), p.b.Addr, request(p.aSelf, 3, payload))
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Payload) != payload {
			t.Fatalf("payload came back as %d bytes", len(r.Payload))
		}
	})
}

func TestDuplicateCallID(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		if k.name == "coap" {
			t.Skip("CoAP correlates by token; equal ids do not collide")
		}
		p := k.pair(t, echo, echo)
		ctx := ctxTimeout(t, 5*time.Second)
		done := make(chan error, 1)
		go func() {
			_, err := p.a.Call(ctx, p.b.Addr, request(p.aSelf, 9, `"slow"`))
			done <- err
		}()
		// Whichever of the two registers second is refused.
		time.Sleep(50 * time.Millisecond)
		_, err := p.a.Call(ctx, p.b.Addr, request(p.aSelf, 9, `1`))
		if !errors.Is(err, ErrDuplicateID) {
			if first := <-done; !errors.Is(first, ErrDuplicateID) {
				t.Fatalf("two calls with id 9: %v and %v", first, err)
			}
		}
	})
}

func TestCloseEndsEverything(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		before := runtime.NumGoroutine()
		var closers []func()
		var a Transport
		var self Peer
		var bAddr string
		switch k.name {
		case "mem":
			n := NewMemNetwork()
			ta, _ := n.Transport(Peer{ID: nodeID(1), Addr: "mem://a"}, echo)
			tb, _ := n.Transport(Peer{ID: nodeID(2), Addr: "mem://b"}, echo)
			a, self, bAddr = ta, ta.self, "mem://b"
			closers = []func(){func() { ta.Close() }, func() { tb.Close() }}
		case "ws":
			ta := startWS(t, 1, "127.0.0.1:0", echo)
			tb := startWS(t, 2, "127.0.0.1:0", echo)
			a, self, bAddr = ta, ta.self, tb.self.Addr
			closers = []func(){ta.stop, tb.stop}
		case "coap":
			ta := startCoAP(t, 1, "127.0.0.1:0", echo)
			tb := startCoAP(t, 2, "127.0.0.1:0", echo)
			a, self, bAddr = ta, ta.self, tb.self.Addr
			closers = []func(){func() { ta.Close() }, func() { tb.Close() }}
		}
		ctx := ctxTimeout(t, 10*time.Second)
		for i := range 20 {
			if _, err := a.Call(ctx, bAddr, request(self, uint64(i), `1`)); err != nil {
				t.Fatal(err)
			}
		}
		// A call in flight when the transport closes ends with ErrClosed.
		inflight := make(chan error, 1)
		go func() {
			_, err := a.Call(ctx, bAddr, request(self, 100, `"slow"`))
			inflight <- err
		}()
		time.Sleep(50 * time.Millisecond)
		for _, c := range closers {
			c()
		}
		select {
		case err := <-inflight:
			if err == nil {
				t.Error("in-flight call succeeded after Close")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("in-flight call still waiting after Close")
		}
		if _, err := a.Call(ctx, bAddr, request(self, 101, `1`)); !errors.Is(err, ErrClosed) {
			t.Errorf("call after Close: %v", err)
		}
		checkGoroutines(t, before)
	})
}

func TestHandlerPanicIsAnswered(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		p := k.pair(t, echo, func(ctx context.Context, env *Envelope) *Envelope {
			if string(env.Payload) == `"panic"` {
				panic("boom")
			}
			return echo(ctx, env)
		})
		ctx := ctxTimeout(t, 5*time.Second)
		_, err := p.a.Call(ctx, p.b.Addr, request(p.aSelf, 1, `"panic"`))
		var re *RemoteError
		if !errors.As(err, &re) || re.Type != TypeError {
			t.Fatalf("call into a panicking handler: %v", err)
		}
		if _, err := p.a.Call(ctx, p.b.Addr, request(p.aSelf, 2, `2`)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestToOtherNodeRefused(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		p := k.pair(t, echo, echo)
		req := request(p.aSelf, 4, `1`)
		req.To = Peer{ID: nodeID(77), Addr: p.b.Addr}
		_, err := p.a.Call(ctxTimeout(t, 5*time.Second), p.b.Addr, req)
		// WS refuses at the handshake (the path names node 77), the others
		// in the envelope check.
		var re *RemoteError
		if !errors.As(err, &re) && !errors.Is(err, ErrUnreachable) {
			t.Fatalf("call to the wrong node: %v", err)
		}
		if !strings.Contains(err.Error(), nodeID(77)) {
			t.Errorf("error does not name the node: %v", err)
		}
	})
}

func TestPayloadKeptExact(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		p := k.pair(t, echo, echo)
		payload := json.RawMessage(`{"pred":{"id":"` + nodeID(3) + `","addr":"ws://[::1]:80"},"succs":[],"data":"\u00e9\n"}`)
		r, err := p.a.Call(ctxTimeout(t, 5*time.Second), p.b.Addr, request(p.aSelf, 1, string(payload)))
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Payload) != string(payload) {
			t.Fatalf("payload %s", r.Payload)
		}
	})
}

// TestEnvelopeAtTheLimit sends an envelope of exactly DefaultMaxSize bytes:
// it must get through every transport (CoAP: 64 blocks).
func TestEnvelopeAtTheLimit(t *testing.T) {
	forEachKind(t, func(t *testing.T, k kind) {
		got := make(chan int, 1)
		p := k.pair(t, echo, func(ctx context.Context, env *Envelope) *Envelope {
			got <- len(env.Payload)
			return &Envelope{Type: TypeFoundSuccessor}
		})
		env := request(p.aSelf, 1, `""`)
		b, _ := testCodec.Encode(env)
		env.Payload = json.RawMessage(`"` + strings.Repeat("y", DefaultMaxSize-len(b)) + `"`)
		if b, err := testCodec.Encode(env); err != nil || len(b) != DefaultMaxSize {
			t.Fatalf("test envelope: %d bytes, %v", len(b), err)
		}
		if _, err := p.a.Call(ctxTimeout(t, 10*time.Second), p.b.Addr, env); err != nil {
			t.Fatal(err)
		}
		if n := <-got; n != len(env.Payload) {
			t.Errorf("payload arrived as %d bytes", n)
		}
	})
}
