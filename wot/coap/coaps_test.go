package coap

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"go.uber.org/zap/zaptest"

	"github.com/flownode/flownode/access"
	"github.com/flownode/flownode/coaps"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
	"github.com/flownode/flownode/wot"
)

// Tests of the front over DTLS PSK (package coaps), with libcoap's OpenSSL
// and GnuTLS clients and with pion's, and of Authorize on both ports.

// testKeys are the devices' PSK identities and keys of these tests
// (printable ASCII, as libcoap's -k takes them).
var testKeys = map[string]string{
	"urn:dev:sensor-a": "key-of-sensor-a-0123456789",
	"urn:dev:viewer":   "key-of-the-viewer",
}

func testPSK(identity []byte) ([]byte, error) {
	k, ok := testKeys[string(identity)]
	if !ok {
		return nil, fmt.Errorf("no key for identity %q", identity)
	}
	return []byte(k), nil
}

// testGrants is what each identity may do: sensor-a writes (and reads) its
// own Thing, the viewer reads every Thing. Plain CoAP carries no
// credential.
func testAuthorize(src Source, thing string, need access.Scope) error {
	if !src.DTLS {
		return fmt.Errorf("%w: use coaps:// with the device's PSK", access.ErrNoCredential)
	}
	switch {
	case src.Identity == "urn:dev:sensor-a" && thing == "sensor-a":
		return nil
	case src.Identity == "urn:dev:viewer" && need == access.Read:
		return nil
	case testKeys[src.Identity] == "":
		return access.ErrNoCredential
	}
	return fmt.Errorf("%w: %s may not %v Thing %s", access.ErrForbidden, src.Identity, need, thing)
}

// startSecureFront serves a front on a coaps listener of its own, keyed by
// testKeys, and returns the front and the listener's host:port.
func startSecureFront(t testing.TB, dev wot.Devices, tweak ...func(*Config)) (*Server, *coaps.Listener) {
	t.Helper()
	cfg := Config{Devices: dev, Log: zaptest.NewLogger(t), Authorize: testAuthorize}
	if _, ok := t.(*testing.B); ok {
		cfg.Log = nil
	}
	for _, f := range tweak {
		f(&cfg)
	}
	front, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := coaps.Listen("127.0.0.1:0", coaps.Config{PSK: testPSK, Handler: front.SecureDatagram,
		Limits: coaps.Limits{HandshakeTimeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Close()
		front.Close()
	})
	return front, l
}

// dtlsClientPath returns the path of coap-client-openssl or -gnutls; it
// skips the test when it is not installed, except under CI.
func dtlsClientPath(t testing.TB, flavour string) string {
	t.Helper()
	name := "coap-client-" + flavour
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: apt-get install libcoap3-bin", name)
		}
		t.Skipf("%s is missing (apt-get install libcoap3-bin)", name)
	}
	return path
}

// runLibcoap runs a libcoap client with args, waiting at most 10 s (-B)
// for its answer.
func runLibcoap(t testing.TB, path string, args ...string) (stdout, stderr string) {
	t.Helper()
	return runLibcoapWait(t, path, 10, args...)
}

// runLibcoapWait runs a libcoap client with args, waiting at most wait
// seconds (-B) for its answer: a handshake that is meant to fail needs no
// more than a few.
func runLibcoapWait(t testing.TB, path string, wait int, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append([]string{"-B", fmt.Sprint(wait)}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %v: timed out; stderr: %s", path, args, errb.String())
	}
	if err != nil {
		t.Logf("%s %v: %v", path, args, err)
	}
	return out.String(), errb.String()
}

var dtlsFlavours = []string{"openssl", "gnutls"}

