package access

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	"github.com/flownode/flownode/network"
)

// Policy is what a node asks of its clients.
type Policy struct {
	// OpenLoopback lets clients on the node's own machine (a loopback source
	// address) in without a credential: the dev node of make run. A gateway
	// in the field sets it false.
	OpenLoopback bool
	// OpenReads lets anyone read records, TDs and live values without a
	// credential: records are signed, public facts. Writes and admin calls
	// always need one (but see OpenLoopback).
	OpenReads bool
}

// Authorizer decides whether an HTTP request may act on a Thing with a scope.
// thing "" means the request is not about one Thing (a listing, verify): only
// a credential for every Thing ("*") covers it. A nil Authorizer lets
// everything in (tests, embedders).
type Authorizer interface {
	Authorize(r *http.Request, thing string, need Scope) error
}

// Guard is a node's Authorizer, and the CoAP devices' PSK source: it checks
// bearer tokens and PSK identities against the network.
type Guard struct {
	members *network.Members
	policy  Policy
	secret  []byte // the network's device secret; nil: no PSK devices here

	mu    sync.Mutex
	valid map[[32]byte]*network.Token // tokens whose signature checked, by SHA-256
}

// maxCachedTokens bounds the cache of checked signatures: past it the cache
// starts over (an ed25519 verify, ~50 µs, per token then).
const maxCachedTokens = 1024

// NewGuard makes a node's guard. deviceSecret is the network's device
// secret (network.LoadDeviceSecret); nil turns PSK devices away.
func NewGuard(m *network.Members, p Policy, deviceSecret []byte) *Guard {
	return &Guard{members: m, policy: p, secret: deviceSecret, valid: map[[32]byte]*network.Token{}}
}

// Policy returns the guard's policy.
func (g *Guard) Policy() Policy { return g.policy }

// Bearer returns the bearer token a request carries: the Authorization
// header ("Bearer TOKEN", RFC 6750) or, for devices and browsers' WebSockets
// that cannot set headers, the token query parameter (or RFC 6750's
// access_token). ok is false when
// it carries none.
func Bearer(r *http.Request) (token string, ok bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok), true
		}
		return "", true // a credential of another kind: refused as invalid, not as absent
	}
	q := r.URL.Query()
	for _, name := range []string{"token", "access_token"} { // flownode's name, and RFC 6750's
		if q.Has(name) {
			return q.Get(name), true
		}
	}
	return "", false
}

// Authorize implements Authorizer.
func (g *Guard) Authorize(r *http.Request, thing string, need Scope) error {
	tok, ok := Bearer(r)
	if !ok {
		if g.open(r, need) {
			return nil
		}
		return fmt.Errorf("%w: %w: this request needs a bearer token with %s scope (Authorization: Bearer TOKEN, or ?token=TOKEN)", ErrNoCredential, errMissing, need)
	}
	err := g.AuthorizeToken(tok, thing, need)
	if errors.Is(err, ErrForbidden) && g.open(r, need) {
		// A token narrower than what the open policy allows anyway.
		return nil
	}
	return err
}

// open reports whether the policy lets this request in without a credential.
func (g *Guard) open(r *http.Request, need Scope) bool {
	if need == Read && g.policy.OpenReads {
		return true
	}
	return g.policy.OpenLoopback && isLoopback(r.RemoteAddr)
}

func isLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// AuthorizeToken checks a bearer token and what it allows.
func (g *Guard) AuthorizeToken(bearer, thing string, need Scope) error {
	t, err := g.token(bearer)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoCredential, err)
	}
	return allows(t, thing, need)
}

// token returns the checked token: its signature from the cache when seen
// before, its time and revocation every time.
func (g *Guard) token(bearer string) (*network.Token, error) {
	sum := sha256.Sum256([]byte(bearer))
	g.mu.Lock()
	t := g.valid[sum]
	g.mu.Unlock()
	if t == nil {
		var err error
		if t, err = g.members.Description().ParseToken(bearer); err != nil {
			return nil, err
		}
		g.mu.Lock()
		if len(g.valid) >= maxCachedTokens {
			clear(g.valid)
		}
		g.valid[sum] = t
		g.mu.Unlock()
	}
	return t, g.members.CheckTokenNow(t)
}

