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

// parsedRecords keeps, by the SHA-256 of their bytes, the last records that
// passed CheckSelf in this process, parsed. A record reaches a node several
// times — as a replica, as the entry of its Thing's history bucket and
// extremes, as their copies, in a read — and decoding its JSON costs more
// than verifying its signatures once did: the same bytes coming back are
// then neither decoded nor checked again (ParseChecked). Two generations of
// parsedGeneration records bound it (about 1 KiB each parsed: 2 MiB at most).
type parsedRecords struct {
	mu       sync.Mutex
	cur, old map[[sha256.Size]byte]*Record
}

const parsedGeneration = 1024

var parsed parsedRecords

func (c *parsedRecords) get(sum [sha256.Size]byte) *Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.cur[sum]; ok {
		return r
	}
	return c.old[sum]
}

func (c *parsedRecords) add(sum [sha256.Size]byte, r *Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= parsedGeneration || c.cur == nil {
		c.old, c.cur = c.cur, make(map[[sha256.Size]byte]*Record, parsedGeneration)
	}
	c.cur[sum] = r
}

// Checked returns the record raw holds if these very bytes passed CheckSelf in
// this process lately, without parsing them; ok is false otherwise (then parse
// and check them). The record shares its byte slices with the cached one:
// callers must not modify their contents.
func Checked(raw []byte) (r *Record, ok bool) {
	c := parsed.get(sha256.Sum256(raw))
	if c == nil {
		return nil, false
	}
	cp := *c
	return &cp, true
}

// ParseKnown is ParseRecord, from the cache when these bytes passed CheckSelf
// (or were signed here) lately; it checks nothing. The record shares its byte
// slices with the cached one: callers must not modify their contents.
func ParseKnown(raw []byte) (*Record, error) {
	if r, ok := Checked(raw); ok {
		return r, nil
	}
	return ParseRecord(raw)
}

// ParseChecked is ParseRecord followed by CheckSelf, for bytes from anywhere,
// at the cost of one SHA-256 for bytes that passed lately (Checked).
func ParseChecked(raw []byte) (*Record, error) {
	if r, ok := Checked(raw); ok {
		return r, nil
	}
	r, err := ParseRecord(raw)
	if err != nil {
		return nil, err
	}
	if err := r.CheckSelf(raw); err != nil {
		return nil, err
	}
	return r, nil
}

// ParseCheckedAll is ParseChecked of each of raws, on every core for a large
// batch. On failure it returns the index of the first record that failed.
func ParseCheckedAll(raws [][]byte) ([]*Record, int, error) {
	out := make([]*Record, len(raws))
	errs := make([]error, len(raws))
	parallel(len(raws), func(i int) { out[i], errs[i] = ParseChecked(raws[i]) })
	for i, err := range errs {
		if err != nil {
			return nil, i, err
		}
	}
	return out, 0, nil
}