// TestCoAPSLibcoapPostAndGet: libcoap's OpenSSL and GnuTLS clients post a
// reading over DTLS PSK (one small, one block-wise) and get the viewer; the
// Thing gets exactly the bytes posted.
func TestCoAPSLibcoapPostAndGet(t *testing.T) {
	for _, flavour := range dtlsFlavours {
		t.Run(flavour, func(t *testing.T) {
			path := dtlsClientPath(t, flavour)
			dev := newFakeDevices()
			_, l := startSecureFront(t, dev)
			base := "coaps://" + l.Addr().String()
			psk := []string{"-u", "urn:dev:sensor-a", "-k", testKeys["urn:dev:sensor-a"]}
			small := `{"celsius":21.5,"via":"` + flavour + `"}`
			large := fmt.Sprintf(`{"celsius":22.5,"pad":"%s"}`, strings.Repeat("y", 1500))
			for _, tc := range []struct {
				body  string
				extra []string
			}{{small, nil}, {large, []string{"-b", "64"}}} {
				args := append(append([]string{"-m", "post", "-t", "50", "-e", tc.body}, psk...), tc.extra...)
				out, errs := runLibcoap(t, path, append(args, base+"/object/sensor-a/send")...)
				var receipt struct {
					TxID string `json:"txID"`
				}
				if err := json.Unmarshal([]byte(out), &receipt); err != nil || len(receipt.TxID) != 64 {
					t.Fatalf("POST of %d bytes: response %q (stderr %q), not a receipt", len(tc.body), out, errs)
				}
			}
			got := dev.readings("sensor-a")
			if len(got) != 2 || string(got[0]) != small || string(got[1]) != large {
				t.Fatalf("stored %d readings, want the 2 posted", len(got))
			}
			// GET the viewer, as the viewer identity (read on every Thing).
			out, errs := runLibcoap(t, path, "-m", "get", "-u", "urn:dev:viewer", "-k", testKeys["urn:dev:viewer"], base+"/object/sensor-a/viewer")
			var rec struct {
				Data json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal([]byte(out), &rec); err != nil || string(rec.Data) != large {
				t.Fatalf("GET viewer: %q (stderr %q), want the latest record", out, errs)
			}
		})
	}
}

// TestCoAPSRefusals: a wrong key or an unknown identity fails the DTLS
// handshake; a valid identity writing a Thing it may not gets 4.03; a
// viewer may read but not write. Nothing refused is stored.
func TestCoAPSRefusals(t *testing.T) {
	for _, flavour := range dtlsFlavours {
		t.Run(flavour, func(t *testing.T) {
			path := dtlsClientPath(t, flavour)
			dev := newFakeDevices()
			front, l := startSecureFront(t, dev)
			base := "coaps://" + l.Addr().String()
			post := func(identity, key, thing string) (string, string) {
				return runLibcoapWait(t, path, 3, "-m", "post", "-t", "50", "-e", `{"x":1}`, "-u", identity, "-k", key, base+"/object/"+thing+"/send")
			}
			out, errs := post("urn:dev:sensor-a", "not-the-key", "sensor-a")
			if strings.Contains(out, "txID") {
				t.Fatalf("a wrong key: %q %q", out, errs)
			}
			out, errs = post("urn:dev:nobody", testKeys["urn:dev:sensor-a"], "sensor-a")
			if strings.Contains(out, "txID") {
				t.Fatalf("an unknown identity: %q %q", out, errs)
			}
			if h := l.Stats().Handshakes.Load(); h != 0 {
				t.Fatalf("%d handshakes completed, want none", h)
			}
			out, errs = post("urn:dev:sensor-a", testKeys["urn:dev:sensor-a"], "sensor-b")
			if !strings.Contains(out+errs, "4.03") {
				t.Fatalf("another Thing's write: %q %q, want 4.03", out, errs)
			}
			out, errs = post("urn:dev:viewer", testKeys["urn:dev:viewer"], "sensor-a")
			if !strings.Contains(out+errs, "4.03") {
				t.Fatalf("a viewer's write: %q %q, want 4.03", out, errs)
			}
			if n := len(dev.readings("sensor-a")) + len(dev.readings("sensor-b")); n != 0 || dev.started.Load() != 0 {
				t.Fatalf("%d readings stored, %d sends begun; want none", n, dev.started.Load())
			}
			if front.Stats().Refused.Load() != 2 {
				t.Fatalf("%d requests refused, want 2", front.Stats().Refused.Load())
			}
		})
	}
}

// TestPlainCoAPRefusedWithoutCredential: with an Authorize that wants a
// credential, a plain CoAP write is refused 4.01, whole or block-wise (its
// first block: nothing is reassembled), and a read too; nothing is stored.
// The discovery resources stay open.
func TestPlainCoAPRefusedWithoutCredential(t *testing.T) {
	dev := newFakeDevices()
	srv, addr := startFront(t, dev, func(c *Config) { c.Authorize = testAuthorize })
	c := newRawClient(t, addr)
	r := c.do(c.request(message.Confirmable, codes.POST, "/object/sensor-a/send", []byte(`{"x":1}`), jsonCF()))
	if r.Code != codes.Unauthorized || !strings.Contains(string(r.Payload), "coaps") {
		t.Fatalf("plain POST: %v %q, want 4.01 with the reason", r.Code, r.Payload)
	}
	block0 := uintOpt(message.Block1, block{num: 0, more: true, szx: 2}.value())
	r = c.do(c.request(message.Confirmable, codes.POST, "/object/sensor-a/send", bytes.Repeat([]byte("1"), 64), jsonCF(), block0))
	if r.Code != codes.Unauthorized {
		t.Fatalf("plain block-wise POST: %v, want 4.01", r.Code)
	}
	r = c.do(c.request(message.Confirmable, codes.GET, "/object/sensor-a/viewer", nil))
	if r.Code != codes.Unauthorized {
		t.Fatalf("plain GET viewer: %v, want 4.01", r.Code)
	}
	r = c.do(c.request(message.Confirmable, codes.GET, "/.well-known/core", nil))
	if r.Code != codes.Content {
		t.Fatalf("GET /.well-known/core: %v, want 2.05", r.Code)
	}
	srv.mu.Lock()
	uploads := srv.uploads
	srv.mu.Unlock()
	if uploads != 0 || dev.started.Load() != 0 || len(dev.readings("sensor-a")) != 0 {
		t.Fatalf("%d uploads kept, %d sends begun: want none", uploads, dev.started.Load())
	}
}

// TestAuthorizeFailure: an Authorize that cannot decide (its own error) is
// answered 5.03 with the message, and stores nothing.
func TestAuthorizeFailure(t *testing.T) {
	dev := newFakeDevices()
	_, addr := startFront(t, dev, func(c *Config) {
		c.Authorize = func(Source, string, access.Scope) error { return fmt.Errorf("the credential store is not loaded yet") }
	})
	c := newRawClient(t, addr)
	r := c.do(c.request(message.Confirmable, codes.POST, "/object/sensor-a/send", []byte(`{"x":1}`), jsonCF()))
	if r.Code != codes.ServiceUnavailable || !strings.Contains(string(r.Payload), "not loaded") {
		t.Fatalf("%v %q, want 5.03 with the message", r.Code, r.Payload)
	}
	if dev.started.Load() != 0 {
		t.Fatal("a send began")
	}
}

// pskClient is a pion DTLS PSK client speaking CoAP datagram by datagram.
type pskClient struct {
	t   testing.TB
	dc  *dtls.Conn
	mid uint16
}

func dialPSK(t testing.TB, l *coaps.Listener, identity string) *pskClient {
	t.Helper()
	dc, err := dialPSKConn(l.Addr(), identity)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dc.Close() })
	return &pskClient{t: t, dc: dc, mid: 1000}
}

