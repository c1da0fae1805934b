package store

import "github.com/dgraph-io/badger/v4"

// The Each functions walk one kind of entry in key order, for the verifier and
// for tools. They stream: one read transaction, at most Badger's prefetch
// window (100 entries) in memory, a fresh copy of each value handed to fn. An error from fn stops the
// walk and is returned as is. An entry whose key or value does not have its
// kind's layout stops the walk with an error wrapping ErrCorrupt.

// EachRecord calls fn for each record, in txID order.
func (r *Reader) EachRecord(fn func(txID [32]byte, value []byte) error) error {
	return r.each(PrefixRecord, true, func(item *badger.Item) error {
		txID, err := parseRecordKey(item.Key())
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		return fn(txID, v)
	})
}

// EachKeyIndex calls fn for each key-index entry, in key then txID order.
func (r *Reader) EachKeyIndex(fn func(key [20]byte, txID [32]byte) error) error {
	return r.each(PrefixKeyIndex, false, func(item *badger.Item) error {
		key, txID, err := parseKeyIndexKey(item.Key())
		if err != nil {
			return err
		}
		return fn(key, txID)
	})
}

// EachThingIndex calls fn for each thing-index entry, in thing-length, thing,
// time then txID order.
func (r *Reader) EachThingIndex(fn func(thing string, t int64, txID [32]byte) error) error {
	return r.each(PrefixThingIndex, false, func(item *badger.Item) error {
		thing, t, txID, err := parseThingIndexKey(item.Key())
		if err != nil {
			return err
		}
		return fn(thing, t, txID)
	})
}

// EachAttachment calls fn for each record attachment, in branch, block number
// then seq order.
func (r *Reader) EachAttachment(fn func(branch [20]byte, no, seq uint64, txID [32]byte) error) error {
	return r.each(PrefixAttachment, true, func(item *badger.Item) error {
		branch, no, seq, err := parseAttachmentKey(item.Key())
		if err != nil {
			return err
		}
		var txID [32]byte
		if err := item.Value(func(v []byte) error {
			txID, err = parseTxID("attachment", item.Key(), v)
			return err
		}); err != nil {
			return err
		}
		return fn(branch, no, seq, txID)
	})
}

// EachBlock calls fn for each block, in branch then number order.
func (r *Reader) EachBlock(fn func(branch [20]byte, no uint64, value []byte) error) error {
	return r.each(PrefixBlock, true, func(item *badger.Item) error {
		branch, no, err := parseBlockKey(item.Key())
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		return fn(branch, no, v)
	})
}

// each scans every entry with prefix.
func (r *Reader) each(prefix byte, values bool, fn func(item *badger.Item) error) error {
	return r.scan([]byte{prefix}, nil, values, func(item *badger.Item) (bool, error) {
		return true, fn(item)
	})
}
