package store

import (
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
// away, and any walk over them costs one step each: a Badger seek reads one
// entry past the one it finds (so a seek to the oldest steps over them all),
// and History with a limit does too, to say whether there is more. So each
// end is found by a walk outwards from the end seen at
// pos before (hints the Store keeps: nothing is replaced below the oldest or
// above the newest, and an entry a write just replaced sits right inside the
// new end); only without a hint, or when the walk meets nothing, is the end
// sought from the far side.
func (r *Reader) HistoryEnds(pos [20]byte) ([]HistoryEntry, error) {
	prefix := append([]byte{PrefixHistory}, pos[:]...)
	var out []HistoryEntry
	err := r.view(func(txn *badger.Txn) error {
		hint, hinted := r.ends.get(pos)
		var oldest, newest *HistoryEntry
		var err error
		if hinted {
			// Below the oldest and above the newest nothing was replaced:
			// walking outwards from the ends seen before is short.
			if oldest, err = lastEntryFrom(txn, prefix, HistoryKey(pos, hint.oldest.Time, hint.oldest.TxID), true); err != nil {
				return err
			}
			if newest, err = lastEntryFrom(txn, prefix, HistoryKey(pos, hint.newest.Time, hint.newest.TxID), false); err != nil {
				return err
			}
		}
		if oldest == nil {
			if oldest, err = firstEntry(txn, prefix, prefix, false); err != nil || oldest == nil {
				return err
			}
		}
		if newest == nil {
			if newest, err = firstEntry(txn, prefix, append(append([]byte(nil), prefix...), make41xff()...), true); err != nil {
				return err
			}
		}
		out = append(out, *oldest)
		if newest.HistoryRef != oldest.HistoryRef {
			out = append(out, *newest)
		}
		r.ends.set(pos, endsHint{oldest.HistoryRef, newest.HistoryRef})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("history ends at %x: %w", pos, err)
	}
	return out, nil
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

// lastEntryFrom returns the last entry with prefix a walk from seek on
// meets, forward or in reverse, or nil when it meets none.
func lastEntryFrom(txn *badger.Txn, prefix, seek []byte, reverse bool) (*HistoryEntry, error) {
	opts := badger.DefaultIteratorOptions
	opts.Prefix, opts.Reverse, opts.PrefetchValues = prefix, reverse, false
	it := txn.NewIterator(opts)
	defer it.Close()
	var last []byte // a copy: the iterator reuses its item
	for it.Seek(seek); it.ValidForPrefix(prefix); it.Next() {
		last = it.Item().KeyCopy(last)
	}
	if last == nil {
		return nil, nil
	}
	item, err := txn.Get(last)
	if err != nil {
		return nil, err
	}
	return entryOf(item)
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

// endsHints remembers the ends HistoryEnds found at recent positions.
// A hint only says where to start looking: a stale one costs a longer walk or
// a reverse seek, never a wrong answer. It holds at most maxEndsHints
// positions (then it starts over), about 1 MB.
type endsHints struct {
	mu sync.Mutex
	m  map[[20]byte]endsHint
}

type endsHint struct{ oldest, newest HistoryRef }

const maxEndsHints = 8192

func (h *endsHints) get(pos [20]byte) (endsHint, bool) {
	if h == nil {
		return endsHint{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ref, ok := h.m[pos]
	return ref, ok
}

func (h *endsHints) set(pos [20]byte, ref endsHint) {
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil || len(h.m) >= maxEndsHints {
		h.m = make(map[[20]byte]endsHint)
	}
	h.m[pos] = ref
}
