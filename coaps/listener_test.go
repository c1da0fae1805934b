package coaps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// keyTable is a PSK callback over a fixed table of identities.
type keyTable map[string]string

func (k keyTable) psk(identity []byte) ([]byte, error) {
	key, ok := k[string(identity)]
	if !ok {
		return nil, fmt.Errorf("unknown identity %q", identity)
	}
	return []byte(key), nil
}

// echo is a Handler that answers each datagram with "identity|payload" and
// records what it got.
type echo struct {
	mu  sync.Mutex
	got []string // identity|payload
}

func (e *echo) handle(dgram []byte, from netip.AddrPort, identity string, reply func([]byte) error) {
	s := identity + "|" + string(dgram)
	e.mu.Lock()
	e.got = append(e.got, s)
	e.mu.Unlock()
	_ = reply([]byte(s))
}

func (e *echo) received() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.got...)
}

func startListener(t testing.TB, keys keyTable, h Handler, lim Limits) *Listener {
	t.Helper()
	cfg := Config{PSK: keys.psk, Handler: h, Limits: lim}
	if _, ok := t.(*testing.T); ok {
		cfg.Log = zaptest.NewLogger(t)
	}
	l, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// dial makes a pion PSK client session to l from a socket of its own
// (bound to local, "" for any loopback port).
func dial(ctx context.Context, l *Listener, local, identity, key string) (*dtls.Conn, error) {
	la := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	if local != "" {
		la = net.UDPAddrFromAddrPort(netip.MustParseAddrPort(local))
	}
	pc, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, err
	}
	return dialOn(ctx, l, pc, identity, key)
}

// dialOn makes a pion PSK client session to l on the socket pc, which the
// session owns.
func dialOn(ctx context.Context, l *Listener, pc *net.UDPConn, identity, key string) (*dtls.Conn, error) {
	dc, err := dtls.ClientWithOptions(pc, net.UDPAddrFromAddrPort(l.Addr()),
		dtls.WithPSK(func([]byte) ([]byte, error) { return []byte(key), nil }),
		dtls.WithPSKIdentityHint([]byte(identity)),
		dtls.WithCipherSuites(dtls.TLS_PSK_WITH_AES_128_CCM_8),
		dtls.WithFlightInterval(200*time.Millisecond))
	if err != nil {
		pc.Close()
		return nil, err
	}
	if err := dc.HandshakeContext(ctx); err != nil {
		dc.Close()
		return nil, err
	}
	return dc, nil
}

// roundTrip sends msg and returns the first answer, sending it again every
// half second (as a CoAP client retransmits: a flood fills the socket's
// buffer, and the kernel drops what does not fit), for up to 10 s.
func roundTrip(t testing.TB, dc *dtls.Conn, msg string) string {
	t.Helper()
	buf := make([]byte, 2048)
	for range 20 {
		if _, err := dc.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = dc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := dc.Read(buf)
		if err == nil {
			return string(buf[:n])
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) && !strings.Contains(err.Error(), "timeout") {
			t.Fatalf("no answer to %q: %v", msg, err)
		}
	}
	t.Fatalf("no answer to %q in 10 s", msg)
	return ""
}

func TestPionClientSession(t *testing.T) {
	e := &echo{}
	l := startListener(t, keyTable{"dev-1": "key-one", "dev-2": "key-two"}, e.handle, Limits{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, id := range []string{"dev-1", "dev-2"} {
		dc, err := dial(ctx, l, "", id, map[string]string{"dev-1": "key-one", "dev-2": "key-two"}[id])
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if got := roundTrip(t, dc, "hello"); got != id+"|hello" {
			t.Fatalf("%s: answer %q", id, got)
		}
		dc.Close()
	}
	if h := l.Stats().Handshakes.Load(); h != 2 {
		t.Fatalf("%d handshakes, want 2", h)
	}
}

// TestRefusedCredentials: a wrong key and an unknown identity fail the
// handshake, and nothing reaches the Handler.
func TestRefusedCredentials(t *testing.T) {
	e := &echo{}
	l := startListener(t, keyTable{"dev-1": "key-one"}, e.handle, Limits{HandshakeTimeout: 3 * time.Second})
	for _, tc := range []struct{ name, id, key string }{
		{"wrong key", "dev-1", "key-two"},
		{"unknown identity", "dev-9", "key-one"},
		{"identity too long", strings.Repeat("x", MaxIdentity+1), "key-one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			dc, err := dial(ctx, l, "", tc.id, tc.key)
			if err == nil {
				_, _ = dc.Write([]byte("should not arrive"))
				dc.Close()
				t.Fatal("the handshake succeeded")
			}
		})
	}
	eventually(t, "the failed handshakes to end", func() bool { _, hs := l.Sessions(); return hs == 0 })
	if got := e.received(); len(got) != 0 {
		t.Fatalf("the handler got %q", got)
	}
	if l.Stats().Failed.Load() < 3 {
		t.Fatalf("%d failed handshakes counted, want 3", l.Stats().Failed.Load())
	}
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

// libcoapClient returns the path of coap-client-openssl or -gnutls; it
// skips the test when it is not installed, except under CI.
func libcoapClient(t testing.TB, flavour string) string {
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

// TestLibcoapClients: libcoap's OpenSSL and GnuTLS clients complete a PSK
// handshake and their CoAP request reaches the Handler with the identity.
func TestLibcoapClients(t *testing.T) {
	for _, flavour := range []string{"openssl", "gnutls"} {
		t.Run(flavour, func(t *testing.T) {
			path := libcoapClient(t, flavour)
			e := &echo{}
			id := "urn:dev:" + flavour
			l := startListener(t, keyTable{id: "secret-" + flavour}, e.handle, Limits{})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			// The echo is no CoAP response: the client waits -B seconds and
			// gives up, which is all this test needs of it.
			cmd := exec.CommandContext(ctx, path, "-B", "2", "-m", "post", "-e", "hi", "-u", id, "-k", "secret-"+flavour,
				fmt.Sprintf("coaps://%s/x", l.Addr()))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			_ = cmd.Run()
			got := e.received()
			if len(got) == 0 || !strings.HasPrefix(got[0], id+"|") || !bytes.HasSuffix([]byte(got[0]), []byte("hi")) {
				t.Fatalf("handler got %q; client said %s", got, out.String())
			}
		})
	}
}
