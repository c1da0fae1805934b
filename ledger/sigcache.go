package ledger

import (
	"crypto/sha256"
	"sync"
)

// checkedRecords remembers, by the SHA-256 of their bytes, records whose
// signatures verified in this process. A record travels to k replicas and
// into two history entries at k more nodes, and a node that holds it as a
// replica is often one of those: without this it would verify the same
// ed25519 signatures (the node's, and a device's) several times over. Only
// the signature checks are skipped for bytes seen before; CheckSelf still
// checks that the record is exactly those bytes, so the skip is as sound as
// the hash: the signatures are a function of the bytes.
//
// Two generations bound it: when the current one is full it becomes the old
// one and the old one is dropped, so recently checked records stay.
type checkedRecords struct {
	mu       sync.Mutex
	cur, old map[[sha256.Size]byte]struct{}
}

// checkedGeneration is the size of one generation: 2 × 4096 hashes, about
// 0.6 MB at most, small beside a gateway's budget.
const checkedGeneration = 4096

var verified checkedRecords

func (c *checkedRecords) has(sum [sha256.Size]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.cur[sum]; ok {
		return true
	}
	_, ok := c.old[sum]
	return ok
}

func (c *checkedRecords) add(sum [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= checkedGeneration || c.cur == nil {
		c.old, c.cur = c.cur, make(map[[sha256.Size]byte]struct{}, checkedGeneration)
	}
	c.cur[sum] = struct{}{}
}
