package httpguard

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// testServer is a real http.Server on loopback behind a Guard, serving h.
type testServer struct {
	g    *Guard
	srv  *http.Server
	addr string
}

func serve(t *testing.T, cfg Config, h http.Handler) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := New(cfg)
	srv := &http.Server{}
	g.Configure(srv, h)
	go srv.Serve(g.Listener(ln))
	t.Cleanup(func() { srv.Close() })
	return &testServer{g: g, srv: srv, addr: ln.Addr().String()}
}

// echo answers 200 with the body it read.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Write(b)
})

type answer struct {
	code int
	body string
	head http.Header
}

func (s *testServer) do(t *testing.T, method, path string, head map[string]string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+s.addr+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == nil {
		req.Body = nil
	}
	for k, v := range head {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	// ExpectContinueTimeout matters only to requests that send Expect: 100-continue.
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, ExpectContinueTimeout: 10 * time.Second}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header}
}

// wantRefusal checks a JSON error answer of the API's shape.
func wantRefusal(t *testing.T, what string, a answer, code int, substr string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if a.code != code || a.head.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(a.body), &e) != nil || !strings.Contains(e.Error, substr) {
		t.Errorf("%s: got %d %q (%s), want %d with a JSON error containing %q", what, a.code, a.body, a.head.Get("Content-Type"), code, substr)
	}
}

// TestChecks: Host, Origin and media type are checked before the handler
// runs; a refused request never reaches it.
func TestChecks(t *testing.T) {
	var reached atomic.Int64
	s := serve(t, Config{Hosts: []string{"node1", "gw21.plant.lan"}, Origins: []string{"https://dash.example.com"}, AnyHost: []string{"/node/{id}/receive"}},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1); echo(w, r) }))
	js := map[string]string{"Content-Type": "application/json"}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	body := []byte(`{"thing":"t","data":1}`)
	_, port, _ := net.SplitHostPort(s.addr)
	cases := []struct {
		name         string
		method, path string
		head         map[string]string
		code         int
		want         string
	}{
		{"plain get", "GET", "/x", nil, 200, ""},
		{"json post", "POST", "/x", js, 200, ""},
		{"json with charset", "POST", "/x", with(nil, "Content-Type", "application/json; charset=utf-8"), 200, ""},
		{"td+json put", "PUT", "/x", with(nil, "Content-Type", "application/td+json"), 200, ""},
		{"merge-patch patch", "PATCH", "/x", with(nil, "Content-Type", "application/merge-patch+json"), 200, ""},
		{"form post", "POST", "/x", with(nil, "Content-Type", "application/x-www-form-urlencoded"), 415, "application/x-www-form-urlencoded"},
		{"text post", "POST", "/x", with(nil, "Content-Type", "text/plain;charset=UTF-8"), 415, "send application/json"},
		{"multipart post", "POST", "/x", with(nil, "Content-Type", "multipart/form-data; boundary=x"), 415, "multipart"},
		{"no type", "POST", "/x", nil, 415, `"none"`},
		{"no type and no body", "PUT", "/nobody", nil, 200, ""},
		{"bad type", "PUT", "/x", with(nil, "Content-Type", "application/"), 415, "not supported"},
		{"localhost", "GET", "/x", with(nil, "Host", "localhost:"+port), 200, ""},
		{"x.localhost", "GET", "/x", with(nil, "Host", "app.localhost"), 200, ""},
		{"ipv6 literal", "GET", "/x", with(nil, "Host", "[::1]:"+port), 200, ""},
		{"advertised", "GET", "/x", with(nil, "Host", "node1:8000"), 200, ""},
		{"allowed host", "POST", "/x", with(js, "Host", "GW21.plant.lan."), 200, ""},
		{"foreign host", "GET", "/x", with(nil, "Host", "evil.example:"+port), 421, "--allow-host evil.example"},
		{"foreign host post", "POST", "/x", with(js, "Host", "rebind.attacker.test"), 421, "does not answer"},
		{"foreign host on the peers' rpc", "GET", "/node/abc/receive", with(nil, "Host", "node2:8000"), 200, ""},
		{"same origin post", "POST", "/x", with(js, "Origin", "http://"+s.addr), 200, ""},
		{"same origin by name", "POST", "/x", with(js, "Host", "node1:8000", "Origin", "http://node1:8000"), 200, ""},
		{"https proxy origin", "POST", "/x", with(js, "Host", "node1", "Origin", "https://node1"), 200, ""},
		{"allowed origin", "DELETE", "/x", with(nil, "Origin", "https://DASH.example.com:443"), 200, ""},
		{"foreign origin json post", "POST", "/x", with(js, "Origin", "http://evil.example"), 403, "--allow-origin http://evil.example"},
		{"foreign origin form post", "POST", "/x", with(nil, "Origin", "http://evil.example", "Content-Type", "application/x-www-form-urlencoded"), 403, "cross-site"},
		{"other port origin", "PUT", "/x", with(js, "Origin", "http://127.0.0.1:1"), 403, "cross-site"},
		{"null origin", "DELETE", "/x", with(nil, "Origin", "null"), 403, "cross-site"},
		{"foreign origin get", "GET", "/x", with(nil, "Origin", "http://evil.example"), 200, ""},
		{"foreign origin upgrade", "GET", "/x", with(nil, "Origin", "http://evil.example", "Connection", "Upgrade", "Upgrade", "websocket"), 403, "cross-site"},
	}
	refusals := 0
	for _, c := range cases {
		if c.code != 200 {
			refusals++
		}
		before := reached.Load()
		var b []byte
		if c.method != "GET" && c.path != "/nobody" {
			b = body
		}
		a := s.do(t, c.method, c.path, c.head, b)
		if c.code == 200 {
			if a.code != 200 || a.body != string(b) || reached.Load() != before+1 {
				t.Errorf("%s: got %d %q, want 200 echoing the body", c.name, a.code, a.body)
			}
			continue
		}
		wantRefusal(t, c.name, a, c.code, c.want)
		if reached.Load() != before {
			t.Errorf("%s: refused with %d, but the handler ran", c.name, a.code)
		}
	}
	if st := s.g.Stats(); st.Rejected != uint64(refusals) {
		t.Errorf("stats %+v: want %d rejected", st, refusals)
	}
}

