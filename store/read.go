package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Reads return copies that stay valid after the read. Point reads return
// ErrNotFound for a missing entry; list reads return an empty result instead.
// A limit ≤ 0 means no limit.

// Attached is one record attached to a block: its position and txID.
type Attached struct {
	Seq  uint64
	TxID [32]byte
}

// Record returns the record JSON of txID, byte-identical to what was written.
func (r *Reader) Record(txID [32]byte) ([]byte, error) {
	v, err := r.get(RecordKey(txID))
	if err != nil {
		return nil, fmt.Errorf("record %x: %w", txID, err)
	}
	return v, nil
}

// RecordsByKey returns the txIDs of the records with data key key, in txID
// order.
func (r *Reader) RecordsByKey(key [20]byte, limit int) ([][32]byte, error) {
	var out [][32]byte
	prefix := append([]byte{PrefixKeyIndex}, key[:]...)
	err := r.scan(prefix, nil, false, func(item *badger.Item) (bool, error) {
		_, txID, err := parseKeyIndexKey(item.Key())
		if err != nil {
			return false, err
		}
		out = append(out, txID)
		return limit <= 0 || len(out) < limit, nil
	})
	return out, err
}

// RecordsByThing returns the txIDs of thing's records with from ≤ time < to,
// in time order (then txID order); to == 0 means no upper bound.
func (r *Reader) RecordsByThing(thing string, from, to int64, limit int) ([][32]byte, error) {
	if to != 0 && to <= from {
		return nil, nil
	}
	prefix, err := thingPrefix(thing, 0)
	if err != nil {
		return nil, err
	}
	seek := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), encodeTime(from))
	var out [][32]byte
	err = r.scan(prefix, seek, false, func(item *badger.Item) (bool, error) {
		_, t, txID, err := parseThingIndexKey(item.Key())
		if err != nil {
			return false, err
		}
		if to != 0 && t >= to {
			return false, nil
		}
		out = append(out, txID)
		return limit <= 0 || len(out) < limit, nil
	})
	return out, err
}

// BlockRecords returns the records attached to block no of branch, in seq
// order.
func (r *Reader) BlockRecords(branch [20]byte, no uint64) ([]Attached, error) {
	var out []Attached
	prefix := binary.BigEndian.AppendUint64(branchPrefix(PrefixAttachment, branch), no)
	err := r.scan(prefix, nil, true, func(item *badger.Item) (bool, error) {
		_, _, seq, err := parseAttachmentKey(item.Key())
		if err != nil {
			return false, err
		}
		var txID [32]byte
		err = item.Value(func(v []byte) error {
			txID, err = parseTxID("attachment", item.Key(), v)
			return err
		})
		if err != nil {
			return false, err
		}
		out = append(out, Attached{Seq: seq, TxID: txID})
		return true, nil
	})
	return out, err
}

// Block returns the JSON of block no of branch.
func (r *Reader) Block(branch [20]byte, no uint64) ([]byte, error) {
	v, err := r.get(BlockKey(branch, no))
	if err != nil {
		return nil, fmt.Errorf("block %x/%d: %w", branch, no, err)
	}
	return v, nil
}

// TreeNode returns the hash of a branch tree's node (see TreeNodeKey).
func (r *Reader) TreeNode(branch [20]byte, level uint8, index uint64) (h [32]byte, err error) {
	k := TreeNodeKey(branch, level, index)
	v, err := r.get(k)
	if err != nil {
		return h, fmt.Errorf("branch tree node %x/%d/%d: %w", branch, level, index, err)
	}
	if len(v) != len(h) {
		return h, fmt.Errorf("%w: branch tree key %x has a %d-byte value, want %d", ErrCorrupt, k, len(v), len(h))
	}
	copy(h[:], v)
	return h, nil
}

