package access

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
)

type fixture struct {
	a       *network.Authority
	members *network.Members
}

func newFixture(t testing.TB) fixture {
	t.Helper()
	adir, ndir := t.TempDir(), t.TempDir()
	a, err := network.Init(adir, "plant-7", ledger.MiningParams{Rate: 20, MeanBlockTime: time.Second, Variance: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	mem, err := a.AdmitDir(ndir, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	m, err := network.NewMembers(a.Description, mem, "")
	if err != nil {
		t.Fatal(err)
	}
	return fixture{a, m}
}

func (f fixture) token(t testing.TB, pattern, scope string) (*network.Token, string) {
	t.Helper()
	tok, bearer, err := f.a.IssueToken(pattern, scope, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok, bearer
}

func request(remote, header, query string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/api/v1/records"+query, nil)
	r.RemoteAddr = remote
	if header != "" {
		r.Header.Set("Authorization", header)
	}
	return r
}

const (
	lan  = "192.0.2.7:40000"
	loop = "127.0.0.1:40000"
)

func TestGuardDecisions(t *testing.T) {
	f := newFixture(t)
	_, write := f.token(t, "lamp-*", "write")
	_, read := f.token(t, "*", "read")
	_, admin := f.token(t, "*", "admin")
	_, narrowAdmin := f.token(t, "lamp-*", "admin")
	revokedTok, revoked := f.token(t, "*", "write")
	r, _ := f.a.RevokeToken(revokedTok.ID, "lost")
	if _, err := f.members.Revoke(r); err != nil {
		t.Fatal(err)
	}
	other, _ := network.NewAuthority("plant-7", ledger.MiningParams{Rate: 20, MeanBlockTime: time.Second, Variance: 0.2})
	_, foreign, _ := other.IssueToken("*", "admin", 0)

	strict := NewGuard(f.members, Policy{}, nil)
	dev := NewGuard(f.members, Policy{OpenLoopback: true, OpenReads: true}, nil)
	type want int
	const (
		ok want = iota
		unauth
		forbid
	)
	for _, c := range []struct {
		name   string
		g      *Guard
		req    *http.Request
		thing  string
		need   Scope
		expect want
	}{
		{"write, header", strict, request(lan, "Bearer "+write, ""), "lamp-1", Write, ok},
		{"write, query", strict, request(lan, "", "?token="+write), "lamp-1", Write, ok},
		{"write token reads", strict, request(lan, "Bearer "+write, ""), "lamp-1", Read, ok},
		{"write, other Thing", strict, request(lan, "Bearer "+write, ""), "pump-1", Write, forbid},
		{"write, every Thing", strict, request(lan, "Bearer "+write, ""), "", Write, forbid},
		{"read token writes", strict, request(lan, "Bearer "+read, ""), "lamp-1", Write, forbid},
		{"admin for verify", strict, request(lan, "Bearer "+admin, ""), "", Admin, ok},
		{"admin of some Things for verify", strict, request(lan, "Bearer "+narrowAdmin, ""), "", Admin, forbid},
		{"no credential", strict, request(lan, "", ""), "lamp-1", Write, unauth},
		{"no credential, loopback, strict", strict, request(loop, "", ""), "lamp-1", Write, unauth},
		{"no credential, read, strict", strict, request(lan, "", ""), "lamp-1", Read, unauth},
		{"revoked", strict, request(lan, "Bearer "+revoked, ""), "lamp-1", Write, unauth},
		{"foreign authority", strict, request(lan, "Bearer "+foreign, ""), "lamp-1", Write, unauth},
		{"basic auth", strict, request(lan, "Basic dXNlcjpwdw==", ""), "lamp-1", Write, unauth},
		{"garbage", strict, request(lan, "Bearer fn1.x.y", ""), "lamp-1", Write, unauth},
		{"dev: loopback writes", dev, request(loop, "", ""), "lamp-1", Write, ok},
		{"dev: loopback v6 admin", dev, request("[::1]:5000", "", ""), "", Admin, ok},
		{"dev: LAN reads", dev, request(lan, "", ""), "pump", Read, ok},
		{"dev: LAN writes", dev, request(lan, "", ""), "pump", Write, unauth},
		{"dev: LAN with token", dev, request(lan, "Bearer "+write, ""), "lamp-2", Write, ok},
		{"dev: narrow token on loopback", dev, request(loop, "Bearer "+write, ""), "pump", Write, ok},
		{"dev: revoked token on loopback", dev, request(loop, "Bearer "+revoked, ""), "pump", Write, unauth},
	} {
		err := c.g.Authorize(c.req, c.thing, c.need)
		got := ok
		switch {
		case errors.Is(err, ErrNoCredential):
			got = unauth
		case errors.Is(err, ErrForbidden):
			got = forbid
		case err != nil:
			t.Errorf("%s: unexpected error %v", c.name, err)
			continue
		}
		if got != c.expect {
			t.Errorf("%s: got %d (%v), want %d", c.name, got, err, c.expect)
		}
	}
}

func TestCheckAnswersRefusals(t *testing.T) {
	f := newFixture(t)
	g := NewGuard(f.members, Policy{}, nil)
	_, read := f.token(t, "*", "read")
	for _, c := range []struct {
		header, challenge string
		status            int
	}{
		{"", `Bearer realm="flownode"`, 401},
		{"Bearer nope", `Bearer realm="flownode", error="invalid_token"`, 401},
		{"Bearer " + read, `Bearer realm="flownode", error="insufficient_scope"`, 403},
	} {
		w := httptest.NewRecorder()
		if Check(g, w, request(lan, c.header, ""), "x", Write) {
			t.Fatalf("%q passed", c.header)
		}
		var body struct{ Error string }
		if w.Code != c.status || w.Header().Get("WWW-Authenticate") != c.challenge ||
			json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Error == "" || strings.Contains(body.Error, "missing:") {
			t.Errorf("%q: %d %q %s", c.header, w.Code, w.Header().Get("WWW-Authenticate"), w.Body)
		}
	}
	if !Check(nil, httptest.NewRecorder(), request(lan, "", ""), "x", Admin) {
		t.Fatal("a nil Authorizer refused")
	}
}

func TestGuardPSK(t *testing.T) {
	f := newFixture(t)
	secret := f.a.DeviceSecret()
	g := NewGuard(f.members, Policy{}, secret)
	tok, _ := f.token(t, "urn:dev:lamp-*", "write")
	id := tok.PSKIdentity()
	key, err := g.PSK([]byte(id))
	if err != nil || string(key) != string(network.PSKKey(secret, id)) {
		t.Fatalf("PSK: %q %v", key, err)
	}
	src := netip.MustParseAddr("192.0.2.9")
	if err := g.AuthorizePSK(id, src, "urn:dev:lamp-3", Write); err != nil {
		t.Fatal(err)
	}
	if err := g.AuthorizePSK(id, src, "urn:dev:pump", Write); !errors.Is(err, ErrForbidden) {
		t.Fatalf("other Thing: %v", err)
	}
	if err := g.AuthorizePSK("", src, "urn:dev:lamp-3", Write); !errors.Is(err, ErrNoCredential) {
		t.Fatalf("plain CoAP write: %v", err)
	}
	if err := NewGuard(f.members, Policy{OpenLoopback: true}, secret).AuthorizePSK("", netip.MustParseAddr("127.0.0.1"), "x", Write); err != nil {
		t.Fatalf("plain CoAP write from loopback on a dev node: %v", err)
	}
	r, _ := f.a.RevokeToken(tok.ID, "")
	f.members.Revoke(r)
	if _, err := g.PSK([]byte(id)); err == nil {
		t.Fatal("a revoked token's PSK handshake would succeed")
	}
	if err := g.AuthorizePSK(id, src, "urn:dev:lamp-3", Write); !errors.Is(err, ErrNoCredential) {
		t.Fatalf("revoked during a session: %v", err)
	}
	if _, err := NewGuard(f.members, Policy{}, nil).PSK([]byte(id)); err == nil {
		t.Fatal("a node without the device secret made a key")
	}
}

// BenchmarkTokenCheck prints the cost of checking a bearer token on a
// request: the first sight of a token (an ed25519 verify) and every later one
// (cache, expiry, revocation).
func BenchmarkTokenCheck(b *testing.B) {
	f := newFixture(b)
	g := NewGuard(f.members, Policy{}, nil)
	_, bearer := f.token(b, "urn:dev:*", "write")
	r := request(lan, "Bearer "+bearer, "")
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			g.mu.Lock()
			clear(g.valid)
			g.mu.Unlock()
			if err := g.Authorize(r, "urn:dev:lamp", Write); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e3, "µs/check")
	})
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if err := g.Authorize(r, "urn:dev:lamp", Write); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e3, "µs/check")
	})
}
