package network

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flownode/flownode/ledger"
)

// AuthorityKeyFile is the name of the authority's private key in an authority
// directory. It must never be on a node (see docs: key handling).
const AuthorityKeyFile = "authority.key"

// DefaultValidity is how long a membership is valid when admit is given no expiry.
const DefaultValidity = 365 * 24 * time.Hour

// Authority is a network's authority: its description and its private key.
type Authority struct {
	Description *Description
	key         ed25519.PrivateKey
}

// Init creates a network in dir: a fresh authority key (authority.key, 0600) and the
// public description (network.json). It refuses to overwrite an existing authority.
func Init(dir, name string, mining ledger.MiningParams) (*Authority, error) {
	if _, err := os.Stat(filepath.Join(dir, AuthorityKeyFile)); err == nil {
		return nil, fmt.Errorf("%s already holds a network authority; refusing to replace it", dir)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	a := &Authority{Description: &Description{Name: name, Authority: hex.EncodeToString(pub), Mining: mining}, key: priv}
	if err := a.Description.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	seed := hex.EncodeToString(priv.Seed()) + "\n"
	if err := ledger.WriteFileSynced(filepath.Join(dir, AuthorityKeyFile), []byte(seed), 0o600); err != nil {
		return nil, err
	}
	if err := a.Description.Save(dir); err != nil {
		return nil, err
	}
	return a, nil
}

// NewAuthority makes an authority in memory (tests and tools that keep no files).
func NewAuthority(name string, mining ledger.MiningParams) (*Authority, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	a := &Authority{Description: &Description{Name: name, Authority: hex.EncodeToString(pub), Mining: mining}, key: priv}
	return a, a.Description.Validate()
}

// LoadAuthority reads an authority directory (authority.key and network.json) and
// checks that the key is the one the description names.
func LoadAuthority(dir string) (*Authority, error) {
	d, err := LoadDescription(dir)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, AuthorityKeyFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s holds no %s: it is not an authority directory (flownode network init makes one)", dir, AuthorityKeyFile)
		}
		return nil, err
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s is damaged: want %d hex-encoded bytes", filepath.Join(dir, AuthorityKeyFile), ed25519.SeedSize)
	}
	key := ed25519.NewKeyFromSeed(seed)
	if hex.EncodeToString(key.Public().(ed25519.PublicKey)) != d.Authority {
		return nil, fmt.Errorf("%s does not match the authority key of %s", AuthorityKeyFile, DescriptionFile)
	}
	return &Authority{Description: d, key: key}, nil
}

// subject is the authority's name in the certificates it issues.
func (a *Authority) subject() pkix.Name {
	return pkix.Name{CommonName: "flownode authority " + a.Description.Fingerprint(), Organization: []string{a.Description.Name}}
}

// Admit signs a membership for the holder of pub, valid from now until notAfter.
func (a *Authority) Admit(pub ed25519.PublicKey, notAfter time.Time) (*Membership, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("admit: not an ed25519 public key")
	}
	now := time.Now()
	if !notAfter.After(now) {
		return nil, fmt.Errorf("admit: expiry %s is in the past", notAfter.Format(time.RFC3339))
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	id := ledger.NodeID(pub)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: id.Hex(), Organization: []string{a.Description.Name}},
		// A minute's slack for clocks that are a little behind the authority's.
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	parent := &x509.Certificate{Subject: a.subject(), PublicKey: a.key.Public()}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, a.key)
	if err != nil {
		return nil, fmt.Errorf("admit: %w", err)
	}
	m, err := ParseMembership(der)
	if err != nil {
		return nil, err
	}
	return m, a.Description.Check(m, now)
}

// AdmitDir admits the node whose data directory is nodeDir: it creates the node key
// there when absent, then writes the network description, the node's membership and
// the network's device secret (DeviceSecretFile: the node derives CoAP devices' PSKs).
// A data directory of another network is refused.
func (a *Authority) AdmitDir(nodeDir string, notAfter time.Time) (*Membership, error) {
	if d, err := LoadDescription(nodeDir); err == nil && !d.Equal(a.Description) {
		return nil, fmt.Errorf("%s belongs to network %q (authority %s), not to %q (authority %s)",
			nodeDir, d.Name, d.Fingerprint(), a.Description.Name, a.Description.Fingerprint())
	}
	if err := os.MkdirAll(nodeDir, 0o700); err != nil {
		return nil, err
	}
	id, _, err := ledger.LoadOrCreateIdentity(nodeDir)
	if err != nil {
		return nil, err
	}
	m, err := a.Admit(id.Public, notAfter)
	if err != nil {
		return nil, err
	}
	if err := a.Description.Save(nodeDir); err != nil {
		return nil, err
	}
	if err := m.Save(nodeDir); err != nil {
		return nil, err
	}
	secret := hex.EncodeToString(a.DeviceSecret()) + "\n"
	if err := ledger.WriteFileSynced(filepath.Join(nodeDir, DeviceSecretFile), []byte(secret), 0o600); err != nil {
		return nil, err
	}
	return m, nil
}

// Revoke signs the revocation of the member id, effective now.
func (a *Authority) Revoke(id ledger.Key, reason string) (*Revocation, error) {
	return a.sign(&Revocation{Network: a.Description.Name, Node: id.Hex(), Time: time.Now().UnixMilli(), Reason: reason})
}

// RevokeToken signs the revocation of the token with that ID, effective now.
func (a *Authority) RevokeToken(tokenID, reason string) (*Revocation, error) {
	r, err := a.sign(&Revocation{Network: a.Description.Name, Token: tokenID, Time: time.Now().UnixMilli(), Reason: reason})
	if err != nil {
		return nil, err
	}
	return r, a.Description.CheckRevocation(r)
}

func (a *Authority) sign(r *Revocation) (*Revocation, error) {
	msg, err := r.signedBytes()
	if err != nil {
		return nil, err
	}
	r.Signature = hex.EncodeToString(ed25519.Sign(a.key, msg))
	return r, nil
}
