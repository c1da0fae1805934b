// Package keyspace is the 160-bit space that the Chord ring and the ledger
// share: a node's ID, a reading's key (H_DATA, or a client's own) and a
// branch's name are all points in it, written as 40 lowercase hex characters.
// chord.ID and ledger.Key are this one type under the names each layer uses.
package keyspace

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/big"
)

// Bits is the size of the space: IDs are numbers modulo 2^Bits.
const Bits = 160

// ID is a point of the space: a 160-bit big-endian number (a SHA-1 hash). The
// zero ID means "none" (no node); SHA-1 never yields it in practice.
type ID [20]byte

// Parse reads 40 hexadecimal characters (either case).
func Parse(s string) (ID, error) {
	var id ID
	return id, id.UnmarshalText([]byte(s))
}

// Hex returns the 40 lowercase hex characters of id.
func (id ID) Hex() string { return hex.EncodeToString(id[:]) }

// String returns id in hex, as the HTTP API and records show it.
func (id ID) String() string { return id.Hex() }

// Short returns the first 8 hex characters, for traces and logs.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsZero reports whether id is the zero ID ("none").
func (id ID) IsZero() bool { return id == ID{} }

// Cmp compares id and o as unsigned numbers: -1, 0 or +1.
func (id ID) Cmp(o ID) int { return bytes.Compare(id[:], o[:]) }

// Less reports whether id < o as numbers (not clockwise order).
func (id ID) Less(o ID) bool { return id.Cmp(o) < 0 }

// AddPow2 returns id + 2^i mod 2^Bits: the start of Chord finger i.
func (id ID) AddPow2(i int) ID {
	if i < 0 || i >= Bits {
		return id
	}
	byteIdx := len(id) - 1 - i/8
	carry := uint16(1) << (i % 8)
	for b := byteIdx; b >= 0 && carry != 0; b-- {
		sum := uint16(id[b]) + carry
		id[b] = byte(sum)
		carry = sum >> 8
	}
	return id
}

// Big returns id as a non-negative big integer (for tests and estimates).
func (id ID) Big() *big.Int { return new(big.Int).SetBytes(id[:]) }

// MarshalText encodes id as 40 lowercase hex characters (also used by JSON).
func (id ID) MarshalText() ([]byte, error) { return []byte(id.Hex()), nil }

// UnmarshalText decodes exactly 40 hex characters, lowercase or uppercase (the
// canonical form is lowercase: the ledger's canonical-form checks catch an
// uppercase copy in a signed record).
func (id *ID) UnmarshalText(b []byte) error {
	if len(b) != 2*len(id) {
		return fmt.Errorf("an ID or key must be %d hex characters, got %d", 2*len(id), len(b))
	}
	var v ID
	if _, err := hex.Decode(v[:], b); err != nil {
		return fmt.Errorf("an ID or key is not hex: %w", err)
	}
	*id = v
	return nil
}
