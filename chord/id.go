package chord

import (
	"crypto/sha1"

	"github.com/flownode/flownode/keyspace"
)

// Bits is the size of the identifier space: IDs are numbers modulo 2^Bits.
const Bits = keyspace.Bits

// ID is a point on the Chord ring: a 160-bit big-endian number (a SHA-1 hash),
// the same type as the ledger's keys (package keyspace). The zero ID means "no
// node"; SHA-1 never yields it in practice.
type ID = keyspace.ID

// HashKey returns the ring position of data: its SHA-1 hash.
func HashKey(data []byte) ID { return ID(sha1.Sum(data)) }

// ParseID reads 40 hexadecimal characters.
func ParseID(s string) (ID, error) { return keyspace.Parse(s) }

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
