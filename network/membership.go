package network

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/flownode/flownode/ledger"
)

// MembershipFile is the name of a node's membership in its data directory (PEM, an
// X.509 certificate).
const MembershipFile = "membership.pem"

// Membership is the authority's admission of one node key to a network, until an
// expiry: an X.509 certificate for the node's ed25519 key, signed by the authority.
type Membership struct {
	Network   string
	Node      ledger.Key // SHA-1 of Public: the node's Chord ID
	Public    ed25519.PublicKey
	NotBefore time.Time
	NotAfter  time.Time
	Cert      *x509.Certificate
}

// ErrNotMember is wrapped by every refusal of a membership.
var ErrNotMember = errors.New("not a member of this network")

// ParseMembership reads a membership certificate (DER) and checks its shape: an
// ed25519 key whose node ID is the certificate's subject. It does not check who
// signed it: see Description.Check.
func ParseMembership(der []byte) (*Membership, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: membership certificate: %v", ErrNotMember, err)
	}
	pub, ok := c.PublicKey.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: membership key is not ed25519", ErrNotMember)
	}
	id := ledger.NodeID(pub)
	if c.Subject.CommonName != id.Hex() {
		return nil, fmt.Errorf("%w: membership names node %q but its key is node %s", ErrNotMember, c.Subject.CommonName, id.Hex())
	}
	if len(c.Subject.Organization) != 1 {
		return nil, fmt.Errorf("%w: membership names no network", ErrNotMember)
	}
	return &Membership{Network: c.Subject.Organization[0], Node: id, Public: pub,
		NotBefore: c.NotBefore, NotAfter: c.NotAfter, Cert: c}, nil
}

// Check verifies that m was signed by this network's authority for this network and
// is valid at t.
func (d *Description) Check(m *Membership, t time.Time) error {
	if m.Network != d.Name {
		return fmt.Errorf("%w: node %s is admitted to network %q, this is network %q", ErrNotMember, m.Node.Short(), m.Network, d.Name)
	}
	key, err := d.AuthorityKey()
	if err != nil {
		return err
	}
	c := m.Cert
	if c.SignatureAlgorithm != x509.PureEd25519 || !ed25519.Verify(key, c.RawTBSCertificate, c.Signature) {
		return fmt.Errorf("%w: node %s's membership of %q is not signed by this network's authority (%s)", ErrNotMember, m.Node.Short(), d.Name, d.Fingerprint())
	}
	return d.checkWindow(m, t)
}

// checkWindow is Check without the signature: for a membership whose
// signature was checked when it was first seen.
func (d *Description) checkWindow(m *Membership, t time.Time) error {
	if m.Network != d.Name {
		return fmt.Errorf("%w: node %s is admitted to network %q, this is network %q", ErrNotMember, m.Node.Short(), m.Network, d.Name)
	}
	if t.Before(m.NotBefore) {
		return fmt.Errorf("%w: node %s's membership is valid from %s", ErrNotMember, m.Node.Short(), m.NotBefore.UTC().Format(time.RFC3339))
	}
	if t.After(m.NotAfter) {
		return fmt.Errorf("%w: node %s's membership expired at %s", ErrNotMember, m.Node.Short(), m.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// DER returns the membership certificate's bytes.
func (m *Membership) DER() []byte { return m.Cert.Raw }

// PEM returns the membership in PEM form.
func (m *Membership) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: m.Cert.Raw})
}

// Save writes dir/membership.pem.
func (m *Membership) Save(dir string) error {
	return ledger.WriteFileSynced(filepath.Join(dir, MembershipFile), m.PEM(), 0o644)
}

// LoadMembership reads dir/membership.pem. A missing file is an error wrapping
// fs.ErrNotExist.
func LoadMembership(dir string) (*Membership, error) {
	path := filepath.Join(dir, MembershipFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read membership: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s is damaged: want one PEM CERTIFICATE", path)
	}
	return ParseMembership(blk.Bytes)
}
