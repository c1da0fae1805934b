package chord

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"math/big"
)

// Bits is the size of the identifier space: IDs are numbers modulo 2^Bits.
const Bits = 160

// ID is a point on the Chord ring: a 160-bit big-endian number (a SHA-1 hash).
// The zero ID means "no node"; SHA-1 never yields it in practice.
type ID [20]byte

// HashKey returns the ring position of data: its SHA-1 hash.
func HashKey(data []byte) ID { return ID(sha1.Sum(data)) }

// ParseID reads 40 hexadecimal characters.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return ID{}, fmt.Errorf("chord ID %q: want %d hex characters, got %d", s, 2*len(id), len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ID{}, fmt.Errorf("chord ID %q: %w", s, err)
	}
	return id, nil
}

// Hex returns the 40 lowercase hex characters of id.
func (id ID) Hex() string { return hex.EncodeToString(id[:]) }

// String returns id in hex, as the HTTP API shows it.
func (id ID) String() string { return id.Hex() }

// Short returns the first 8 hex characters, for traces and logs.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsZero reports whether id is the zero ID ("no node").
func (id ID) IsZero() bool { return id == ID{} }

// Cmp compares id and o as unsigned numbers: -1, 0 or +1.
func (id ID) Cmp(o ID) int { return bytes.Compare(id[:], o[:]) }

// Less reports whether id < o as numbers (not clockwise order).
func (id ID) Less(o ID) bool { return id.Cmp(o) < 0 }

// AddPow2 returns id + 2^i mod 2^Bits: the start of finger i.
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

// Distance returns the clockwise distance from a to b: (b - a) mod 2^Bits.
func Distance(a, b ID) ID {
	var d ID
	borrow := 0
	for i := len(a) - 1; i >= 0; i-- {
		v := int(b[i]) - int(a[i]) - borrow
		borrow = 0
		if v < 0 {
			v += 256
			borrow = 1
		}
		d[i] = byte(v)
	}
	return d
}

// Big returns id as a non-negative big integer (for tests and estimates).
func (id ID) Big() *big.Int { return new(big.Int).SetBytes(id[:]) }

// MarshalText encodes id as 40 lowercase hex characters (also used by JSON).
func (id ID) MarshalText() ([]byte, error) { return []byte(id.Hex()), nil }

// UnmarshalText decodes 40 hex characters.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}
