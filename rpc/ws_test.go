package rpc

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap/zapcore"
)

// rawWS opens a plain WebSocket to a node, bypassing the transport.
func rawWS(t *testing.T, n *wsNode, id string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial("ws://"+n.hostport()+"/node/"+id+"/receive", nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (HTTP %d)", err, status)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readEnvelope(t *testing.T, c *websocket.Conn) *Envelope {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	env, err := testCodec.Decode(data)
	if err != nil {
		t.Fatalf("reply %s: %v", data, err)
	}
	return env
}

// TestWSMalformedFrames sends garbage on a raw connection: each frame whose
// id can be read gets an error reply, the rest are logged, and the node
// keeps serving on the same connection.
func TestWSMalformedFrames(t *testing.T) {
	b := startWS(t, 2, "127.0.0.1:0", echo)
	c := rawWS(t, b, b.self.ID)
	from := `"from":{"id":"` + nodeID(1) + `","addr":"ws://127.0.0.1:9"}`
	frames := []struct {
		frame  string
		id     uint64 // 0: no reply expected
		reason string
	}{
		{`not json at all`, 0, ""},
		{`[1,2,3]`, 0, ""},
		{`{"type":"BOGUS","id":"7",` + from + `}`, 7, "unknown message type"},
		{`{"type":"MESSAGE","id":"8","from":{"id":"XYZ","addr":"ws://a:1"}}`, 8, "from.id"},
		{`{"type":"MESSAGE","id":"9",` + from + `,"extra":true}`, 9, `unknown field "extra"`},
		{`{"type":"MESSAGE","id":"10",` + from + `}` + "garbage", 0, ""},
	}
	for _, f := range frames {
		if err := c.WriteMessage(websocket.TextMessage, []byte(f.frame)); err != nil {
			t.Fatal(err)
		}
		if f.id == 0 {
			continue
		}
		r := readEnvelope(t, c)
		if r.Type != TypeError || r.ID != f.id || !strings.Contains(r.Error, f.reason) || r.From != b.self {
			t.Errorf("frame %s: reply %+v", f.frame, r)
		}
	}
	// The same connection still serves a good request.
	good := `{"type":"FIND_SUCCESSOR","id":"11",` + from + `,"payload":{"ok":1}}`
	if err := c.WriteMessage(websocket.BinaryMessage, []byte(good)); err != nil {
		t.Fatal(err)
	}
	if r := readEnvelope(t, c); r.ID != 11 || r.Type != TypeFoundSuccessor || string(r.Payload) != `{"ok":1}` {
		t.Fatalf("good frame: %+v", r)
	}
	// Frames are handled concurrently: the last bad one may still be going.
	eventually(func() bool { return b.Stats().DecodeErrors >= 6 })
	if s := b.Stats(); s.DecodeErrors != 6 || s.ErrorReplies != 3 || s.Received != 1 {
		t.Errorf("stats %+v", s)
	}
	if !hasLog(b.logs, zapcore.WarnLevel, "undecodable request") {
		t.Error("no warning logged for the undecodable frames")
	}
}

// TestWSOversizeFrame: a frame over the limit closes that connection only.
func TestWSOversizeFrame(t *testing.T) {
	b := startWS(t, 2, "127.0.0.1:0", echo)
	c := rawWS(t, b, AnyNode)
	if err := c.WriteMessage(websocket.TextMessage, make([]byte, DefaultMaxSize+1)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := c.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("after an oversize frame: %v, want close 1009", err)
	}
	a := startWS(t, 1, "127.0.0.1:0", echo)
	if _, err := a.Call(ctxTimeout(t, 5*time.Second), b.self.Addr, request(a.self, 1, `1`)); err != nil {
		t.Fatalf("node unhealthy after an oversize frame: %v", err)
	}
	if !eventually(func() bool { return hasLog(b.logs, zapcore.WarnLevel, "over the size limit") }) {
		t.Error("oversize frame not logged")
	}
}

func TestWSPathID(t *testing.T) {
	b := startWS(t, 0xbeef, "127.0.0.1:0", echo)
	for id, want := range map[string]int{b.self.ID: 101, AnyNode: 101, nodeID(3): 404, "ANY": 404, strings.ToUpper(b.self.ID): 404} {
		_, resp, err := websocket.DefaultDialer.Dial("ws://"+b.hostport()+"/node/"+id+"/receive", nil)
		got := 0
		if resp != nil {
			got = resp.StatusCode
		}
		if got != want {
			t.Errorf("/node/%s/receive: HTTP %d (%v), want %d", id, got, err, want)
		}
	}
	// Mounted without a {id} pattern, the path is still checked.
	rec := &statusRecorder{header: http.Header{}}
	req, _ := http.NewRequest("GET", "/rpc/node/"+nodeID(3)+"/receive", nil)
	b.Handler().ServeHTTP(rec, req)
	if rec.status != 404 {
		t.Errorf("unpatterned mount: HTTP %d", rec.status)
	}
}

type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(s int)           { r.status = s }

// TestWSPeerRestart: the peer goes away and comes back on the same address;
// the next call redials without the caller noticing.
func TestWSPeerRestart(t *testing.T) {
	a := startWS(t, 1, "127.0.0.1:0", echo)
	b := startWS(t, 2, "127.0.0.1:0", echo)
	ctx := ctxTimeout(t, 10*time.Second)
	if _, err := a.Call(ctx, b.self.Addr, request(a.self, 1, `1`)); err != nil {
		t.Fatal(err)
	}
	addr := b.hostport()
	b.stop()
	b2 := startWS(t, 2, addr, echo)
	for i := range 5 {
		r, err := a.Call(ctx, b2.self.Addr, request(a.self, uint64(10+i), `2`))
		if err != nil || r.ID != uint64(10+i) {
			t.Fatalf("call %d after restart: %v %v", i, r, err)
		}
	}
	if s := a.Stats(); s.Dials != 2 {
		t.Errorf("dials %d, want 2 (one per incarnation): %+v", s.Dials, s)
	}
	// A peer that is down stays an error, after the retries.
	b2.stop()
	_, err := a.Call(ctx, b2.self.Addr, request(a.self, 20, `3`))
	if !errors.Is(err, ErrUnreachable) && !errors.Is(err, ErrConnLost) {
		t.Fatalf("call to a stopped peer: %v", err)
	}
}

// TestWSConnectionReuse: many calls and sends, one connection each way.
func TestWSConnectionReuse(t *testing.T) {
	a := startWS(t, 1, "127.0.0.1:0", echo)
	b := startWS(t, 2, "127.0.0.1:0", echo)
	ctx := ctxTimeout(t, 10*time.Second)
	for i := range 50 {
		if _, err := a.Call(ctx, b.self.Addr, request(a.self, uint64(i), `1`)); err != nil {
			t.Fatal(err)
		}
		if err := a.Send(ctx, b.self.Addr, &Envelope{Type: TypeNotifySuccessor, ID: uint64(i), From: a.self}); err != nil {
			t.Fatal(err)
		}
	}
	if s := a.Stats(); s.Dials != 1 {
		t.Errorf("dials %d, want 1", s.Dials)
	}
	a.mu.Lock()
	out := len(a.out)
	a.mu.Unlock()
	b.mu.Lock()
	in := len(b.in)
	b.mu.Unlock()
	if out != 1 || in != 1 {
		t.Errorf("a has %d outgoing, b %d incoming connections", out, in)
	}
}

// TestWSKeepalive: pings keep an idle connection open across several read
// deadlines.
func TestWSKeepalive(t *testing.T) {
	fast := func(c *WSConfig) { c.PingInterval = 100 * time.Millisecond }
	a := startWS(t, 1, "127.0.0.1:0", echo, fast)
	b := startWS(t, 2, "127.0.0.1:0", echo, fast)
	ctx := ctxTimeout(t, 10*time.Second)
	if _, err := a.Call(ctx, b.self.Addr, request(a.self, 1, `1`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(800 * time.Millisecond) // over 2 read deadlines of 300ms
	if _, err := a.Call(ctx, b.self.Addr, request(a.self, 2, `1`)); err != nil {
		t.Fatal(err)
	}
	if s := a.Stats(); s.Dials != 1 {
		t.Errorf("the idle connection was dropped: %d dials", s.Dials)
	}
}

// TestWSSilentPeerDropped: a peer that stops answering pings is dropped.
func TestWSSilentPeerDropped(t *testing.T) {
	b := startWS(t, 2, "127.0.0.1:0", echo, func(c *WSConfig) { c.PingInterval = 30 * time.Millisecond })
	c := rawWS(t, b, AnyNode) // sends nothing, not even pings
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Fatal("read succeeded")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		n := len(b.in)
		b.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("silent connection still open")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWSConfigErrors(t *testing.T) {
	h := func(context.Context, *Envelope) *Envelope { return nil }
	for _, cfg := range []WSConfig{
		{Self: Peer{ID: "nope", Addr: "ws://a:1"}, Handler: h},
		{Self: Peer{ID: nodeID(1), Addr: "coap://a:1"}, Handler: h},
		{Self: Peer{ID: nodeID(1), Addr: "ws://a:1"}},
	} {
		if _, err := NewWS(cfg); err == nil {
			t.Errorf("NewWS(%+v) succeeded", cfg)
		}
	}
}
