package ledger

import (
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

var rangeFactory = compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// LeafHash is the RFC 6962 leaf hash of a record's stored bytes.
func LeafHash(recordBytes []byte) Hash {
	return Hash(rfc6962.DefaultHasher.HashLeaf(recordBytes))
}

// MerkleRoot is the RFC 6962 root over leaf hashes in order; the empty tree's root is
// SHA-256 of nothing, as RFC 6962 defines it.
func MerkleRoot(leaves []Hash) Hash {
	if len(leaves) == 0 {
		return Hash(rfc6962.DefaultHasher.EmptyRoot())
	}
	r := rangeFactory.NewEmptyRange(0)
	for i := range leaves {
		// Append only fails for a hash of the wrong size, which Hash rules out.
		_ = r.Append(leaves[i][:], nil)
	}
	root, _ := r.GetRootHash(nil)
	return Hash(root)
}
