package store

import (
	"fmt"
	"sync/atomic"
)

// Record is one ledger record and what the store indexes it by.
type Record struct {
	TxID    [32]byte
	Key     [20]byte // the data key the record is found by
	Thing   string   // the device; at most MaxThingLen bytes, may be empty
	Time    int64    // nanoseconds since the epoch, may be negative
	Branch  [20]byte // the block the record is attached to…
	BlockNo uint64
	Seq     uint64 // …and its position in that block
	Value   []byte // the record JSON, stored and returned byte-identical
}

// Block is one block of a branch.
type Block struct {
	Branch [20]byte
	No     uint64
	Hash   [32]byte
	Value  []byte // the block JSON
}

// Pointer maps a txID to the data key of its record. On a Chord ring it is
// stored by the node that owns position TxID[:20], which is usually not the
// node that holds the record.
type Pointer struct {
	TxID [32]byte
	Key  [20]byte
}

// HistoryRef names a history entry: a record's copy at ring position Pos,
// ordered there by Time then TxID.
type HistoryRef struct {
	Pos  [20]byte
	Time int64
	TxID [32]byte
}

// HistoryEntry is a history entry with its value, the record JSON.
type HistoryEntry struct {
	HistoryRef
	Value []byte
}

// TreeNode is one complete node of a branch's block tree (see TreeNodeKey).
type TreeNode struct {
	Branch [20]byte
	Level  uint8
	Index  uint64
	Hash   [32]byte
}

// Write is what one call to Store.Write makes durable: records with all their
// index entries, blocks, txID pointers and meta entries. Writing a pointer
// that is already stored is harmless; a pointer written again with another
// key replaces the first.
type Write struct {
	Records  []Record
	Blocks   []Block
	Pointers []Pointer
	History  []HistoryEntry
	Meta     map[string][]byte
	// TreeNodes are the block-tree nodes a new block completes; they are
	// written with the block, so the tree never lags the branch.
	TreeNodes []TreeNode
	// DropRecords deletes records with their index entries (Value unused);
	// DropPointers deletes txID pointers. For copies a node no longer needs
	// to hold. Dropping what is not stored is harmless.
	DropRecords  []Record
	DropPointers [][32]byte
	// DropHistory deletes history entries.
	DropHistory []HistoryRef
}

// op is one Badger entry to set, or to delete.
type op struct {
	key, val []byte
	del      bool
}

// opSize over-estimates what Badger charges an entry against a transaction's
// size limit (txn.checkSize: key + value + 2 meta bytes + 10 for the version,
// or 14 for a value pointer instead of the value), so that packing by this
// estimate never hits ErrTxnTooBig.
func opSize(o op) int64 { return int64(len(o.key) + len(o.val) + 12) }

// Write states. A pending write is claimed by the committer or cancelled by its
// caller, whichever comes first; the loser leaves it alone.
const (
	statePending int32 = iota
	stateClaimed
	stateCancelled
)

// pending is a Write on its way through the committer.
type pending struct {
	ops     []op
	size    int64 // sum of opSize
	records int
	blocks  int

	state atomic.Int32
	err   error         // set by the committer before done is closed
	done  chan struct{} // closed when the write is durable or failed
}

// prepare validates w and turns it into Badger entries. It runs in the
// caller's goroutine, so concurrent writers build their keys in parallel and
// an invalid Write fails before anything is queued. The values are not copied:
// w must not change until Write returns.
func (s *Store) prepare(w Write) (*pending, error) {
	p := &pending{
		ops:     make([]op, 0, 4*len(w.Records)+2*len(w.Blocks)+len(w.Pointers)+len(w.History)+len(w.Meta)),
		records: len(w.Records),
		blocks:  len(w.Blocks),
		done:    make(chan struct{}),
	}
	for i := range w.Records {
		r := &w.Records[i]
		if s.tooLarge(r.Value) {
			return nil, fmt.Errorf("store: write record %x: value is %d bytes, more than %d: %w", r.TxID, len(r.Value), s.maxValue, ErrTooLarge)
		}
		tk, err := ThingIndexKey(r.Thing, r.Time, r.TxID)
		if err != nil {
			return nil, fmt.Errorf("store: write record %x: %w", r.TxID, err)
		}
		p.add(RecordKey(r.TxID), r.Value)
		p.add(KeyIndexKey(r.Key, r.TxID), nil)
		p.add(tk, nil)
		p.add(AttachmentKey(r.Branch, r.BlockNo, r.Seq), append([]byte(nil), r.TxID[:]...))
	}
	for i := range w.Blocks {
		b := &w.Blocks[i]
		if s.tooLarge(b.Value) {
			return nil, fmt.Errorf("store: write block %x: value is %d bytes, more than %d: %w", b.Hash, len(b.Value), s.maxValue, ErrTooLarge)
		}
		p.add(BlockKey(b.Branch, b.No), b.Value)
		p.add(BlockHashKey(b.Hash), BlockRef(b.Branch, b.No))
	}
	for i := range w.TreeNodes {
		n := &w.TreeNodes[i]
		p.add(TreeNodeKey(n.Branch, n.Level, n.Index), append([]byte(nil), n.Hash[:]...))
	}
	for i := range w.Pointers {
		x := &w.Pointers[i]
		p.add(PointerKey(x.TxID), append([]byte(nil), x.Key[:]...))
	}
	for i := range w.History {
		h := &w.History[i]
		if s.tooLarge(h.Value) {
			return nil, fmt.Errorf("store: write history entry %x: value is %d bytes, more than %d: %w", h.TxID, len(h.Value), s.maxValue, ErrTooLarge)
		}
		p.add(HistoryKey(h.Pos, h.Time, h.TxID), h.Value)
	}
	for _, h := range w.DropHistory {
		p.drop(HistoryKey(h.Pos, h.Time, h.TxID))
	}
	for i := range w.DropRecords {
		r := &w.DropRecords[i]
		tk, err := ThingIndexKey(r.Thing, r.Time, r.TxID)
		if err != nil {
			return nil, fmt.Errorf("store: drop record %x: %w", r.TxID, err)
		}
		p.drop(RecordKey(r.TxID))
		p.drop(KeyIndexKey(r.Key, r.TxID))
		p.drop(tk)
		p.drop(AttachmentKey(r.Branch, r.BlockNo, r.Seq))
	}
	for _, txID := range w.DropPointers {
		p.drop(PointerKey(txID))
	}
	for name, v := range w.Meta {
		if name == "" || len(name) > MaxMetaNameLen {
			return nil, fmt.Errorf("store: write meta: name must be 1 to %d bytes, got %d", MaxMetaNameLen, len(name))
		}
		if s.tooLarge(v) {
			return nil, fmt.Errorf("store: write meta %q: value is %d bytes, more than %d: %w", name, len(v), s.maxValue, ErrTooLarge)
		}
		p.add(MetaKey(name), v)
	}
	return p, nil
}

func (p *pending) add(key, val []byte) {
	o := op{key: key, val: val}
	p.ops = append(p.ops, o)
	p.size += opSize(o)
}

func (p *pending) drop(key []byte) {
	o := op{key: key, del: true}
	p.ops = append(p.ops, o)
	p.size += opSize(o)
}

// tooLarge reports a value that would not fit in one Badger transaction even
// alone.
func (s *Store) tooLarge(v []byte) bool { return int64(len(v)) > s.maxValue }
