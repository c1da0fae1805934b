package ledger

import (
	"encoding/hex"
	"fmt"

	"github.com/flownode/flownode/keyspace"
)

// Key is a 160-bit ring key: the key of a reading (H_DATA or a client's own key) and the
// ID of a node and of its branch, written as 40 lowercase hex characters. It is the
// ring's own ID type (package keyspace), so keys and node IDs need no conversion.
type Key = keyspace.ID

// Hash is a SHA-256 digest: block hashes, txIDs, Merkle roots. It is written as 64
// lowercase hex characters.
type Hash [32]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zero bytes.
func (h Hash) IsZero() bool { return h == Hash{} }

func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

func (h *Hash) UnmarshalText(b []byte) error { return decodeHex(h[:], b, "hash") }

// ParseKey parses 40 hex characters.
func ParseKey(s string) (Key, error) {
	var k Key
	return k, decodeHex(k[:], []byte(s), "key")
}

// ParseHash parses 64 hex characters.
func ParseHash(s string) (Hash, error) {
	var h Hash
	return h, h.UnmarshalText([]byte(s))
}

// decodeHex accepts exactly 2*len(dst) lowercase or uppercase hex characters. The
// canonical form is lowercase; canonicalForm checks catch an uppercase copy in a record.
func decodeHex(dst []byte, src []byte, what string) error {
	if len(src) != 2*len(dst) {
		return fmt.Errorf("%s must be %d hex characters, got %d", what, 2*len(dst), len(src))
	}
	if _, err := hex.Decode(dst, src); err != nil {
		return fmt.Errorf("%s is not hex: %w", what, err)
	}
	return nil
}
