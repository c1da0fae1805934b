package network

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/flownode/flownode/ledger"
)

// Device and client credentials. The authority signs a Token: who may do what
// (a scope) to which Things (a pattern), until when. A token is checked by its
// signature alone, so it is valid on every node of the network at once and no
// node keeps a list of tokens; the authority revokes one with a signed
// Revocation naming its ID, which travels the ring like a member's.
//
// On the wire a token is "fn1." + base64url(claims) + "." + base64url(signature),
// where claims is the canonical JSON (RFC 8785) of the Token with "type":"Token"
// and the signature is the authority's ed25519 signature over those bytes. The
// type keeps a token's signature from passing for a revocation's and the other
// way round. A bearer token is a secret: whoever holds it has its scope.
//
// CoAP devices that speak DTLS cannot send a bearer token, so a token also has a
// pre-shared key (RFC 4279): the PSK identity is a short text form of the
// claims (PSKIdentity) and the key an HMAC of the identity under the network's
// device secret, which the authority derives from its key and gives each node it
// admits (DeviceSecretFile). A node that holds the secret can compute any
// device's key, so PSK devices trust every member the way bearer tokens trust
// the authority; a Thing that must not depend on that declares a device key and
// signs its readings (package ledger).

// TokenPrefix starts every bearer token.
const TokenPrefix = "fn1."

// PSKIdentityPrefix starts every PSK identity.
const PSKIdentityPrefix = "fnp1."

// MaxTokenBytes bounds a bearer token as a request carries it.
const MaxTokenBytes = 1024

// MaxPSKIdentityBytes bounds a PSK identity: libcoap's clients take identities
// of up to 128 bytes.
const MaxPSKIdentityBytes = 128

// maxPatternBytes bounds a token's Thing pattern so that its PSK identity fits
// MaxPSKIdentityBytes.
const maxPatternBytes = 80

// Token is what a credential allows.
type Token struct {
	ID      string // 16 hex characters, random
	Network string
	// Thing is a pattern of Thing ids: '*' matches any run of characters
	// (none included); every other character matches itself. "*" is every
	// Thing.
	Thing   string
	Scope   string // read, write or admin
	Issued  time.Time
	Expires time.Time // the zero time: never
}

// tokenClaims is a Token as it is signed. Times are decimal Unix seconds
// (strings, as every counter in canonical JSON).
type tokenClaims struct {
	Expires string `json:"exp,omitempty"`
	Issued  string `json:"iat"`
	ID      string `json:"id"`
	Network string `json:"network"`
	Scope   string `json:"scope"`
	Thing   string `json:"thing"`
	Type    string `json:"type"`
}

var (
	tokenIDPattern      = regexp.MustCompile(`^[0-9a-f]{16}$`)
	thingPatternPattern = regexp.MustCompile(`^[A-Za-z0-9._:~*-]{1,80}$`)
)

// ValidThingPattern checks a token's Thing pattern: the characters of Thing
// ids and '*', at most 80 of them.
func ValidThingPattern(p string) error {
	if !thingPatternPattern.MatchString(p) {
		return fmt.Errorf("thing pattern %q: use 1-%d letters, digits, '.', '_', ':', '~', '-' or '*' (any run of characters)", p, maxPatternBytes)
	}
	return nil
}

