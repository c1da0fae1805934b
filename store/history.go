package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// HistoryQuery selects history entries at one ring position: those with
// From ≤ time < To (To 0: no bound) strictly after the cursor After (in the
// walk's direction), newest first when Desc, at most Limit of them and, past
// the first, at most MaxBytes of values.
type HistoryQuery struct {
	Pos      [20]byte
	From, To int64
	After    *HistoryRef
	Desc     bool
	Limit    int
	MaxBytes int
}

// History returns the entries q selects, in time then txID order (reversed
// when q.Desc), and whether more would have matched.
func (r *Reader) History(q HistoryQuery) (out []HistoryEntry, more bool, err error) {
	if q.To != 0 && q.To <= q.From {
		return nil, false, nil
	}
	prefix := append([]byte{PrefixHistory}, q.Pos[:]...)
	lo := binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), encodeTime(q.From))
	var hi []byte // the first key past the selection
	if q.To != 0 {
		hi = binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), encodeTime(q.To))
	}
	stop := errors.New("enough")
	size := 0
	err = r.view(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefix
		opts.Reverse = q.Desc
		it := txn.NewIterator(opts)
		defer it.Close()
		seek := lo
		switch {
		case q.After != nil:
			seek = HistoryKey(q.Pos, q.After.Time, q.After.TxID)
		case q.Desc && hi != nil:
			seek = hi
		case q.Desc:
			seek = append(append([]byte(nil), prefix...), make41xff()...)
		}
		for it.Seek(seek); it.ValidForPrefix(prefix); it.Next() {
			item := it.Item()
			k := item.Key()
			switch {
			case q.After != nil && string(k) == string(seek):
				continue // the cursor itself was on the previous page
			case hi != nil && string(k) >= string(hi):
				if q.Desc {
					continue // above the range, walking down to it
				}
				return stop
			case string(k) < string(lo):
				if q.Desc {
					return stop
				}
				continue // below the range (a cursor before it)
			}
			ref, err := parseHistoryKey(k)
			if err != nil {
				return err
			}
			if (q.Limit > 0 && len(out) == q.Limit) || (q.MaxBytes > 0 && len(out) > 0 && size+int(item.ValueSize()) > q.MaxBytes) {
				more = true
				return stop
			}
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			size += len(v)
			out = append(out, HistoryEntry{HistoryRef: ref, Value: v})
		}
		return nil
	})
	if errors.Is(err, stop) {
		err = nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("history at %x: %w", q.Pos, err)
	}
	return out, more, nil
}

// HistoryEntryValue returns the record JSON of one history entry, or
// ErrNotFound.
func (r *Reader) HistoryEntryValue(ref HistoryRef) ([]byte, error) {
	v, err := r.get(HistoryKey(ref.Pos, ref.Time, ref.TxID))
	if err != nil {
		return nil, fmt.Errorf("history entry %x at %x: %w", ref.TxID, ref.Pos, err)
	}
	return v, nil
}

// make41xff is past every time(8) txID(32) suffix.
func make41xff() []byte {
	b := make([]byte, 8+32+1)
	for i := range b {
		b[i] = 0xff
	}
	return b
}