// dialPSKConn makes a pion DTLS PSK session to a coaps port as identity
// (its key from testKeys), AES-128-CCM-8 as RFC 7925 has devices use.
func dialPSKConn(to netip.AddrPort, identity string) (*dtls.Conn, error) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	dc, err := dtls.ClientWithOptions(pc, net.UDPAddrFromAddrPort(to),
		dtls.WithPSK(func([]byte) ([]byte, error) { return []byte(testKeys[identity]), nil }),
		dtls.WithPSKIdentityHint([]byte(identity)),
		dtls.WithCipherSuites(dtls.TLS_PSK_WITH_AES_128_CCM_8))
	if err != nil {
		pc.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := dc.HandshakeContext(ctx); err != nil {
		dc.Close()
		return nil, err
	}
	return dc, nil
}

// do sends a confirmable request and returns its response.
func (c *pskClient) do(code codes.Code, path string, payload []byte, opts ...message.Option) *message.Message {
	c.t.Helper()
	c.mid++
	m := &message.Message{Type: message.Confirmable, Code: code, MessageID: int32(c.mid), Token: []byte{byte(c.mid >> 8), byte(c.mid)}, Payload: payload}
	for _, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		m.Options = m.Options.Add(message.Option{ID: message.URIPath, Value: []byte(seg)})
	}
	for _, o := range opts {
		m.Options = m.Options.Add(o)
	}
	b, err := encode(m)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.dc.Write(b); err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		_ = c.dc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.dc.Read(buf)
		if err != nil {
			c.t.Fatalf("no response to %v %s: %v", code, path, err)
		}
		r, err := decode(bytes.Clone(buf[:n]))
		if err != nil {
			c.t.Fatal(err)
		}
		if uint16(r.MessageID) == c.mid && r.Type == message.Acknowledgement && r.Code != codes.Empty {
			return r
		}
	}
}

