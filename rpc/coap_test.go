package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/mux"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	"github.com/plgd-dev/go-coap/v3/udp/client"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
	"go.uber.org/zap/zapcore"
)

// rawCoAP is a plain go-coap client, bypassing the transport.
func rawCoAP(t *testing.T, n *coapNode) *client.Conn {
	t.Helper()
	cc, err := udp.Dial(n.LocalAddr().String(), options.WithErrors(func(error) {}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// post sends one POST and returns the response code and body.
func post(t *testing.T, cc *client.Conn, path string, cf message.MediaType, body []byte, setup ...func(*pool.Message)) (codes.Code, []byte) {
	t.Helper()
	ctx := ctxTimeout(t, 10*time.Second)
	req, err := cc.NewPostRequest(ctx, path, cf, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.ReleaseMessage(req)
	for _, f := range setup {
		f(req)
	}
	resp, err := cc.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer cc.ReleaseMessage(resp)
	data, err := resp.ReadBody()
	if err != nil {
		t.Fatal(err)
	}
	return resp.Code(), data
}

// TestCoAPMalformedRequests sends garbage POSTs: each gets a 4.xx with an
// error reply, and the node keeps serving.
func TestCoAPMalformedRequests(t *testing.T) {
	b := startCoAP(t, 2, "127.0.0.1:0", echo)
	cc := rawCoAP(t, b)
	path := "/node/" + b.self.ID + "/receive"
	from := `"from":{"id":"` + nodeID(1) + `","addr":"coap://127.0.0.1:9"}`
	cases := []struct {
		path   string
		cf     message.MediaType
		body   string
		code   codes.Code
		id     uint64
		reason string
	}{
		{path, message.AppJSON, "\x00\xffgarbage", codes.BadRequest, 0, "not valid JSON"},
		{path, message.AppJSON, ``, codes.BadRequest, 0, "not valid JSON"},
		{path, message.AppJSON, `{"type":"BOGUS","id":"7",` + from + `}`, codes.BadRequest, 7, "unknown message type"},
		{path, message.AppJSON, `{"type":"MESSAGE","id":"8",` + from + `,"key":"12"}`, codes.BadRequest, 8, "key"},
		{path, message.TextPlain, `{}`, codes.UnsupportedMediaType, 0, "application/json"},
		{"/node/" + nodeID(3) + "/receive", message.AppJSON, `{"type":"MESSAGE","id":"9",` + from + `}`, codes.NotFound, 9, "no node " + nodeID(3)},
		{path, message.AppJSON, `{"type":"MESSAGE","id":"10",` + from + `,"to":{"id":"` + nodeID(4) + `","addr":""}}`, codes.NotFound, 10, "addressed to node " + nodeID(4)},
	}
	for _, c := range cases {
		code, data := post(t, cc, c.path, c.cf, []byte(c.body))
		if code != c.code {
			t.Errorf("%q: CoAP %v, want %v", c.body, code, c.code)
			continue
		}
		r, err := testCodec.Decode(data)
		if err != nil || r.Type != TypeError || r.ID != c.id || !strings.Contains(r.Error, c.reason) {
			t.Errorf("%q: reply %s (%v)", c.body, data, err)
		}
	}
	// Not our route, and not our method: go-coap's and our defaults.
	if code, _ := post(t, cc, "/nowhere", message.AppJSON, []byte(`{}`)); code != codes.NotFound {
		t.Errorf("/nowhere: %v", code)
	}
	ctx := ctxTimeout(t, 5*time.Second)
	resp, err := cc.Get(ctx, path)
	if err != nil || resp.Code() != codes.MethodNotAllowed {
		t.Errorf("GET: %v %v", resp, err)
	}
	// Still serving, on the same client connection.
	code, data := post(t, cc, path, message.AppJSON, []byte(`{"type":"FIND_SUCCESSOR","id":"11",`+from+`,"payload":[1]}`))
	if r, err := testCodec.Decode(data); code != codes.Changed || err != nil || r.ID != 11 || string(r.Payload) != `[1]` {
		t.Fatalf("good request: %v %s %v", code, data, err)
	}
	if s := b.Stats(); s.DecodeErrors != 4 || s.ErrorReplies < 7 {
		t.Errorf("stats %+v", s)
	}
	if !hasLog(b.logs, zapcore.WarnLevel, "undecodable request") {
		t.Error("no warning logged")
	}
}

// TestCoAPOversizeUpload: a block-wise upload past the limit is refused with
// 4.13 as soon as it passes it, and the node stays healthy.
func TestCoAPOversizeUpload(t *testing.T) {
	b := startCoAP(t, 2, "127.0.0.1:0", echo)
	cc := rawCoAP(t, b)
	path := "/node/" + b.self.ID + "/receive"
	for _, size := range []int{DefaultMaxSize + 1, 100 << 10, 1 << 20} {
		withoutSize1 := func(m *pool.Message) { m.Remove(message.Size1) }
		for _, setup := range [][]func(*pool.Message){nil, {withoutSize1}} {
			code, data := post(t, cc, path, message.AppJSON, bytes.Repeat([]byte("x"), size), setup...)
			if code != codes.RequestEntityTooLarge {
				t.Fatalf("%d bytes: CoAP %v %s", size, code, data)
			}
			if r, err := testCodec.Decode(data); err != nil || !strings.Contains(r.Error, "too large") {
				t.Errorf("%d bytes: reply %s (%v)", size, data, err)
			}
		}
	}
	a := startCoAP(t, 1, "127.0.0.1:0", echo)
	if _, err := a.Call(ctxTimeout(t, 5*time.Second), b.self.Addr, request(a.self, 1, `1`)); err != nil {
		t.Fatalf("after oversize uploads: %v", err)
	}
	if !hasLog(b.logs, zapcore.WarnLevel, "over the size limit") {
		t.Error("not logged")
	}
}

// TestCoAPMessageIDReuse is the regression test for go-coap's response
// cache: a request that reuses an earlier message ID (as every peer does
// after 65,536 requests) must get its own response, not the cached one.
func TestCoAPMessageIDReuse(t *testing.T) {
	var runs atomic.Int64
	b := startCoAP(t, 2, "127.0.0.1:0", func(ctx context.Context, env *Envelope) *Envelope {
		runs.Add(1)
		return echo(ctx, env)
	})
	cc := rawCoAP(t, b)
	path := "/node/" + b.self.ID + "/receive"
	body := func(id int) []byte {
		return fmt.Appendf(nil, `{"type":"FIND_SUCCESSOR","id":"%d","from":{"id":"%s","addr":"coap://127.0.0.1:9"}}`, id, nodeID(1))
	}
	sameMID := func(m *pool.Message) { m.SetMessageID(4242) }
	for id := 1; id <= 3; id++ {
		code, data := post(t, cc, path, message.AppJSON, body(id), sameMID)
		r, err := testCodec.Decode(data)
		if code != codes.Changed || err != nil || r.ID != uint64(id) {
			t.Fatalf("request %d with a reused message ID got %v %s", id, code, data)
		}
	}
	// A true retransmission (same message ID and token) is answered from
	// the cache, without running the handler again.
	token := message.Token("tok-1")
	retrans := func(m *pool.Message) { m.SetMessageID(777); m.SetToken(token) }
	before := runs.Load()
	for range 2 {
		if code, data := post(t, cc, path, message.AppJSON, body(50), retrans); code != codes.Changed || !bytes.Contains(data, []byte(`"50"`)) {
			t.Fatalf("retransmission: %v %s", code, data)
		}
	}
	if n := runs.Load() - before; n != 1 {
		t.Errorf("the handler ran %d times for one request sent twice", n)
	}
}

func TestRespCache(t *testing.T) {
	c := newRespCache(time.Minute, 3)
	msg := func(token string, code codes.Code) *pool.Message {
		m := pool.NewMessage(context.Background())
		m.SetToken(message.Token(token))
		m.SetCode(code)
		m.SetType(message.Acknowledgement)
		m.SetMessageID(1)
		return m
	}
	if err := c.Store("1", msg("a", codes.Changed)); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Load("1", msg("a", codes.Empty)); !ok {
		t.Error("miss for the same token")
	}
	if ok, _ := c.Load("1", msg("b", codes.Empty)); ok {
		t.Error("hit for another token under a reused message ID")
	}
	for i := 2; i <= 5; i++ {
		c.Store(fmt.Sprint(i), msg("t", codes.Changed))
	}
	if len(c.m) != 3 {
		t.Errorf("%d entries, max 3", len(c.m))
	}
	if ok, _ := c.Load("1", msg("a", codes.Empty)); ok {
		t.Error("oldest entry not evicted")
	}
	c.CheckExpirations(time.Now().Add(2 * time.Minute))
	if len(c.m) != 0 {
		t.Errorf("%d entries after expiry", len(c.m))
	}
}

// TestCoAPPeerRestart: the peer goes away and comes back on the same port.
func TestCoAPPeerRestart(t *testing.T) {
	a := startCoAP(t, 1, "127.0.0.1:0", echo)
	b := startCoAP(t, 2, "127.0.0.1:0", echo)
	ctx := ctxTimeout(t, 10*time.Second)
	if _, err := a.Call(ctx, b.self.Addr, request(a.self, 1, `1`)); err != nil {
		t.Fatal(err)
	}
	addr := b.LocalAddr().String()
	b.Close()
	// Down: refused (ICMP) or silent, after the retries.
	_, err := a.Call(ctxTimeout(t, 3*time.Second), b.self.Addr, request(a.self, 2, `1`))
	if err == nil {
		t.Fatal("call to a stopped peer succeeded")
	}
	b2 := startCoAP(t, 2, addr, echo)
	for i := range 5 {
		r, err := a.Call(ctx, b2.self.Addr, request(a.self, uint64(10+i), `2`))
		if err != nil || r.ID != uint64(10+i) {
			t.Fatalf("call %d after restart: %v %v", i, r, err)
		}
	}
}

// TestCoAPRouter: the node can serve its own routes next to the RPC one.
func TestCoAPRouter(t *testing.T) {
	b := startCoAP(t, 2, "127.0.0.1:0", echo)
	got := make(chan string, 1)
	err := b.Router().Handle("/object/{id}/send", mux.HandlerFunc(func(w mux.ResponseWriter, r *mux.Message) {
		body, _ := r.ReadBody()
		got <- r.RouteParams.Vars["id"] + ":" + string(body)
		w.SetResponse(codes.Created, message.TextPlain, nil)
	}))
	if err != nil {
		t.Fatal(err)
	}
	cc := rawCoAP(t, b)
	if code, _ := post(t, cc, "/object/thing-1/send", message.AppJSON, []byte(`{"t":21.5}`)); code != codes.Created {
		t.Fatalf("device route: %v", code)
	}
	if s := <-got; s != `thing-1:{"t":21.5}` {
		t.Errorf("device route got %q", s)
	}
}

// TestCoAPSlowHandlerDoesNotBlockPeer: one slow request from a peer does
// not hold up the next ones (go-coap alone runs them one after another).
func TestCoAPSlowHandlerDoesNotBlockPeer(t *testing.T) {
	a := startCoAP(t, 1, "127.0.0.1:0", echo)
	b := startCoAP(t, 2, "127.0.0.1:0", echo)
	ctx := ctxTimeout(t, 10*time.Second)
	go a.Call(ctx, b.self.Addr, request(a.self, 1, `"slow"`))
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if _, err := a.Call(ctx, b.self.Addr, request(a.self, 2, `1`)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a fast call waited %v behind a slow one", d)
	}
}

func TestCoAPNoReply(t *testing.T) {
	a := startCoAP(t, 1, "127.0.0.1:0", echo)
	b := startCoAP(t, 2, "127.0.0.1:0", echo)
	_, err := a.Call(ctxTimeout(t, 5*time.Second), b.self.Addr, request(a.self, 1, `"none"`))
	if !errors.Is(err, ErrNoReply) {
		t.Fatalf("call answered with nothing: %v", err)
	}
}

func TestCoAPConfigErrors(t *testing.T) {
	h := func(context.Context, *Envelope) *Envelope { return nil }
	for _, cfg := range []CoAPConfig{
		{Self: Peer{ID: nodeID(1)}, Handler: h},                                                        // nowhere to listen
		{Self: Peer{ID: nodeID(1)}, Listen: "0.0.0.0:0", Handler: h},                                   // wildcard, no address
		{Self: Peer{ID: nodeID(1), Addr: "ws://127.0.0.1:1"}, Handler: h},                              // wrong scheme
		{Self: Peer{ID: "x", Addr: "coap://127.0.0.1:0"}, Handler: h},                                  // bad id
		{Self: Peer{ID: nodeID(1)}, Listen: "127.0.0.1:0"},                                             // no handler
		{Self: Peer{ID: nodeID(1)}, Listen: "256.0.0.1:0", Handler: h},                                 // bad listen address
		{Self: Peer{ID: nodeID(1), Addr: "coap://127.0.0.1:5683"}, Listen: "127.0.0.1:-1", Handler: h}, // bad port
	} {
		if tr, err := NewCoAP(cfg); err == nil {
			tr.Close()
			t.Errorf("NewCoAP(%+v) succeeded", cfg)
		}
	}
}

// TestCoAPSlowHandlerRetransmissions: the peer retransmits while a slow
// handler runs; the handler runs once and the call gets its answer.
func TestCoAPSlowHandlerRetransmissions(t *testing.T) {
	var runs atomic.Int64
	b := startCoAP(t, 2, "127.0.0.1:0", func(ctx context.Context, env *Envelope) *Envelope {
		runs.Add(1)
		time.Sleep(600 * time.Millisecond)
		return echo(ctx, env)
	})
	a := startCoAP(t, 1, "127.0.0.1:0", echo, func(c *CoAPConfig) {
		c.AckTimeout = 100 * time.Millisecond
		c.MaxRetransmit = 10
	})
	r, err := a.Call(ctxTimeout(t, 5*time.Second), b.self.Addr, request(a.self, 1, `1`))
	if err != nil || r.ID != 1 {
		t.Fatalf("slow call: %v %v", r, err)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("handler ran %d times", n)
	}
	if s := b.Stats(); s.Received != 1 {
		t.Errorf("b received %d envelopes", s.Received)
	}
}

// TestCoAPSendIsOneWay: a Send returns before the far side's handler has
// finished, for an envelope that fits in one block (non-confirmable) and for
// one that travels block-wise (confirmable); both arrive intact.
func TestCoAPSendIsOneWay(t *testing.T) {
	got := make(chan *Envelope, 3)
	release := make(chan struct{})
	b := startCoAP(t, 2, "127.0.0.1:0", func(ctx context.Context, env *Envelope) *Envelope {
		<-release // the handler cannot finish before the test says so
		got <- env
		return nil
	})
	a := startCoAP(t, 1, "127.0.0.1:0", echo)
	ctx := ctxTimeout(t, 10*time.Second)
	small := `"` + strings.Repeat("s", 100) + `"`
	blocks := `"` + strings.Repeat("b", 5000) + `"` // non-confirmable blocks
	large := `"` + strings.Repeat("l", 20000) + `"` // confirmable, block-wise
	for i, payload := range []string{small, blocks, large} {
		env := &Envelope{Type: TypeNotifySuccessor, ID: uint64(10 + i), From: a.self, Payload: []byte(payload)}
		if err := a.Send(ctx, b.self.Addr, env); err != nil {
			t.Fatalf("send of %d bytes: %v", len(payload), err)
		}
	}
	close(release)
	seen := map[uint64]string{}
	for len(seen) < 3 {
		select {
		case env := <-got:
			seen[env.ID] = string(env.Payload)
		case <-ctx.Done():
			t.Fatalf("the handler saw %d of 3 one-way messages", len(seen))
		}
	}
	if seen[10] != small || seen[11] != blocks || seen[12] != large {
		t.Errorf("payloads changed on the way: %d, %d and %d bytes", len(seen[10]), len(seen[11]), len(seen[12]))
	}
}

// TestCoAPOnewayWire decodes a one-way datagram with go-coap's own decoder:
// it is the non-confirmable POST any CoAP stack would send.
func TestCoAPOnewayWire(t *testing.T) {
	body := []byte(`{"type":"PING","id":1}`)
	d, err := onewayDatagram(4711, nodeID(3), body)
	if err != nil {
		t.Fatal(err)
	}
	m := pool.NewMessage(context.Background())
	if _, err := m.UnmarshalWithDecoder(coder.DefaultCoder, d); err != nil {
		t.Fatal(err)
	}
	path, _ := m.Path()
	qs, _ := m.Queries()
	cf, cfErr := m.ContentFormat()
	got, _ := m.ReadBody()
	if m.Type() != message.NonConfirmable || m.Code() != codes.POST || m.MessageID() != 4711 ||
		path != "/node/"+nodeID(3)+"/receive" || len(qs) != 1 || qs[0] != onewayQuery ||
		cfErr != nil || cf != message.AppJSON || !bytes.Equal(got, body) {
		t.Fatalf("decoded %v %v mid %d path %q queries %q format %v (%v) body %q", m.Type(), m.Code(), m.MessageID(), path, qs, cf, cfErr, got)
	}
}

// TestCoAPOnewayShape: the one-way path takes exactly the one-way POST (whole
// or in non-confirmable blocks) and leaves everything else (a confirmable
// message, another method or path, a response block, an option it does not
// know) to go-coap.
func TestCoAPOnewayShape(t *testing.T) {
	d, err := onewayDatagram(1, nodeID(3), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	decode := func(t *testing.T) *message.Message {
		var m message.Message
		m.Options = make(message.Options, 0, 8)
		if _, err := coder.DefaultCoder.Decode(bytes.Clone(d), &m); err != nil {
			t.Fatal(err)
		}
		return &m
	}
	if id, _, hasBlock, ok := onewayTarget(decode(t)); !ok || hasBlock || id != nodeID(3) {
		t.Fatalf("the one-way datagram: %q %v %v", id, hasBlock, ok)
	}
	for name, change := range map[string]func(*message.Message){
		"confirmable": func(m *message.Message) { m.Type = message.Confirmable },
		"GET":         func(m *message.Message) { m.Code = codes.GET },
		"no oneway":   func(m *message.Message) { m.Options = m.Options.Remove(message.URIQuery) },
		"other path":  func(m *message.Message) { m.Options[2].Value = []byte("send") },
		"long path": func(m *message.Message) {
			m.Options = m.Options.Add(message.Option{ID: message.URIPath, Value: []byte("x")})
		},
		"CBOR": func(m *message.Message) { m.Options[3].Value = []byte{byte(message.AppCBOR)} },
		"block2": func(m *message.Message) {
			m.Options = m.Options.Add(message.Option{ID: message.Block2, Value: []byte{0x0e}})
		},
		"two block1s": func(m *message.Message) {
			m.Options = m.Options.Add(message.Option{ID: message.Block1, Value: []byte{0x0e}})
			m.Options = m.Options.Add(message.Option{ID: message.Block1, Value: []byte{0x1e}})
		},
		"unknown": func(m *message.Message) { m.Options = m.Options.Add(message.Option{ID: 2049, Value: []byte{1}}) },
	} {
		m := decode(t)
		change(m)
		if id, _, _, ok := onewayTarget(m); ok {
			t.Errorf("%s: taken as a one-way message to %q", name, id)
		}
	}
}

// TestCoAPOnewayFromAnyClient: a one-way message from a stock go-coap
// client (its own token, message IDs and source port) is handled too.
func TestCoAPOnewayFromAnyClient(t *testing.T) {
	got := make(chan *Envelope, 1)
	b := startCoAP(t, 2, "127.0.0.1:0", func(ctx context.Context, env *Envelope) *Envelope {
		got <- env
		return nil
	})
	cc := rawCoAP(t, b)
	ctx := ctxTimeout(t, 10*time.Second)
	body, err := testCodec.Encode(&Envelope{Type: TypeNotifySuccessor, ID: 5, From: Peer{ID: nodeID(1), Addr: "coap://127.0.0.1:9"}})
	if err != nil {
		t.Fatal(err)
	}
	req, err := cc.NewPostRequest(ctx, "/node/"+nodeID(2)+"/receive", message.AppJSON, bytes.NewReader(body),
		message.Option{ID: message.URIQuery, Value: []byte(onewayQuery)})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.ReleaseMessage(req)
	req.SetType(message.NonConfirmable)
	if err := cc.WriteMessage(req); err != nil {
		t.Fatal(err)
	}
	select {
	case env := <-got:
		if env.ID != 5 || env.Type != TypeNotifySuccessor {
			t.Fatalf("got %+v", env)
		}
	case <-ctx.Done():
		t.Fatal("the handler never saw the message")
	}
}

// TestCoAPOnewayBlocks: non-confirmable blocks are put back together in
// order; a block out of order, a stranger's block, an expired or an
// overflowing assembly loses its message and nothing else.
func TestCoAPOnewayBlocks(t *testing.T) {
	tr := startCoAP(t, 2, "127.0.0.1:0", echo)
	body := bytes.Repeat([]byte("0123456789"), 300) // 3 blocks
	blocks, err := tr.onewayBlocks(nodeID(2), body)
	if err != nil || len(blocks) != 3 {
		t.Fatalf("%d blocks, %v", len(blocks), err)
	}
	type part struct {
		token  []byte
		block1 uint32
		data   []byte
	}
	parts := make([]part, len(blocks))
	for i, d := range blocks {
		var m message.Message
		m.Options = make(message.Options, 0, 10)
		if _, err := coder.DefaultCoder.Decode(d, &m); err != nil {
			t.Fatal(err)
		}
		id, b1, has, ok := onewayTarget(&m)
		if !ok || !has || id != nodeID(2) || m.Type != message.NonConfirmable {
			t.Fatalf("block %d: %q %v %v", i, id, has, ok)
		}
		parts[i] = part{m.Token, b1, m.Payload}
	}
	from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}
	other := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4001}
	now := time.Now()
	var a blockAssembler
	a.timeout = time.Second
	feed := func(src *net.UDPAddr, order ...int) []byte {
		var out []byte
		for _, i := range order {
			out = a.add(src, parts[i].token, parts[i].block1, parts[i].data, now)
		}
		return out
	}
	if got := feed(from, 0, 1, 2); !bytes.Equal(got, body) {
		t.Fatalf("in order: %d bytes back, want %d", len(got), len(body))
	}
	if got := feed(from, 0, 2, 1); got != nil {
		t.Fatalf("out of order: %d bytes back", len(got))
	}
	feed(from, 0)
	if got := feed(other, 1, 2); got != nil {
		t.Fatal("another source completed the message")
	}
	now = now.Add(2 * time.Second)
	if got := feed(from, 1, 2); got != nil {
		t.Fatal("an expired assembly completed")
	}
	for i := 0; i < maxAssemblies; i++ {
		a.add(&net.UDPAddr{IP: net.IPv4(10, 0, byte(i>>8), byte(i)), Port: 1}, parts[0].token, parts[0].block1, parts[0].data, now)
	}
	if got := feed(from, 0, 1, 2); got != nil {
		t.Fatal("an assembly started beyond the bound")
	}
	if len(a.pending) > maxAssemblies {
		t.Fatalf("%d assemblies held", len(a.pending))
	}
}
