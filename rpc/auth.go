package rpc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
)

// Auth makes a transport authenticate every peer, both ways, before it handles
// any message: WebSocket connections carry TLS 1.3 and CoAP runs over DTLS 1.2,
// each with certificates on both sides. A nil Auth is an open transport, for
// protocol tests only.
//
// With Auth set, a transport:
//   - refuses a peer whose certificate Verify refuses, before reading any
//     message from it;
//   - refuses a message whose From.ID is not the ID the peer authenticated as,
//     and gives handlers that ID (AuthenticatedPeer);
//   - dialing a peer whose ID it knows (To.ID), refuses the connection unless
//     the far side authenticates as that ID, so a reply sent to a claimed
//     address reaches only the member that holds that ID's key.
type Auth struct {
	// Certificate is this node's: its membership certificate and node key.
	Certificate tls.Certificate
	// Verify checks the certificate chain a peer presented (leaf first; the
	// handshake has proved the peer holds the leaf's key) and returns the
	// peer's node ID, 40 lowercase hex characters. It runs on every
	// handshake, so revocations take effect on the next connection (see
	// Reverify for the open ones).
	Verify func(chain []*x509.Certificate) (id string, err error)
	// Refused, when set, is told of each peer refused at the handshake.
	Refused func(remote string, err error)
}

// ErrAuth is wrapped by every refusal of a peer's authentication.
var ErrAuth = errors.New("rpc: peer not authenticated")

// verifyRaw runs Verify on a chain of DER certificates, as TLS and DTLS hand
// them over. want, when not empty, is the only ID accepted.
func (a *Auth) verifyRaw(raw [][]byte, want string) (string, error) {
	if len(raw) == 0 {
		return "", fmt.Errorf("%w: no certificate", ErrAuth)
	}
	chain := make([]*x509.Certificate, 0, len(raw))
	for _, b := range raw {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return "", fmt.Errorf("%w: certificate: %v", ErrAuth, err)
		}
		chain = append(chain, c)
	}
	id, err := a.Verify(chain)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrAuth, err)
	}
	if want != "" && want != AnyNode && id != want {
		return "", fmt.Errorf("%w: the node at this address is %s, not %s", ErrAuth, id, want)
	}
	return id, nil
}

// tlsConfig returns a TLS 1.3 configuration for one connection. Certificates
// are checked by Verify, not by the system's roots: the network's authority is
// the only issuer. The verified ID is stored in *got.
func (a *Auth) tlsConfig(server bool, want string, got *atomic.Value) *tls.Config {
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{a.Certificate},
		// Verified by VerifyPeerCertificate below, against the network's
		// authority; the standard chain check would need a CA certificate the
		// network does not have, and host names mean nothing here.
		InsecureSkipVerify: true, //nolint:gosec // see above
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			id, err := a.verifyRaw(raw, want)
			if err != nil {
				return err
			}
			got.Store(id)
			return nil
		},
		// Ed25519 is the only signature the memberships use.
		SessionTicketsDisabled: true,
	}
	if server {
		cfg.ClientAuth = tls.RequireAnyClientCert
	}
	return cfg
}

type peerKey struct{}

// withPeer returns ctx carrying the ID a peer authenticated as.
func withPeer(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, peerKey{}, id)
}

// AuthenticatedPeer returns the node ID the sender of the message being
// handled authenticated as, when the transport authenticates peers.
func AuthenticatedPeer(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(peerKey{}).(string)
	return id, ok
}

// checkFrom refuses an envelope whose From.ID is not the authenticated peer's.
func checkFrom(env *Envelope, peer string) error {
	if peer == "" {
		return nil
	}
	if env.From.ID != peer {
		return fmt.Errorf("%w: message from %q on a connection authenticated as %s", ErrAuth, env.From.ID, peer)
	}
	return nil
}