// TestCoAPSSourcesApart: the front keeps a DTLS session's state apart from
// plain CoAP's: the identity reaches Authorize, and the same address over
// plain CoAP is refused.
func TestCoAPSSourcesApart(t *testing.T) {
	dev := newFakeDevices()
	seen := make(chan Source, 8)
	_, l := startSecureFront(t, dev, func(c *Config) {
		c.Authorize = func(src Source, thing string, need access.Scope) error {
			seen <- src
			return testAuthorize(src, thing, need)
		}
	})
	c := dialPSK(t, l, "urn:dev:sensor-a")
	r := c.do(codes.POST, "/object/sensor-a/send", []byte(`{"x":2}`), jsonCF())
	if r.Code != codes.Created {
		t.Fatalf("%v %q, want 2.01", r.Code, r.Payload)
	}
	src := <-seen
	local := netip.MustParseAddrPort(c.dc.LocalAddr().String())
	if !src.DTLS || src.Identity != "urn:dev:sensor-a" || src.Addr != local {
		t.Fatalf("Authorize saw %+v, want DTLS from %v as urn:dev:sensor-a", src, local)
	}
	if got := dev.readings("sensor-a"); len(got) != 1 || string(got[0]) != `{"x":2}` {
		t.Fatalf("stored %q", got)
	}
}

// TestNodeServesDeviceCoAPS: a started node with a coaps port hands its
// sessions' datagrams to the front set with ServeDeviceCoAPS: libcoap's
// OpenSSL and GnuTLS clients' readings become durable records of the node,
// with exactly the bytes posted; a wrong key, and plain CoAP without a
// credential (4.01), store nothing.
func TestNodeServesDeviceCoAPS(t *testing.T) {
	paths := map[string]string{}
	for _, f := range dtlsFlavours {
		paths[f] = dtlsClientPath(t, f)
	}
	n, dev := startSecureNode(t, func(c *Config) { c.Authorize = testAuthorize })
	if n.CoAPSAddr() == "" {
		t.Fatal("the node advertises no coaps address")
	}
	base := "coaps://" + n.CoAPSAddr()
	for _, f := range dtlsFlavours {
		reading := `{"celsius":19.25,"client":"` + f + `"}`
		out, errs := runLibcoap(t, paths[f], "-m", "post", "-t", "50", "-e", reading, "-u", "urn:dev:sensor-a", "-k", testKeys["urn:dev:sensor-a"],
			base+"/object/sensor-a/send")
		var receipt struct {
			TxID ledger.Hash `json:"txID"`
		}
		if err := json.Unmarshal([]byte(out), &receipt); err != nil {
			t.Fatalf("%s: %q %q", f, out, errs)
		}
		raw, err := n.Record(t.Context(), receipt.TxID)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := ledger.ParseRecord(raw)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Thing != "sensor-a" || string(rec.Data) != reading {
			t.Fatalf("%s: record of %q with data %s, want %s", f, rec.Thing, rec.Data, reading)
		}
	}
	out, errs := runLibcoapWait(t, paths["openssl"], 3, "-m", "post", "-t", "50", "-e", `{"celsius":99}`, "-u", "urn:dev:sensor-a", "-k", "wrong",
		base+"/object/sensor-a/send")
	if strings.Contains(out, "txID") {
		t.Fatalf("a wrong key: %q %q", out, errs)
	}
	c := newRawClient(t, n.CoAPAddr())
	r := c.do(c.request(message.Confirmable, codes.POST, "/object/sensor-a/send", []byte(`{"celsius":98}`), jsonCF()))
	if r.Code != codes.Unauthorized {
		t.Fatalf("plain CoAP POST: %v %q, want 4.01", r.Code, r.Payload)
	}
	if got := dev.stored.Load(); got != int64(len(dtlsFlavours)) {
		t.Fatalf("%d readings stored, want the %d posted with the right key", got, len(dtlsFlavours))
	}
}

