package coap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"go.uber.org/zap/zaptest"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
	"github.com/flownode/flownode/wot"
)

// fakeDevices is a Devices that keeps readings in memory: Send records
// exactly the bytes it gets and publishes an update per reading.
type fakeDevices struct {
	sendDelay time.Duration
	started   atomic.Int64 // Sends begun
	dir       []byte
	tds       map[string][]byte

	mu      sync.Mutex
	stored  map[string][]json.RawMessage
	latest  map[string]wot.Update
	subs    map[string][]*fakeSub
	present map[string]int
	n       int
}

func newFakeDevices() *fakeDevices {
	return &fakeDevices{dir: []byte(`{"title":"directory"}`), tds: map[string][]byte{},
		stored: map[string][]json.RawMessage{}, latest: map[string]wot.Update{},
		subs: map[string][]*fakeSub{}, present: map[string]int{}}
}

func (f *fakeDevices) Send(ctx context.Context, thing string, values []json.RawMessage) ([]node.Receipt, error) {
	if thing == "bad" {
		return nil, fmt.Errorf("%w: thing id %q is refused", wot.ErrBadInput, thing)
	}
	f.started.Add(1)
	delay := f.sendDelay
	if len(values) > 0 && bytes.Contains(values[0], []byte("slow")) {
		delay = 300 * time.Millisecond
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]node.Receipt, 0, len(values))
	for _, v := range values {
		f.n++
		tx := ledger.Hash(sha256.Sum256(fmt.Appendf(nil, "%s/%d", thing, f.n)))
		rec, _ := json.Marshal(map[string]any{"thing": thing, "n": f.n, "data": json.RawMessage(v)})
		u := wot.Update{Thing: thing, TxID: tx, Time: time.Now().UnixNano(), Value: bytes.Clone(v), Record: rec}
		f.stored[thing] = append(f.stored[thing], bytes.Clone(v))
		f.latest[thing] = u
		for _, s := range f.subs[thing] {
			s.offer(u)
		}
		out = append(out, node.Receipt{TxID: tx})
	}
	return out, nil
}

func (f *fakeDevices) Subscribe(thing string) (wot.Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &fakeSub{f: f, thing: thing, ch: make(chan wot.Update, 256)}
	f.subs[thing] = append(f.subs[thing], s)
	return s, nil
}

func (f *fakeDevices) Latest(ctx context.Context, thing string) (wot.Update, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.latest[thing]
	if !ok {
		return wot.Update{}, wot.ErrNoValue
	}
	return u, nil
}

func (f *fakeDevices) ThingTD(ctx context.Context, id string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if td, ok := f.tds[id]; ok {
		return td, nil
	}
	return nil, wot.ErrNoThing
}

func (f *fakeDevices) DirectoryTD() []byte { return f.dir }

func (f *fakeDevices) Present(thing string) func() {
	f.mu.Lock()
	f.present[thing]++
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.present[thing]--
			f.mu.Unlock()
		})
	}
}

func (f *fakeDevices) readings(thing string) []json.RawMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]json.RawMessage(nil), f.stored[thing]...)
}

func (f *fakeDevices) subscribers(thing string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs[thing])
}

func (f *fakeDevices) presentCount(thing string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.present[thing]
}

type fakeSub struct {
	f      *fakeDevices
	thing  string
	ch     chan wot.Update
	closed bool // under f.mu
}

func (s *fakeSub) Updates() <-chan wot.Update { return s.ch }
func (s *fakeSub) Lost() uint64               { return 0 }

func (s *fakeSub) Close() {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	close(s.ch)
	subs := s.f.subs[s.thing]
	for i, o := range subs {
		if o == s {
			s.f.subs[s.thing] = append(subs[:i:i], subs[i+1:]...)
			break
		}
	}
}

// offer is under f.mu.
func (s *fakeSub) offer(u wot.Update) {
	if !s.closed {
		select {
		case s.ch <- u:
		default:
		}
	}
}

// startFront serves a Server on a UDP socket of its own on loopback, as the
// rpc transport's Plain would, and returns its host:port.
func startFront(t testing.TB, dev wot.Devices, tweak ...func(*Config)) (*Server, string) {
	t.Helper()
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Devices: dev, Log: zaptest.NewLogger(t)}
	if _, ok := t.(*testing.B); ok {
		cfg.Log = nil
	}
	for _, f := range tweak {
		f(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, from, err := ln.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			srv.Datagram(bytes.Clone(buf[:n]), from, func(b []byte) error {
				_, err := ln.WriteToUDPAddrPort(b, from)
				return err
			})
		}
	}()
	t.Cleanup(func() {
		srv.Close()
		ln.Close()
		<-done
	})
	return srv, ln.LocalAddr().String()
}

// rawClient speaks CoAP datagram by datagram, to test what libcoap cannot
// be made to send.
type rawClient struct {
	t   testing.TB
	c   *net.UDPConn
	mid uint16
}

func newRawClient(t testing.TB, addr string) *rawClient {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, c: c, mid: 100}
}

// request builds a request; path is split on "/".
func (c *rawClient) request(typ message.Type, code codes.Code, path string, payload []byte, opts ...message.Option) *message.Message {
	c.mid++
	m := &message.Message{Type: typ, Code: code, MessageID: int32(c.mid), Token: []byte{byte(c.mid), 0xaa}, Payload: payload}
	for _, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		m.Options = m.Options.Add(message.Option{ID: message.URIPath, Value: []byte(seg)})
	}
	for _, o := range opts {
		m.Options = m.Options.Add(o)
	}
	return m
}

func (c *rawClient) write(m *message.Message) {
	c.t.Helper()
	b, err := encode(m)
	if err != nil {
		c.t.Fatal(err)
	}
	c.writeRaw(b)
}

func (c *rawClient) writeRaw(b []byte) {
	c.t.Helper()
	if _, err := c.c.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next datagram, or nil after wait.
func (c *rawClient) read(wait time.Duration) *message.Message {
	c.t.Helper()
	buf := make([]byte, 64<<10)
	_ = c.c.SetReadDeadline(time.Now().Add(wait))
	n, err := c.c.Read(buf)
	if err != nil {
		return nil
	}
	m, err := decode(bytes.Clone(buf[:n]))
	if err != nil {
		c.t.Fatalf("undecodable datagram from the server: %v", err)
	}
	return m
}

// do sends m and returns the response (the first datagram back).
func (c *rawClient) do(m *message.Message) *message.Message {
	c.t.Helper()
	c.write(m)
	r := c.read(10 * time.Second)
	if r == nil {
		c.t.Fatalf("no response to %v", m)
	}
	return r
}

// coapClient runs libcoap's coap-client-notls; it skips the test when the
// client is not installed, except under CI, where that fails it.
func coapClient(t testing.TB, args ...string) (stdout, stderr string) {
	t.Helper()
	path := clientPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("coap-client %v: timed out; stderr: %s", args, errb.String())
	}
	if err != nil {
		t.Logf("coap-client %v: %v", args, err)
	}
	return out.String(), errb.String()
}

func clientPath(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("coap-client-notls")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("coap-client-notls is missing: apt-get install libcoap3-bin")
		}
		t.Skip("coap-client-notls is missing (apt-get install libcoap3-bin)")
	}
	return path
}

// eventually waits up to 20 s for cond.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