// TestHeaderLimit: a header over MaxHeaderBytes is refused (431) before
// any handler runs.
func TestHeaderLimit(t *testing.T) {
	lim := GatewayLimits()
	var reached atomic.Int64
	s := serve(t, Config{Limits: lim}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	if a := s.do(t, "GET", "/", map[string]string{"X-Pad": strings.Repeat("x", lim.MaxHeaderBytes/2)}, nil); a.code != 200 {
		t.Errorf("a header of half the limit: %d", a.code)
	}
	c := rawRequest(t, s.addr, "GET / HTTP/1.1\r\nHost: localhost\r\nX-Pad: "+strings.Repeat("x", 2*lim.MaxHeaderBytes)+"\r\n\r\n")
	if resp, _ := readAnswer(t, c); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a header of twice the limit: %d, want 431", resp.StatusCode)
	}
	if reached.Load() != 1 {
		t.Errorf("the handler ran %d times, want once", reached.Load())
	}
}

// TestBodies: bodies reach the handler whole (fixed length and chunked),
// oversize ones get 413 before the handler runs.
func TestBodies(t *testing.T) {
	var reached atomic.Int64
	s := serve(t, Config{MaxBody: 64 << 10}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1); echo(w, r) }))
	js := map[string]string{"Content-Type": "application/json"}
	for _, n := range []int{1, freeBody - 1, freeBody, freeBody + 1, 64 << 10} {
		b := bytes.Repeat([]byte{'7'}, n)
		if a := s.do(t, "POST", "/", js, b); a.code != 200 || a.body != string(b) {
			t.Errorf("body of %d bytes: %d, %d bytes back", n, a.code, len(a.body))
		}
		// Chunked: no Content-Length.
		req, _ := http.NewRequest("POST", "http://"+s.addr+"/", io.MultiReader(bytes.NewReader(b)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, b) {
			t.Errorf("chunked body of %d bytes: %d, %d bytes back", n, resp.StatusCode, len(got))
		}
	}
	before := reached.Load()
	// The guard refuses an oversize Content-Length before reading the body and
	// closes the connection: a client still writing that body may see the close
	// as a reset before it reads the 413. One that asks first (Expect:
	// 100-continue, as curl does for large bodies) always reads the 413.
	expect := map[string]string{"Content-Type": "application/json", "Expect": "100-continue"}
	wantRefusal(t, "oversize", s.do(t, "POST", "/", expect, make([]byte, 64<<10+1)), 413, "larger than 65536 bytes")
	req, _ := http.NewRequest("POST", "http://"+s.addr+"/", io.MultiReader(bytes.NewReader(make([]byte, 64<<10+1))))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantRefusal(t, "oversize chunked", answer{resp.StatusCode, string(b), resp.Header}, 413, "larger than 65536 bytes")
	if reached.Load() != before {
		t.Error("the handler ran for an oversize body")
	}
	if s.g.bodies.inUse() != 0 {
		t.Errorf("%d body bytes still held after every request", s.g.bodies.inUse())
	}
}

