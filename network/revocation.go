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
// says after is accepted.
type Revocation struct {
	Network   string `json:"network"`
	Node      string `json:"node"` // hex node ID
	Time      int64  `json:"time"` // Unix milliseconds
	Reason    string `json:"reason,omitempty"`
	Signature string `json:"signature"` // hex ed25519 over the canonical JSON of the other fields
}

// At returns the revocation's time.
func (r *Revocation) At() time.Time { return time.UnixMilli(r.Time) }

// ID returns the revoked node's ID.
func (r *Revocation) ID() (ledger.Key, error) { return ledger.ParseKey(r.Node) }

func (r *Revocation) signedBytes() ([]byte, error) {
	c := *r
	c.Signature = ""
	return ledger.Canonical(struct {
		Type    string `json:"type"`
		Network string `json:"network"`
		Node    string `json:"node"`
		Time    int64  `json:"time"`
		Reason  string `json:"reason,omitempty"`
	}{"Revocation", c.Network, c.Node, c.Time, c.Reason})
}

// CheckRevocation verifies that r is signed by this network's authority.
func (d *Description) CheckRevocation(r *Revocation) error {
	if r.Network != d.Name {
		return fmt.Errorf("revocation of network %q, this is network %q", r.Network, d.Name)
	}
	if _, err := r.ID(); err != nil {
		return fmt.Errorf("revocation: node %q: %w", r.Node, err)
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
		return fmt.Errorf("revocation of %s: signature is not hex ed25519", r.Node)
	}
	msg, err := r.signedBytes()
	if err != nil {
		return err
	}
	if !ed25519.Verify(key, msg, sig) {
		return fmt.Errorf("revocation of %s is not signed by this network's authority (%s)", r.Node, d.Fingerprint())
	}
	return nil
}
