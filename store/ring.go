package store

import (
	"bytes"
	"crypto/sha256"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Chord ring ranges.
//
// A ring position is 20 bytes read as a big-endian unsigned integer. The key
// index is placed on the ring by its data key, a txID pointer by the first 20
// bytes of its txID; both are the 20 bytes after the entry's prefix byte, so
// a ring range is at most two runs of keys that Badger seeks to directly.
//
// The range (from, to] is from < p ≤ to when from < to; when from > to it
// wraps: p > from or p ≤ to; when from == to it is the whole ring. A range is
// walked in ascending position starting just after from, so a wrapped range
// yields (from, max] then [0, to].
//
// Like the Each walks, a range walk reads in one read transaction, hands fn
// copies, stops at the first error from fn and returns it as is, and stops
// with an error wrapping ErrCorrupt at an entry in range that does not have
// its kind's layout.

// Digest summarises the entries of a ring range so that two nodes can compare
// what they hold without sending it.
type Digest struct {
	Records  int // key-index entries in range, one per record
	Pointers int // txID pointers in range
	History  int // history entries in range
	// Sum is the XOR over every key-index entry, txID pointer and history
	// entry in range of
	// SHA-256 of its key without the prefix byte. It does not depend on
	// order, so two nodes holding the same entries agree. Values are not
	// covered: a pointer to a different data key has the same sum.
	Sum [32]byte
}

func (d *Digest) add(keyWithoutPrefix []byte) {
	h := sha256.Sum256(keyWithoutPrefix)
	for i := range d.Sum {
		d.Sum[i] ^= h[i]
	}
}

// Pointer returns the data key of the record with txID from its txID
// pointer, or ErrNotFound if none is stored here.
func (r *Reader) Pointer(txID [32]byte) (key [20]byte, err error) {
	k := PointerKey(txID)
	v, err := r.get(k)
	if err == nil {
		key, err = parsePointerValue(k, v)
	}
	if err != nil {
		return key, fmt.Errorf("pointer %x: %w", txID, err)
	}
	return key, nil
}

// EachKeyInRange calls fn for each key-index entry whose data key lies in
// the ring range (from, to], in ring order from just after from, then in
// txID order for one key.
func (r *Reader) EachKeyInRange(from, to [20]byte, fn func(key [20]byte, txID [32]byte) error) error {
	return r.view(func(txn *badger.Txn) error {
		return walkRange(txn, PrefixKeyIndex, from, to, false, func(item *badger.Item) error {
			key, txID, err := parseKeyIndexKey(item.Key())
			if err != nil {
				return err
			}
			return fn(key, txID)
		})
	})
}

// EachPointerInRange calls fn for each txID pointer whose position txID[:20]
// lies in the ring range (from, to], in ring order from just after from, then
// in txID order.
func (r *Reader) EachPointerInRange(from, to [20]byte, fn func(txID [32]byte, key [20]byte) error) error {
	return r.view(func(txn *badger.Txn) error {
		return walkRange(txn, PrefixPointer, from, to, true, func(item *badger.Item) error {
			txID, err := parsePointerKey(item.Key())
			if err != nil {
				return err
			}
			var key [20]byte
			if err := item.Value(func(v []byte) error {
				key, err = parsePointerValue(item.Key(), v)
				return err
			}); err != nil {
				return err
			}
			return fn(txID, key)
		})
	})
}

// EachHistoryInRange calls fn for each history entry whose position lies in
// the ring range (from, to], in ring order from just after from, then in time
// and txID order at one position. It reads keys only.
func (r *Reader) EachHistoryInRange(from, to [20]byte, fn func(ref HistoryRef) error) error {
	return r.view(func(txn *badger.Txn) error {
		return walkRange(txn, PrefixHistory, from, to, false, func(item *badger.Item) error {
			ref, err := parseHistoryKey(item.Key())
			if err != nil {
				return err
			}
			return fn(ref)
		})
	})
}

// RangeDigest returns the digest of the key-index entries, txID pointers and
// history entries in the ring range (from, to], read in one transaction. It
// reads keys only.
func (r *Reader) RangeDigest(from, to [20]byte) (Digest, error) {
	var d Digest
	err := r.view(func(txn *badger.Txn) error {
		err := walkRange(txn, PrefixKeyIndex, from, to, false, func(item *badger.Item) error {
			k := item.Key()
			if _, _, err := parseKeyIndexKey(k); err != nil {
				return err
			}
			d.Records++
			d.add(k[1:])
			return nil
		})
		if err != nil {
			return err
		}
		err = walkRange(txn, PrefixPointer, from, to, false, func(item *badger.Item) error {
			k := item.Key()
			if _, err := parsePointerKey(k); err != nil {
				return err
			}
			d.Pointers++
			d.add(k[1:])
			return nil
		})
		if err != nil {
			return err
		}
		return walkRange(txn, PrefixHistory, from, to, false, func(item *badger.Item) error {
			k := item.Key()
			if _, err := parseHistoryKey(k); err != nil {
				return err
			}
			d.History++
			d.add(k[1:])
			return nil
		})
	})
	if err != nil {
		return Digest{}, err
	}
	return d, nil
}

// span is the run of ring positions lo..hi, both included.
type span struct{ lo, hi [20]byte }

var ringMax = [20]byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
}

// ringSpans splits the ring range (from, to] into one or two spans, in the
// order a walk starting just after from meets them. None is empty.
func ringSpans(from, to [20]byte) []span {
	if bytes.Compare(from[:], to[:]) < 0 {
		return []span{{succ(from), to}}
	}
	// Wrapped, or the whole ring when from == to: (from, max] then [0, to].
	if from == ringMax {
		return []span{{[20]byte{}, to}}
	}
	return []span{{succ(from), ringMax}, {[20]byte{}, to}}
}

// succ returns p+1; p must not be ringMax.
func succ(p [20]byte) [20]byte {
	for i := len(p) - 1; i >= 0; i-- {
		p[i]++
		if p[i] != 0 {
			break
		}
	}
	return p
}

// walkRange calls fn for each entry with prefix whose ring position, the 20
// bytes after the prefix, lies in the ring range (from, to], in the order of
// ringSpans, seeking to the start of each span. values says whether fn reads
// values. An entry too short to hold a position is handed to fn, whose parse
// reports it, when what it has sorts inside a span.
func walkRange(txn *badger.Txn, prefix byte, from, to [20]byte, values bool, fn func(item *badger.Item) error) error {
	pfx := []byte{prefix}
	opts := badger.DefaultIteratorOptions
	opts.Prefix = pfx
	opts.PrefetchValues = values
	it := txn.NewIterator(opts)
	defer it.Close()
	seek := make([]byte, 1+20)
	seek[0] = prefix
	for _, sp := range ringSpans(from, to) {
		copy(seek[1:], sp.lo[:])
		for it.Seek(seek); it.ValidForPrefix(pfx); it.Next() {
			item := it.Item()
			pos := item.Key()[1:]
			if len(pos) > 20 {
				pos = pos[:20]
			}
			if bytes.Compare(pos, sp.hi[:]) > 0 {
				break
			}
			if err := fn(item); err != nil {
				return err
			}
		}
	}
	return nil
}
