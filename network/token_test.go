package network

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/flownode/flownode/ledger"
)

func TestTokenRoundTripAndForgeries(t *testing.T) {
	a, err := NewAuthority("plant-7", mining)
	if err != nil {
		t.Fatal(err)
	}
	tok, bearer, err := a.IssueToken("urn:dev:sensor-*", "write", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(bearer, TokenPrefix) || len(bearer) > MaxTokenBytes {
		t.Fatalf("bearer %q", bearer)
	}
	got, err := a.Description.ParseToken(bearer)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != tok.ID || got.Thing != tok.Thing || got.Scope != "write" || !got.Expires.Equal(tok.Expires) || got.Network != "plant-7" {
		t.Fatalf("parsed %+v, issued %+v", got, tok)
	}
	if err := got.Current(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := got.Current(time.Now().Add(2 * time.Hour)); err == nil {
		t.Fatal("a token past its expiry is current")
	}

	other, _ := NewAuthority("plant-7", mining)
	_, foreign, _ := other.IssueToken("*", "admin", 0)
	b64 := base64.RawURLEncoding
	claims, sig, _ := strings.Cut(strings.TrimPrefix(bearer, TokenPrefix), ".")
	raw, _ := b64.DecodeString(claims)
	// A forger widens the pattern and keeps the signature.
	widened := strings.Replace(string(raw), `urn:dev:sensor-*`, `*`, 1)
	// Or re-signs the same claims with a key of its own.
	_, fakeKey, _ := ed25519.GenerateKey(nil)
	resigned := TokenPrefix + claims + "." + b64.EncodeToString(ed25519.Sign(fakeKey, raw))
	sigBytes, _ := b64.DecodeString(sig)
	sigBytes[0] ^= 1
	for name, bad := range map[string]string{
		"other authority":  foreign,
		"widened pattern":  TokenPrefix + b64.EncodeToString([]byte(widened)) + "." + sig,
		"resigned":         resigned,
		"flipped sig bit":  TokenPrefix + claims + "." + b64.EncodeToString(sigBytes),
		"no prefix":        strings.TrimPrefix(bearer, TokenPrefix),
		"no signature":     TokenPrefix + claims,
		"empty":            "",
		"garbage":          TokenPrefix + "!!!.???",
		"oversize":         TokenPrefix + strings.Repeat("A", MaxTokenBytes),
		"padded base64":    TokenPrefix + claims + "=." + sig,
		"trailing garbage": bearer + "x",
	} {
		if _, err := a.Description.ParseToken(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	// Signed by the authority, but not canonical: refused, so that one
	// token has one meaning.
	var m map[string]any
	json.Unmarshal(raw, &m)
	pretty, _ := json.MarshalIndent(m, "", " ")
	notCanon := TokenPrefix + b64.EncodeToString(pretty) + "." + b64.EncodeToString(ed25519.Sign(a.key, pretty))
	if _, err := a.Description.ParseToken(notCanon); err == nil || !strings.Contains(err.Error(), "canonical") {
		t.Errorf("non-canonical claims: %v", err)
	}
	// Another network's name under the right key: refused.
	m["network"] = "plant-8"
	renamed, _ := json.Marshal(m)
	if _, err := a.Description.ParseToken(TokenPrefix + b64.EncodeToString(renamed) + "." + b64.EncodeToString(ed25519.Sign(a.key, renamed))); err == nil {
		t.Error("a token of another network was accepted")
	}
}

func TestTokenIssueRefusesBadClaims(t *testing.T) {
	a, _ := NewAuthority("plant-7", mining)
	for _, c := range []struct{ pattern, scope string }{
		{"", "read"}, {"a/b", "read"}, {strings.Repeat("a", 81), "read"}, {"x", "owner"}, {"x y", "write"},
	} {
		if _, _, err := a.IssueToken(c.pattern, c.scope, 0); err == nil {
			t.Errorf("IssueToken(%q, %q) accepted", c.pattern, c.scope)
		}
	}
	if _, _, err := a.IssueToken("x", "read", -time.Second); err == nil {
		t.Error("negative lifetime accepted")
	}
}

func TestMatchThing(t *testing.T) {
	for _, c := range []struct {
		pattern, id string
		want        bool
	}{
		{"*", "anything", true},
		{"*", "", true},
		{"lamp", "lamp", true},
		{"lamp", "lamp2", false},
		{"lamp*", "lamp2", true},
		{"urn:dev:*:temp", "urn:dev:hall:temp", true},
		{"urn:dev:*:temp", "urn:dev:hall:humidity", false},
		{"*-a-*-b", "x-a-y-a-z-b", true},
		{"*-a-*-b", "x-a-y-b-c", false},
		{"a**b", "ab", true},
		{"a*", "b", false},
		{"", "", true},
		{"", "a", false},
	} {
		if got := MatchThing(c.pattern, c.id); got != c.want {
			t.Errorf("MatchThing(%q, %q) = %v", c.pattern, c.id, got)
		}
	}
	// Worst case stays quick: many stars against a long near-miss.
	p := strings.Repeat("*a", 40)
	id := strings.Repeat("a", 199) + "b"
	start := time.Now()
	MatchThing(p, id)
	if d := time.Since(start); d > time.Second {
		t.Errorf("pathological pattern took %v", d)
	}
}

func TestTokenRevocationTravelsAndPersists(t *testing.T) {
	adir, ndir := t.TempDir(), t.TempDir()
	a, err := Init(adir, "plant-7", mining)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := a.AdmitDir(ndir, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMembers(a.Description, mem, ndir)
	if err != nil {
		t.Fatal(err)
	}
	tok, bearer, _ := a.IssueToken("lamp-*", "read", 0)
	if _, err := m.CheckToken(bearer); err != nil {
		t.Fatal(err)
	}
	r, err := a.RevokeToken(tok.ID, "lost")
	if err != nil {
		t.Fatal(err)
	}
	// The revocation as it travels (JSON) still verifies.
	wire, _ := json.Marshal(r)
	var back Revocation
	if err := json.Unmarshal(wire, &back); err != nil || a.Description.CheckRevocation(&back) != nil {
		t.Fatalf("revocation round trip: %v", err)
	}
	if added, err := m.Revoke(&back); !added || err != nil {
		t.Fatalf("Revoke: %v %v", added, err)
	}
	if added, _ := m.Revoke(&back); added {
		t.Fatal("the same revocation was new twice")
	}
	if _, err := m.CheckToken(bearer); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked token: %v", err)
	}
	if m.Revoked(mem.Node) {
		t.Fatal("a token's revocation revoked a node")
	}
	// A forged token revocation (other authority) is refused.
	other, _ := NewAuthority("plant-7", mining)
	_, b2, _ := a.IssueToken("*", "write", 0)
	t2, _ := a.Description.ParseToken(b2)
	forged, _ := other.RevokeToken(t2.ID, "")
	if _, err := m.Revoke(forged); err == nil {
		t.Fatal("forged token revocation accepted")
	}
	// Both kinds are kept across a restart.
	node2 := ledgerKeyFor(t)
	nr, _ := a.Revoke(node2, "gone")
	if _, err := m.Revoke(nr); err != nil {
		t.Fatal(err)
	}
	again, err := NewMembers(a.Description, mem, ndir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.CheckToken(bearer); err == nil {
		t.Fatal("token revocation lost across a restart")
	}
	if !again.Revoked(node2) || len(again.Revocations()) != 2 {
		t.Fatalf("after restart: %d revocations", len(again.Revocations()))
	}
	// A revocation naming both a node and a token is refused.
	both := &Revocation{Network: "plant-7", Node: node2.Hex(), Token: tok.ID, Time: time.Now().UnixMilli()}
	if _, err := a.sign(both); err != nil {
		t.Fatal(err)
	}
	if err := a.Description.CheckRevocation(both); err == nil {
		t.Fatal("a revocation of a node and a token at once was accepted")
	}
}

func TestPSKIdentityAndKey(t *testing.T) {
	adir, ndir := t.TempDir(), t.TempDir()
	a, _ := Init(adir, "plant-7", mining)
	if _, err := a.AdmitDir(ndir, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	secret, err := LoadDeviceSecret(ndir)
	if err != nil || string(secret) != string(a.DeviceSecret()) {
		t.Fatalf("device secret in the admitted dir: %v", err)
	}
	tok, _, _ := a.IssueToken("urn:dev:"+strings.Repeat("x", 72), "write", 24*time.Hour)
	id := tok.PSKIdentity()
	if len(id) > MaxPSKIdentityBytes {
		t.Fatalf("identity of a maximal pattern is %d bytes", len(id))
	}
	back, err := ParsePSKIdentity(id)
	if err != nil || back.ID != tok.ID || back.Thing != tok.Thing || back.Scope != tok.Scope || !back.Expires.Equal(tok.Expires) {
		t.Fatalf("ParsePSKIdentity: %+v %v", back, err)
	}
	key := PSKKey(secret, id)
	if len(key) != 32 || string(key) != string(PSKKey(a.DeviceSecret(), id)) {
		t.Fatalf("key %q", key)
	}
	// Changing any part of the identity changes the key.
	if string(PSKKey(secret, strings.Replace(id, ".write.", ".admin.", 1))) == string(key) {
		t.Fatal("scope is not bound into the key")
	}
	other, _ := NewAuthority("plant-7", mining)
	if string(PSKKey(other.DeviceSecret(), id)) == string(key) {
		t.Fatal("two networks derive the same device key")
	}
	for _, bad := range []string{"", "fnp1.", "fnp1.zz.write.0.x", "fnp1.0123456789abcdef.owner.0.x", "fnp1.0123456789abcdef.read.-1.x",
		"fnp1.0123456789abcdef.read.0.a/b", "psk.0123456789abcdef.read.0.x", "fnp1.0123456789abcdef.read.0." + strings.Repeat("a", 120)} {
		if _, err := ParsePSKIdentity(bad); err == nil {
			t.Errorf("ParsePSKIdentity(%q) accepted", bad)
		}
	}
}

// ledgerKeyFor is a fresh node ID.
func ledgerKeyFor(t *testing.T) ledger.Key {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return ledger.NodeID(pub)
}