// MatchThing reports whether the Thing id matches pattern ('*' matches any
// run of characters). It is linear in len(pattern)·len(id) at worst.
func MatchThing(pattern, id string) bool {
	// The classic wildcard match: on a mismatch, go back to the last '*'
	// and let it take one more character.
	p, s := 0, 0
	star, mark := -1, 0
	for s < len(id) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, s
			p++
		case p < len(pattern) && pattern[p] == id[s]:
			p++
			s++
		case star >= 0:
			p = star + 1
			mark++
			s = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// validScope reports whether s names a scope.
func validScope(s string) bool { return s == "read" || s == "write" || s == "admin" }

func (t *Token) check() error {
	if !tokenIDPattern.MatchString(t.ID) {
		return fmt.Errorf("token id %q is not 16 hex characters", t.ID)
	}
	if err := ValidThingPattern(t.Thing); err != nil {
		return err
	}
	if !validScope(t.Scope) {
		return fmt.Errorf("token scope %q: want read, write or admin", t.Scope)
	}
	if !t.Expires.IsZero() && !t.Expires.After(t.Issued) {
		return errors.New("token expires before it was issued")
	}
	return nil
}

func (t *Token) claims() tokenClaims {
	c := tokenClaims{Issued: strconv.FormatInt(t.Issued.Unix(), 10), ID: t.ID, Network: t.Network,
		Scope: t.Scope, Thing: t.Thing, Type: "Token"}
	if !t.Expires.IsZero() {
		c.Expires = strconv.FormatInt(t.Expires.Unix(), 10)
	}
	return c
}

// IssueToken signs a token allowing scope on the Things matching pattern,
// valid for ttl (0: until revoked). It returns the token and its bearer form.
func (a *Authority) IssueToken(pattern, scope string, ttl time.Duration) (*Token, string, error) {
	if ttl < 0 {
		return nil, "", errors.New("token lifetime must not be negative")
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, "", err
	}
	now := time.Now().Truncate(time.Second)
	t := &Token{ID: hex.EncodeToString(id[:]), Network: a.Description.Name, Thing: pattern, Scope: scope, Issued: now}
	if ttl > 0 {
		t.Expires = now.Add(ttl).Truncate(time.Second)
		if !t.Expires.After(now) {
			return nil, "", errors.New("token lifetime is under a second")
		}
	}
	if err := t.check(); err != nil {
		return nil, "", err
	}
	msg, err := ledger.Canonical(t.claims())
	if err != nil {
		return nil, "", err
	}
	sig := ed25519.Sign(a.key, msg)
	b64 := base64.RawURLEncoding
	return t, TokenPrefix + b64.EncodeToString(msg) + "." + b64.EncodeToString(sig), nil
}

// ParseToken checks a bearer token's form and its authority's signature; it
// does not check its expiry or revocation (Members.CheckToken does).
func (d *Description) ParseToken(bearer string) (*Token, error) {
	if len(bearer) > MaxTokenBytes {
		return nil, fmt.Errorf("token is longer than %d bytes", MaxTokenBytes)
	}
	rest, ok := strings.CutPrefix(bearer, TokenPrefix)
	if !ok {
		return nil, fmt.Errorf("not a flownode token (it must start %q)", TokenPrefix)
	}
	claimsB64, sigB64, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, errors.New("token has no signature part")
	}
	b64 := base64.RawURLEncoding
	msg, err := b64.DecodeString(claimsB64)
	if err != nil {
		return nil, errors.New("token claims are not base64url")
	}
	sig, err := b64.DecodeString(sigB64)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, errors.New("token signature is not a base64url ed25519 signature")
	}
	key, err := d.AuthorityKey()
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(key, msg, sig) {
		return nil, fmt.Errorf("token is not signed by the authority of network %q (%s)", d.Name, d.Fingerprint())
	}
	// Signed by our authority; the claims are still decoded strictly and must
	// be the canonical bytes that were signed, so one token has one meaning.
	var c tokenClaims
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || c.Type != "Token" {
		return nil, errors.New("token claims are malformed")
	}
	if canon, err := ledger.Canonical(c); err != nil || !bytes.Equal(canon, msg) {
		return nil, errors.New("token claims are not canonical")
	}
	t, err := c.token()
	if err != nil {
		return nil, err
	}
	if t.Network != d.Name {
		return nil, fmt.Errorf("token of network %q, this is network %q", t.Network, d.Name)
	}
	return t, nil
}

func (c tokenClaims) token() (*Token, error) {
	iat, err := strconv.ParseInt(c.Issued, 10, 64)
	if err != nil {
		return nil, errors.New("token issue time is not a number")
	}
	t := &Token{ID: c.ID, Network: c.Network, Thing: c.Thing, Scope: c.Scope, Issued: time.Unix(iat, 0)}
	if c.Expires != "" {
		exp, err := strconv.ParseInt(c.Expires, 10, 64)
		if err != nil {
			return nil, errors.New("token expiry is not a number")
		}
		t.Expires = time.Unix(exp, 0)
	}
	return t, t.check()
}