// BlockByHash returns the branch and number of the block with hash.
func (r *Reader) BlockByHash(hash [32]byte) (branch [20]byte, no uint64, err error) {
	k := BlockHashKey(hash)
	v, err := r.get(k)
	if err != nil {
		return branch, 0, fmt.Errorf("block %x: %w", hash, err)
	}
	branch, no, ok := parseBlockRef(v)
	if !ok {
		return branch, 0, fmt.Errorf("%w: block-by-hash key %x has a %d-byte value, want %d", ErrCorrupt, k, len(v), blockRefLen)
	}
	return branch, no, nil
}

// Head returns the highest-numbered block of branch, or ErrNotFound if the
// branch has none.
func (r *Reader) Head(branch [20]byte) (no uint64, value []byte, err error) {
	prefix := branchPrefix(PrefixBlock, branch)
	last := BlockKey(branch, ^uint64(0))
	found := false
	err = r.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Reverse = true
		opts.Prefix = prefix
		opts.PrefetchValues = false
		it := txn.NewIterator(opts)
		defer it.Close()
		// In reverse, Seek finds the largest key ≤ last: the branch's highest
		// block.
		it.Seek(last)
		if !it.ValidForPrefix(prefix) {
			return nil
		}
		item := it.Item()
		if _, no, err = parseBlockKey(item.Key()); err != nil {
			return err
		}
		found = true
		value, err = item.ValueCopy(nil)
		return err
	})
	if err == nil && !found {
		err = ErrNotFound
	}
	if err != nil {
		return 0, nil, fmt.Errorf("head of branch %x: %w", branch, err)
	}
	return no, value, nil
}

// Blocks returns the JSON of branch's blocks numbered from on, in order.
func (r *Reader) Blocks(branch [20]byte, from uint64, limit int) ([][]byte, error) {
	var out [][]byte
	err := r.scan(branchPrefix(PrefixBlock, branch), BlockKey(branch, from), true, func(item *badger.Item) (bool, error) {
		if _, _, err := parseBlockKey(item.Key()); err != nil {
			return false, err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return false, err
		}
		out = append(out, v)
		return limit <= 0 || len(out) < limit, nil
	})
	return out, err
}

// Branches returns every branch that has a block, in byte order.
func (r *Reader) Branches() ([][20]byte, error) {
	var out [][20]byte
	prefix := []byte{PrefixBlock}
	err := r.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefix
		opts.PrefetchValues = false
		it := txn.NewIterator(opts)
		defer it.Close()
		// Skip from branch to branch: after reading one block key, seek past
		// every block of its branch instead of stepping through them.
		for it.Seek(prefix); it.ValidForPrefix(prefix); {
			branch, _, err := parseBlockKey(it.Item().Key())
			if err != nil {
				return err
			}
			out = append(out, branch)
			it.Seek(append(BlockKey(branch, ^uint64(0)), 0))
		}
		return nil
	})
	return out, err
}

// Meta returns the meta entry name.
func (r *Reader) Meta(name string) ([]byte, error) {
	v, err := r.get(MetaKey(name))
	if err != nil {
		return nil, fmt.Errorf("meta %q: %w", name, err)
	}
	return v, nil
}

// get returns a copy of key's value.
func (r *Reader) get(key []byte) ([]byte, error) {
	var v []byte
	err := r.view(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		v, err = item.ValueCopy(nil)
		return err
	})
	return v, err
}

// scan calls fn for each entry with prefix, from seek (or the start of
// prefix) on, in key order, until fn returns false or an error. values says
// whether fn reads values, so that key-only scans skip fetching them.
func (r *Reader) scan(prefix, seek []byte, values bool, fn func(item *badger.Item) (bool, error)) error {
	return r.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefix
		opts.PrefetchValues = values
		it := txn.NewIterator(opts)
		defer it.Close()
		if seek == nil {
			seek = prefix
		}
		for it.Seek(seek); it.ValidForPrefix(prefix); it.Next() {
			more, err := fn(it.Item())
			if err != nil || !more {
				return err
			}
		}
		return nil
	})
}