// rawRequest opens a connection and writes a request header (and part of
// a body).
func rawRequest(t *testing.T, addr, head string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if head != "" {
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func readAnswer(t *testing.T, c net.Conn) (*http.Response, string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// waitClosed waits until the server has closed c (a read sees EOF or a reset).
func waitClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 4096)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("%s: still open after 20 s", what)
		}
		return
	}
}

// TestTricklingBody: a body that does not arrive within BodyTimeout gets
// 408 and its connection is closed; a handler that runs long after its body
// arrived is not cut (no deadline left on the connection).
func TestTricklingBody(t *testing.T) {
	lim := LaptopLimits()
	lim.BodyTimeout = 300 * time.Millisecond
	slow := make(chan error, 1)
	s := serve(t, Config{Limits: lim}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			b, _ := io.ReadAll(r.Body)
			time.Sleep(4 * lim.BodyTimeout)
			slow <- r.Context().Err()
			w.Write(b)
			return
		}
		echo(w, r)
	}))
	for _, cl := range []int{100, 100 << 10} {
		c := rawRequest(t, s.addr, fmt.Sprintf("POST / HTTP/1.1\r\nHost: x.localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", cl))
		resp, body := readAnswer(t, c)
		wantRefusal(t, fmt.Sprintf("trickle of %d", cl), answer{resp.StatusCode, body, resp.Header}, 408, "did not arrive in time")
		waitClosed(t, c, "the trickling connection")
	}
	if a := s.do(t, "POST", "/slow", map[string]string{"Content-Type": "application/json"}, []byte(`{}`)); a.code != 200 || a.body != "{}" {
		t.Errorf("slow handler: %d %q", a.code, a.body)
	}
	if err := <-slow; err != nil {
		t.Errorf("the slow handler's request was cancelled: %v", err)
	}
	if st := s.g.Stats(); st.TimedOut != 2 {
		t.Errorf("stats %+v: want 2 body timeouts", st)
	}
	if s.g.bodies.inUse() != 0 {
		t.Errorf("%d body bytes still held", s.g.bodies.inUse())
	}
}

// TestBodyBudget: while large bodies hold the budget, another large one
// waits BodyWait and gets 503 with Retry-After; a small one passes at once.
func TestBodyBudget(t *testing.T) {
	lim := LaptopLimits()
	lim.BodyBytes, lim.BodyWait = 64<<10, 200*time.Millisecond
	hold := make(chan struct{})
	held := make(chan struct{}, 1)
	s := serve(t, Config{Limits: lim, MaxBody: 64 << 10}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			held <- struct{}{}
			<-hold
		}
		echo(w, r)
	}))
	js := map[string]string{"Content-Type": "application/json"}
	done := make(chan answer, 1)
	go func() { done <- s.do(t, "POST", "/hold", js, make([]byte, 48<<10)) }()
	<-held
	wantRefusal(t, "while the budget is held", s.do(t, "POST", "/", js, make([]byte, 32<<10)), 503, "busy")
	if st := s.g.Stats(); st.Busy != 1 {
		t.Errorf("stats %+v: want 1 busy", st)
	}
	if a := s.do(t, "POST", "/", js, make([]byte, 16<<10)); a.code != 200 {
		t.Errorf("a body that fits: %d %s", a.code, a.body)
	}
	if a := s.do(t, "POST", "/", js, make([]byte, freeBody)); a.code != 200 {
		t.Errorf("a small body: %d %s", a.code, a.body)
	}
	close(hold)
	if a := <-done; a.code != 200 {
		t.Errorf("the held request: %d", a.code)
	}
	if a := s.do(t, "POST", "/", js, make([]byte, 64<<10)); a.code != 200 {
		t.Errorf("a maximal body once the budget is free: %d %s", a.code, a.body)
	}
	if s.g.bodies.inUse() != 0 {
		t.Errorf("%d body bytes still held", s.g.bodies.inUse())
	}
}