// TestCoAPSObserve: an observation registered over a DTLS session (a read)
// gets its notifications on that session, encrypted; a session whose
// identity may not read the Thing cannot register.
func TestCoAPSObserve(t *testing.T) {
	dev := newFakeDevices()
	_, l := startSecureFront(t, dev)
	viewer := dialPSK(t, l, "urn:dev:viewer")
	obs0 := uintOpt(message.Observe, 0)
	r := viewer.do(codes.GET, "/object/sensor-a/viewer", nil, obs0)
	if r.Code != codes.Content || !r.Options.HasOption(message.Observe) {
		t.Fatalf("registration: %v %v", r.Code, r.Options)
	}
	eventually(t, "the observation", func() bool { return dev.subscribers("sensor-a") == 1 })
	sensor := dialPSK(t, l, "urn:dev:sensor-a")
	if r := sensor.do(codes.POST, "/object/sensor-a/send", []byte(`{"lux":300}`), jsonCF()); r.Code != codes.Created {
		t.Fatalf("POST: %v %q", r.Code, r.Payload)
	}
	buf := make([]byte, 4096)
	_ = viewer.dc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := viewer.dc.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	m, err := decode(bytes.Clone(buf[:n]))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Data json.RawMessage `json:"data"`
	}
	if !m.Options.HasOption(message.Observe) || json.Unmarshal(m.Payload, &rec) != nil || string(rec.Data) != `{"lux":300}` {
		t.Fatalf("notification %v %q", m.Options, m.Payload)
	}
	// sensor-a may read only its own Thing.
	if r := sensor.do(codes.GET, "/object/sensor-b/viewer", nil, obs0); r.Code != codes.Forbidden {
		t.Fatalf("another Thing's observation: %v, want 4.03", r.Code)
	}
	if dev.subscribers("sensor-b") != 0 {
		t.Fatal("a refused registration subscribed")
	}
}

// startSecureNode starts a one-node ring with a coaps port keyed by
// testKeys, serving a front on it and on its CoAP port.
func startSecureNode(t testing.TB, tweak ...func(*Config)) (*node.Node, *nodeDevices) {
	t.Helper()
	n, err := node.Start(context.Background(), node.Config{DataDir: t.TempDir(), Profile: node.LocalProfile(),
		Listen: "127.0.0.1:0", CoAPListen: freeUDPPort(t), CoAPSListen: "127.0.0.1:0", DevicePSK: testPSK})
	if err != nil {
		t.Fatal(err)
	}
	dev := &nodeDevices{n: n}
	cfg := Config{Devices: dev}
	for _, f := range tweak {
		f(&cfg)
	}
	front, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.ServeDeviceCoAP(front.Datagram)
	n.ServeDeviceCoAPS(front.SecureDatagram)
	t.Cleanup(func() {
		front.Close()
		stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = n.Stop(stopCtx)
	})
	return n, dev
}
