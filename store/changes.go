package store

import (
	"errors"

	"github.com/dgraph-io/badger/v4"
)

// Versions. Every Badger commit has a version (its commit timestamp), greater than
// every version committed before it and kept across restarts; a snapshot sees the
// versions up to its own. The incremental verifier (ledger/resume.go) remembers the
// version of the snapshot it last verified and reads only what changed after it.

// Version returns the store version the snapshot sees: every commit up to it, none
// after.
func (sn *Snapshot) Version() uint64 { return sn.txn.ReadTs() }

// Change is an entry written or deleted after some version: its newest version the
// reader sees.
type Change struct {
	Key     []byte
	Version uint64
	Deleted bool   // a tombstone: the entry was deleted at Version
	Value   []byte // nil for a tombstone, or when values were not asked for
}

// Changes calls fn, in key order, for each entry with prefix whose newest version is
// newer than since, including deletions. Badger skips the tables that hold nothing
// newer, so the cost follows what changed, not the store's size.
//
// A deletion is seen only while Badger still keeps its tombstone: compaction may drop
// a tombstone (and the value it deleted) once no reader needs it, so a reader that
// must know of every deletion needs another record of it.
func (r *Reader) Changes(prefix byte, since uint64, values bool, fn func(Change) error) error {
	p := []byte{prefix}
	return r.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = p
		opts.PrefetchValues = values
		opts.AllVersions = true // tombstones too
		opts.SinceTs = since
		it := txn.NewIterator(opts)
		defer it.Close()
		var last []byte
		for it.Seek(p); it.ValidForPrefix(p); it.Next() {
			item := it.Item()
			// Versions of one key come newest first: the first is the one that counts.
			if last != nil && string(item.Key()) == string(last) {
				continue
			}
			last = item.KeyCopy(last[:0])
			c := Change{Key: append([]byte(nil), last...), Version: item.Version(), Deleted: item.IsDeletedOrExpired()}
			if values && !c.Deleted {
				v, err := item.ValueCopy(nil)
				if err != nil {
					return err
				}
				c.Value = v
			}
			if err := fn(c); err != nil {
				return err
			}
		}
		return nil
	})
}

// EntryVersion returns the version of key's newest value, or ErrNotFound.
func (r *Reader) EntryVersion(key []byte) (uint64, error) {
	var v uint64
	err := r.view(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		v = item.Version()
		return nil
	})
	return v, err
}

// Before returns key's value as it was at version at (≤ at), if Badger still keeps
// it: found is false when the entry did not exist then or its old version is gone.
func (r *Reader) Before(key []byte, at uint64) (value []byte, found bool, err error) {
	err = r.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = key
		opts.AllVersions = true
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(key); it.ValidForPrefix(key); it.Next() {
			item := it.Item()
			if string(item.Key()) != string(key) {
				return nil
			}
			if item.Version() > at {
				continue
			}
			if item.IsDeletedOrExpired() {
				return nil
			}
			value, err = item.ValueCopy(nil)
			found = err == nil
			return err
		}
		return nil
	})
	return value, found, err
}

// Count returns how many entries have prefix, reading keys only.
func (r *Reader) Count(prefix byte) (int, error) {
	n := 0
	err := r.scan([]byte{prefix}, nil, false, func(*badger.Item) (bool, error) {
		n++
		return true, nil
	})
	return n, err
}

// The parts of entry keys, for readers of Changes; each fails with ErrCorrupt on a
// key that does not have its kind's layout.

// ParseBlockKey returns the branch and number of a block key.
func ParseBlockKey(k []byte) (branch [20]byte, no uint64, err error) { return parseBlockKey(k) }

// ParseRecordKey returns the txID of a record key.
func ParseRecordKey(k []byte) (txID [32]byte, err error) { return parseRecordKey(k) }

// ParseKeyIndexKey returns the data key and txID of a key-index entry.
func ParseKeyIndexKey(k []byte) (key [20]byte, txID [32]byte, err error) { return parseKeyIndexKey(k) }

// ParseThingIndexKey returns the thing, time and txID of a thing-index entry.
func ParseThingIndexKey(k []byte) (thing string, t int64, txID [32]byte, err error) {
	return parseThingIndexKey(k)
}

// ParseAttachmentKey returns the branch, block number and position of an attachment.
func ParseAttachmentKey(k []byte) (branch [20]byte, no, seq uint64, err error) {
	return parseAttachmentKey(k)
}