// allows checks a valid token's scope and pattern.
func allows(t *network.Token, thing string, need Scope) error {
	if t.Rank() < int(need) {
		return fmt.Errorf("%w: token %s has %s scope; this needs %s", ErrForbidden, t.ID, t.Scope, need)
	}
	if !network.MatchThing(t.Thing, thing) {
		if thing == "" {
			return fmt.Errorf("%w: token %s covers Things %q; this needs a token for every Thing (\"*\")", ErrForbidden, t.ID, t.Thing)
		}
		return fmt.Errorf("%w: token %s covers Things %q, not %q", ErrForbidden, t.ID, t.Thing, thing)
	}
	return nil
}

// PSK is the DTLS PSK callback of the CoAP devices' port: the key of a PSK
// identity, or an error that fails the handshake (not ours, revoked,
// expired, or no device secret on this node).
func (g *Guard) PSK(identity []byte) ([]byte, error) {
	if g.secret == nil {
		return nil, errors.New("this node holds no device secret (admit its data directory again to add " + network.DeviceSecretFile + ")")
	}
	if _, err := g.pskToken(string(identity)); err != nil {
		return nil, err
	}
	return network.PSKKey(g.secret, string(identity)), nil
}

func (g *Guard) pskToken(identity string) (*network.Token, error) {
	t, err := network.ParsePSKIdentity(identity)
	if err != nil {
		return nil, err
	}
	if err := g.members.CheckTokenNow(t); err != nil {
		return nil, err
	}
	return t, nil
}

// AuthorizePSK decides a request of a device that completed a DTLS PSK
// handshake as identity: its token may since have expired or been revoked.
// identity "" is a plain CoAP request: only the open policy lets it in,
// loopback being the source address's.
func (g *Guard) AuthorizePSK(identity string, remote netip.Addr, thing string, need Scope) error {
	if identity == "" {
		if (need == Read && g.policy.OpenReads) || (g.policy.OpenLoopback && remote.Unmap().IsLoopback()) {
			return nil
		}
		return fmt.Errorf("%w: this request needs coaps:// with a PSK identity of %s scope", ErrNoCredential, need)
	}
	t, err := g.pskToken(identity)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoCredential, err)
	}
	return allows(t, thing, need)
}

// errMissing marks a refusal of a request that carried no credential at all:
// its challenge names no error (RFC 6750 section 3.1).
var errMissing = errors.New("missing")

// Refusal maps an Authorize error to its HTTP status and WWW-Authenticate
// challenge (RFC 6750): 401 for a missing or invalid credential, 403 for one
// that does not allow the request; any other error is a 500.
func Refusal(err error) (status int, challenge string) {
	switch {
	case errors.Is(err, errMissing):
		return http.StatusUnauthorized, `Bearer realm="flownode"`
	case errors.Is(err, ErrNoCredential):
		return http.StatusUnauthorized, `Bearer realm="flownode", error="invalid_token"`
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, `Bearer realm="flownode", error="insufficient_scope"`
	}
	return http.StatusInternalServerError, ""
}

// Check asks a (nil: everything is allowed) whether the request may act on
// thing with need. When not, it answers the request itself — the status and
// challenge of Refusal and the JSON body {"error": why} every flownode error
// has — and returns false.
func Check(a Authorizer, w http.ResponseWriter, r *http.Request, thing string, need Scope) bool {
	if a == nil {
		return true
	}
	err := a.Authorize(r, thing, need)
	if err == nil {
		return true
	}
	status, challenge := Refusal(err)
	if challenge != "" {
		w.Header().Set("WWW-Authenticate", challenge)
	}
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{strings.Replace(err.Error(), errMissing.Error()+": ", "", 1)})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
	return false
}