// Current reports whether t is valid at time now (issued, not expired). A
// minute's slack covers clocks a little behind the authority's.
func (t *Token) Current(now time.Time) error {
	if now.Add(time.Minute).Before(t.Issued) {
		return fmt.Errorf("token %s is not valid before %s", t.ID, t.Issued.UTC().Format(time.RFC3339))
	}
	if !t.Expires.IsZero() && !now.Before(t.Expires) {
		return fmt.Errorf("token %s expired at %s", t.ID, t.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

// Rank orders the token's scope: read 1, write 2, admin 3.
func (t *Token) Rank() int {
	switch t.Scope {
	case "read":
		return 1
	case "write":
		return 2
	case "admin":
		return 3
	}
	return 0
}

// PSKIdentity is the token's identity for DTLS PSK: "fnp1.ID.SCOPE.EXP.PATTERN",
// EXP in Unix seconds (0: never). It holds everything a node needs to decide
// what the device may do, so no node looks a device up.
func (t *Token) PSKIdentity() string {
	exp := int64(0)
	if !t.Expires.IsZero() {
		exp = t.Expires.Unix()
	}
	return fmt.Sprintf("%s%s.%s.%d.%s", PSKIdentityPrefix, t.ID, t.Scope, exp, t.Thing)
}

// ParsePSKIdentity reads a PSK identity back into the Token it names (without
// Network and Issued, which it does not carry). Whether the device holds the
// key is the DTLS handshake's business.
func ParsePSKIdentity(identity string) (*Token, error) {
	if len(identity) > MaxPSKIdentityBytes {
		return nil, fmt.Errorf("PSK identity is longer than %d bytes", MaxPSKIdentityBytes)
	}
	rest, ok := strings.CutPrefix(identity, PSKIdentityPrefix)
	if !ok {
		return nil, fmt.Errorf("not a flownode PSK identity (it must start %q)", PSKIdentityPrefix)
	}
	parts := strings.SplitN(rest, ".", 4)
	if len(parts) != 4 {
		return nil, errors.New("PSK identity: want fnp1.ID.SCOPE.EXPIRY.PATTERN")
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || exp < 0 {
		return nil, errors.New("PSK identity: expiry is not a number")
	}
	t := &Token{ID: parts[0], Scope: parts[1], Thing: parts[3]}
	if exp > 0 {
		t.Expires = time.Unix(exp, 0)
	}
	if err := t.check(); err != nil {
		return nil, fmt.Errorf("PSK identity: %w", err)
	}
	return t, nil
}

// DeviceSecretFile holds the network's device secret in a node's data
// directory (hex, 0600): the key from which every device's PSK is derived.
// admit writes it; a data directory that holds the authority key derives it.
const DeviceSecretFile = "device-psk.key"

// DeviceSecret is the network's device secret, derived from the authority
// key so that the authority never has to store another secret.
func (a *Authority) DeviceSecret() []byte {
	m := hmac.New(sha256.New, a.key.Seed())
	m.Write([]byte("flownode device psk secret v1"))
	return m.Sum(nil)
}

// PSKKey is the pre-shared key of a PSK identity under the device secret:
// base64url of the first 24 bytes of HMAC-SHA256(secret, identity), 32
// printable characters, so that a device can be given it as text.
func PSKKey(secret []byte, identity string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(identity))
	sum := m.Sum(nil)
	return []byte(base64.RawURLEncoding.EncodeToString(sum[:24]))
}

// LoadDeviceSecret reads the network's device secret from a node's data
// directory. Without DeviceSecretFile (a directory admitted before devices
// had PSKs) the error wraps fs.ErrNotExist: admit the node again to add it.
func LoadDeviceSecret(dir string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, DeviceSecretFile))
	if err != nil {
		return nil, err
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(secret) != sha256.Size {
		return nil, fmt.Errorf("%s is damaged: want %d hex-encoded bytes", filepath.Join(dir, DeviceSecretFile), sha256.Size)
	}
	return secret, nil
}
