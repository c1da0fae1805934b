package network

import (
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/flownode/flownode/ledger"
)

// Revocation is the authority's signed statement that a node is no longer a member,
// from Time on. Records the node signed before then stay valid; nothing it signs or
// says after is accepted. A revocation names either a node or a token (Token, the
// token's ID): a revoked token is refused by every node from the moment it holds
// the revocation.
type Revocation struct {
	Network   string `json:"network"`
	Node      string `json:"node,omitempty"`  // hex node ID
	Token     string `json:"token,omitempty"` // a token's ID, instead of Node
	Time      int64  `json:"time"`            // Unix milliseconds
	Reason    string `json:"reason,omitempty"`
	Signature string `json:"signature"` // hex ed25519 over the canonical JSON of the other fields
}

// At returns the revocation's time.
func (r *Revocation) At() time.Time { return time.UnixMilli(r.Time) }

// ID returns the revoked node's ID.
func (r *Revocation) ID() (ledger.Key, error) { return ledger.ParseKey(r.Node) }

// Subject names what is revoked, for logs: "node ID" or "token ID".
func (r *Revocation) Subject() string {
	if r.Token != "" {
		return "token " + r.Token
	}
	return "node " + r.Node
}

func (r *Revocation) signedBytes() ([]byte, error) {
	c := *r
	c.Signature = ""
	return ledger.Canonical(struct {
		Type    string `json:"type"`
		Network string `json:"network"`
		Node    string `json:"node,omitempty"`
		Time    int64  `json:"time"`
		Token   string `json:"token,omitempty"`
		Reason  string `json:"reason,omitempty"`
	}{"Revocation", c.Network, c.Node, c.Time, c.Token, c.Reason})
}

// CheckRevocation verifies that r is signed by this network's authority.
func (d *Description) CheckRevocation(r *Revocation) error {
	if r.Network != d.Name {
		return fmt.Errorf("revocation of network %q, this is network %q", r.Network, d.Name)
	}
	switch {
	case r.Token != "" && r.Node != "":
		return fmt.Errorf("revocation names both node %q and token %q; one revocation revokes one", r.Node, r.Token)
	case r.Token != "":
		if !tokenIDPattern.MatchString(r.Token) {
			return fmt.Errorf("revocation: token %q is not a token ID (16 hex characters)", r.Token)
		}
	default:
		if _, err := r.ID(); err != nil {
			return fmt.Errorf("revocation: node %q: %w", r.Node, err)
		}
	}
	if len(r.Reason) > 256 {
		return fmt.Errorf("revocation: reason longer than 256 bytes")
	}
	key, err := d.AuthorityKey()
	if err != nil {
		return err
	}
	sig, err := hex.DecodeString(r.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("revocation of %s: signature is not hex ed25519", r.Subject())
	}
	msg, err := r.signedBytes()
	if err != nil {
		return err
	}
	if !ed25519.Verify(key, msg, sig) {
		return fmt.Errorf("revocation of %s is not signed by this network's authority (%s)", r.Subject(), d.Fingerprint())
	}
	return nil
}