// TestEviction: at MaxConns a new connection takes the place of the oldest
// idle (or header-less, or body-reading) one; when every connection is being
// served, the newcomer is closed.
func TestEviction(t *testing.T) {
	lim := LaptopLimits()
	lim.MaxConns = 3
	release := make(chan struct{})
	var busy sync.WaitGroup
	s := serve(t, Config{Limits: lim}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/busy" {
			busy.Done()
			<-release
		}
		echo(w, r)
	}))
	// Three silent connections fill the table; the oldest goes first.
	var silent []net.Conn
	for range 3 {
		silent = append(silent, rawRequest(t, s.addr, ""))
		waitStats(t, s.g, func(st Stats) bool { return st.Conns == len(silent) })
	}
	if a := s.do(t, "GET", "/", nil, nil); a.code != 200 {
		t.Fatalf("a request at the cap: %d", a.code)
	}
	waitClosed(t, silent[0], "the oldest silent connection")
	// Half a header is no better than none.
	half := rawRequest(t, s.addr, "GET / HTTP/1.1\r\nHost: localho")
	_ = half
	if st := s.g.Stats(); st.Evicted < 1 {
		t.Errorf("stats %+v: want an eviction", st)
	}
	// A body still arriving may go too.
	stuck := rawRequest(t, s.addr, "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{")
	// Each new connection takes the place of the oldest evictable one: the
	// half header, then the stuck body, before any newer silent one.
	for i := 0; i < 10 && !closedNow(stuck); i++ {
		rawRequest(t, s.addr, "")
	}
	waitClosed(t, stuck, "the stuck body")
	// Three requests being served: a fourth connection is refused, not
	// served by evicting one of them.
	busy.Add(3)
	for range 3 {
		go func() {
			req, _ := http.NewRequest("POST", "http://"+s.addr+"/busy", strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	busy.Wait()
	c := rawRequest(t, s.addr, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
	waitClosed(t, c, "the connection over the cap")
	if st := s.g.Stats(); st.Refused < 1 || st.Conns != 3 {
		t.Errorf("stats %+v: want 3 connections and a refusal", st)
	}
	close(release)
	waitStats(t, s.g, func(st Stats) bool { return st.Conns == 0 })
}

// closedNow says whether the server has closed c, waiting a little.
func closedNow(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	var buf [1]byte
	_, err := c.Read(buf[:])
	ne, ok := err.(net.Error)
	return err != nil && !(ok && ne.Timeout())
}

func waitStats(t *testing.T, g *Guard, cond func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond(g.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: condition not met in 20 s", g.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWebSockets: upgraded connections count apart, up to MaxHijacked; they
// are never evicted to make room for plain ones, and their handlers' own
// deadlines rule them.
func TestWebSockets(t *testing.T) {
	lim := LaptopLimits()
	lim.MaxConns, lim.MaxHijacked = 2, 2
	up := websocket.Upgrader{}
	s := serve(t, Config{Limits: lim}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws" {
			echo(w, r)
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			c.WriteMessage(mt, b)
		}
	}))
	url := "ws://" + s.addr + "/ws"
	var socks []*websocket.Conn
	for range 2 {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		socks = append(socks, c)
	}
	waitStats(t, s.g, func(st Stats) bool { return st.Hijacked == 2 && st.Conns == 0 })
	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil || resp == nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a third WebSocket: %v %v, want 503 with Retry-After", err, resp)
	}
	// Plain connections over their own cap do not touch the sockets.
	for range 5 {
		rawRequest(t, s.addr, "")
	}
	if a := s.do(t, "GET", "/", nil, nil); a.code != 200 {
		t.Errorf("a request at the cap: %d", a.code)
	}
	for i, c := range socks {
		msg := fmt.Sprintf("still here %d", i)
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, b, err := c.ReadMessage(); err != nil || string(b) != msg {
			t.Errorf("socket %d after the plain flood: %q %v", i, b, err)
		}
	}
	socks[0].Close()
	waitStats(t, s.g, func(st Stats) bool { return st.Hijacked == 1 })
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("a WebSocket once one closed: %v", err)
	}
	c.Close()
}
