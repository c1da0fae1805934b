package network

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/flownode/flownode/ledger"
)

// DescriptionFile is the name of a network's public description, in an authority
// directory and in every node's data directory.
const DescriptionFile = "network.json"

// Description is a network's public identity: its name, its authority's public key and
// its mining rules. Every node of the network holds the same one; its genesis block is
// derived from it.
type Description struct {
	Name      string              `json:"name"`
	Authority string              `json:"authority"` // hex ed25519 public key
	Mining    ledger.MiningParams `json:"mining"`
}

// AuthorityKey returns the authority's public key.
func (d *Description) AuthorityKey() (ed25519.PublicKey, error) {
	b, err := hex.DecodeString(d.Authority)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("network %q: authority key %q is not a hex ed25519 public key", d.Name, d.Authority)
	}
	return ed25519.PublicKey(b), nil
}

// Fingerprint is a short name for the authority key, for logs and the dashboard: the
// first 16 hex characters of the SHA-256 of the key.
func (d *Description) Fingerprint() string {
	b, err := hex.DecodeString(d.Authority)
	if err != nil {
		return "invalid"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Ledger returns the network as the ledger names it (the genesis block's contents).
func (d *Description) Ledger() ledger.Network {
	return ledger.Network{Name: d.Name, Mining: d.Mining, Authority: d.Authority}
}

// Genesis derives the network's genesis block.
func (d *Description) Genesis() (*ledger.Genesis, error) {
	if _, err := d.AuthorityKey(); err != nil {
		return nil, err
	}
	return ledger.NewGenesis(d.Ledger())
}

// Validate checks the description is whole.
func (d *Description) Validate() error {
	_, err := d.Genesis()
	return err
}

// Equal reports whether two descriptions name the same network.
func (d *Description) Equal(o *Description) bool {
	return d.Name == o.Name && d.Authority == o.Authority && d.Mining == o.Mining
}

// LoadDescription reads dir/network.json. A missing file is an error wrapping
// fs.ErrNotExist.
func LoadDescription(dir string) (*Description, error) {
	path := filepath.Join(dir, DescriptionFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read network description: %w", err)
	}
	var d Description
	if err := decodeStrict(b, &d); err != nil {
		return nil, fmt.Errorf("network description %s is damaged: %w", path, err)
	}
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("network description %s: %w", path, err)
	}
	return &d, nil
}

// Save writes dir/network.json (0644: it is public).
func (d *Description) Save(dir string) error {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	return ledger.WriteFileSynced(filepath.Join(dir, DescriptionFile), append(b, '\n'), 0o644)
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}
