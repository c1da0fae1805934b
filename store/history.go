package store

import (
	"encoding/binary"
	"errors"
	"fmt"

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
// they are the same, none when pos holds none), each found by one seek. A
// Thing's extremes position keeps two entries and replaces them as records
// arrive, so the deletions pile up between the two ends until Badger compacts
// them away: reading the ends by seeking never walks past them, where
// History would step over every one (a long-lived Thing's write would cost
// a scan of all its earlier ones).
func (r *Reader) HistoryEnds(pos [20]byte) ([]HistoryEntry, error) {
	prefix := append([]byte{PrefixHistory}, pos[:]...)
	var out []HistoryEntry
	err := r.view(func(txn *badger.Txn) error {
		for _, reverse := range []bool{false, true} {
			opts := badger.DefaultIteratorOptions
			opts.Prefix, opts.Reverse, opts.PrefetchValues = prefix, reverse, false
			it := txn.NewIterator(opts)
			seek := prefix
			if reverse {
				seek = append(append([]byte(nil), prefix...), make41xff()...)
			}
			it.Seek(seek)
			if !it.ValidForPrefix(prefix) {
				it.Close()
				return nil
			}
			item := it.Item()
			ref, err := parseHistoryKey(item.Key())
			if err == nil && len(out) == 1 && out[0].HistoryRef == ref {
				it.Close()
				return nil
			}
			var v []byte
			if err == nil {
				v, err = item.ValueCopy(nil)
			}
			it.Close()
			if err != nil {
				return err
			}
			out = append(out, HistoryEntry{HistoryRef: ref, Value: v})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("history ends at %x: %w", pos, err)
	}
	return out, nil
}