// HistoryEnds returns the oldest and the newest entry at pos (one entry when
// they are the same, none when pos holds none).
//
// A Thing's extremes position keeps two entries and replaces them as records
// arrive, so deletions pile up between the two ends until Badger compacts them
// away, and every walk over them costs a step each. A Badger seek reads one
// entry past the one it finds, so a seek to the oldest steps over them all,
// and so may a seek at a neighbouring position whose far end they border. So
// the Store keeps, for positions asked about lately, which keys are the two
// ends (endsHints, kept exact by every write), and HistoryEnds then reads
// just those two keys. Without a hint (the first time, or after a write
// failed) it seeks.
//
// Callers hold a lock of pos against the other callers and the writers of
// entries at pos (ringledger's extremesLocks), from this read to their write:
// a hint is then never older than the store.
func (r *Reader) HistoryEnds(pos [20]byte) ([]HistoryEntry, error) {
	prefix := append([]byte{PrefixHistory}, pos[:]...)
	var out []HistoryEntry
	// The write count is read before the read transaction starts: a write
	// it does not see has not finished, so its ends are not kept as a hint.
	hint, ok, gen := r.ends.get(pos)
	err := r.view(func(txn *badger.Txn) error {
		var oldest, newest *HistoryEntry
		var err error
		if ok {
			if oldest, err = entryAt(txn, hint.oldest); err != nil {
				return err
			}
			if newest, err = entryAt(txn, hint.newest); err != nil {
				return err
			}
		}
		if oldest == nil || newest == nil {
			if oldest, err = firstEntry(txn, prefix, prefix, false); err != nil || oldest == nil {
				return err
			}
			if newest, err = firstEntry(txn, prefix, append(append([]byte(nil), prefix...), make41xff()...), true); err != nil || newest == nil {
				return err
			}
			r.ends.set(pos, endsHint{oldest.HistoryRef, newest.HistoryRef}, gen)
		}
		out = append(out, *oldest)
		if newest.HistoryRef != oldest.HistoryRef {
			out = append(out, *newest)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("history ends at %x: %w", pos, err)
	}
	return out, nil
}

// entryAt returns the history entry ref names, or nil if it is not stored.
func entryAt(txn *badger.Txn, ref HistoryRef) (*HistoryEntry, error) {
	item, err := txn.Get(HistoryKey(ref.Pos, ref.Time, ref.TxID))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return entryOf(item)
}

// firstEntry returns the first entry with prefix from seek on, forward or in
// reverse, or nil.
func firstEntry(txn *badger.Txn, prefix, seek []byte, reverse bool) (*HistoryEntry, error) {
	opts := badger.DefaultIteratorOptions
	opts.Prefix, opts.Reverse, opts.PrefetchValues = prefix, reverse, false
	it := txn.NewIterator(opts)
	defer it.Close()
	it.Seek(seek)
	if !it.ValidForPrefix(prefix) {
		return nil, nil
	}
	return entryOf(it.Item())
}

func entryOf(item *badger.Item) (*HistoryEntry, error) {
	ref, err := parseHistoryKey(item.Key())
	if err != nil {
		return nil, err
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	return &HistoryEntry{HistoryRef: ref, Value: v}, nil
}

// endsHints remembers the two ends of the positions HistoryEnds was asked
// about lately. Every successful write updates them (wrote): an entry put
// beyond an end becomes that end, and dropping an end forgets the position,
// which HistoryEnds then seeks afresh; a failed write forgets every position
// it touched. Only extremes writers, each holding its position's lock from
// HistoryEnds to its write, put entries at the positions asked about, so a
// hint never misses an entry. It holds at most maxEndsHints positions (then
// it starts over), about 1.2 MB.
type endsHints struct {
	mu sync.Mutex
	m  map[[20]byte]endsHint
	// writes counts the writes that touched history positions: a hint
	// read from the store is kept only if none was written meanwhile.
	writes uint64
}

type endsHint struct{ oldest, newest HistoryRef }

const maxEndsHints = 8192

// get returns the hint of pos, and the write count to give set.
func (h *endsHints) get(pos [20]byte) (endsHint, bool, uint64) {
	if h == nil {
		return endsHint{}, false, 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ref, ok := h.m[pos]
	return ref, ok, h.writes
}

// set keeps the ends of pos read from the store, unless a history write
// landed since get returned writes (the read may predate it).
func (h *endsHints) set(pos [20]byte, ref endsHint, writes uint64) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.writes != writes {
		return
	}
	if h.m == nil || len(h.m) >= maxEndsHints {
		h.m = make(map[[20]byte]endsHint)
	}
	h.m[pos] = ref
}

// historyKeyLess orders history entries of one position as their keys do.
func historyKeyLess(a, b HistoryRef) bool {
	return bytes.Compare(HistoryKey(a.Pos, a.Time, a.TxID), HistoryKey(b.Pos, b.Time, b.TxID)) < 0
}

// wrote updates the hints after w was written; ok is false when the write
// failed (then what it touched is forgotten).
func (h *endsHints) wrote(w Write, ok bool) {
	if h == nil || len(w.History)+len(w.DropHistory) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.writes++
	if !ok {
		for _, e := range w.History {
			delete(h.m, e.Pos)
		}
		for _, ref := range w.DropHistory {
			delete(h.m, ref.Pos)
		}
		return
	}
	for _, e := range w.History { // puts first: a write replaces an end with a new one
		hint, held := h.m[e.Pos]
		if !held {
			continue
		}
		if historyKeyLess(e.HistoryRef, hint.oldest) {
			hint.oldest = e.HistoryRef
		}
		if historyKeyLess(hint.newest, e.HistoryRef) {
			hint.newest = e.HistoryRef
		}
		h.m[e.Pos] = hint
	}
	for _, ref := range w.DropHistory {
		if hint, held := h.m[ref.Pos]; held && (hint.oldest == ref || hint.newest == ref) {
			delete(h.m, ref.Pos)
		}
	}
}
