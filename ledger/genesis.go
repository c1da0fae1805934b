package ledger

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// DefaultNetwork is the network a node joins when none is named: a development network.
const DefaultNetwork = "flownode-dev"

// FormatVersion is the version of the ledger's byte formats (docs/ledger-format.md).
const FormatVersion = 1

// MiningParams are the network-wide parameters of the miner. They are part of the
// genesis block, so every verifier recomputes the same difficulty.
type MiningParams struct {
	Rate          uint64        `json:"rate,string"`          // hash attempts per second per node
	MeanBlockTime time.Duration `json:"meanBlockTime,string"` // nanoseconds
	Mean          float64       `json:"mean"`                 // of the Gaussian density
	Variance      float64       `json:"variance"`
}

// Network names a network and fixes its rules; its genesis block is derived from it.
type Network struct {
	Name   string       `json:"network"`
	Mining MiningParams `json:"mining"`
	// Authority is the hex ed25519 public key of the network's authority, which
	// admits its nodes (package network). Empty only for test networks.
	Authority string `json:"authority,omitempty"`
}

// Genesis is the block every branch of a network starts from (block number 0). Nodes
// whose genesis hashes differ belong to different networks and refuse each other.
type Genesis struct {
	Type    string       `json:"type"` // "Genesis"
	Version int          `json:"version"`
	Network string       `json:"network"`
	Mining  MiningParams `json:"mining"`
	// Authority binds the network's authority key into its identity: two networks
	// with one name but different authorities have different genesis blocks.
	Authority string `json:"authority,omitempty"`
	Hash      Hash   `json:"-"`
	Bytes     []byte `json:"-"` // canonical JSON
}

var authorityKey = regexp.MustCompile(`^[0-9a-f]{64}$`)

var networkName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// NewGenesis derives the genesis block of a network: its bytes are the canonical JSON of
// the network's rules, and its hash is their SHA-256.
func NewGenesis(n Network) (*Genesis, error) {
	if !networkName.MatchString(n.Name) {
		return nil, fmt.Errorf("network name %q is invalid: use 1-64 letters, digits, '.', '_' or '-'", n.Name)
	}
	if n.Mining.Rate == 0 || n.Mining.MeanBlockTime <= 0 || n.Mining.Variance <= 0 {
		return nil, errors.New("network mining parameters must have a positive rate, mean block time and variance")
	}
	if n.Authority != "" && !authorityKey.MatchString(n.Authority) {
		return nil, fmt.Errorf("network authority %q is invalid: want 64 lowercase hex characters (an ed25519 public key)", n.Authority)
	}
	g := &Genesis{Type: "Genesis", Version: FormatVersion, Network: n.Name, Mining: n.Mining, Authority: n.Authority}
	b, err := Canonical(g)
	if err != nil {
		return nil, err
	}
	g.Bytes = b
	g.Hash = sha256.Sum256(b)
	return g, nil
}

// StoredGenesis reads the genesis a data dir belongs to, for offline tools that have no
// network configuration of their own. It is re-derived from its rules, so a stored
// genesis whose bytes are not exactly its own canonical form is refused.
func StoredGenesis(st interface{ Meta(string) ([]byte, error) }) (*Genesis, error) {
	b, err := st.Meta(metaGenesis)
	if err != nil {
		return nil, fmt.Errorf("read genesis: %w", err)
	}
	var g Genesis
	if err := decodeStrict(b, &g); err != nil {
		return nil, fmt.Errorf("stored genesis is damaged: %w", err)
	}
	out, err := NewGenesis(Network{Name: g.Network, Mining: g.Mining, Authority: g.Authority})
	if err != nil {
		return nil, fmt.Errorf("stored genesis is damaged: %w", err)
	}
	if string(out.Bytes) != string(b) {
		return nil, errors.New("stored genesis is damaged: its bytes are not its canonical form")
	}
	return out, nil
}
