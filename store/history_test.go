package store

import (
	"context"
	"errors"
	"testing"
)

// TestHistoryPagesInTimeOrder: the history entries of one position come in
// time then txID order (reversed with Desc), within [From, To), after a
// cursor, cut by Limit and MaxBytes; other positions and dropped entries do
// not show; the range walk and digest count them.
func TestHistoryPagesInTimeOrder(t *testing.T) {
	s := openLocal(t, t.TempDir())
	ctx := context.Background()
	pos := [20]byte{7}
	other := [20]byte{8}
	var w Write
	for i, tm := range []int64{-5, 10, 10, 20, 30, 40} {
		w.History = append(w.History, HistoryEntry{HistoryRef: HistoryRef{Pos: pos, Time: tm, TxID: [32]byte{byte(i + 1)}}, Value: []byte{byte(i)}})
	}
	w.History = append(w.History, HistoryEntry{HistoryRef: HistoryRef{Pos: other, Time: 15, TxID: [32]byte{9}}, Value: []byte{9}})
	if err := s.Write(ctx, w); err != nil {
		t.Fatal(err)
	}
	values := func(es []HistoryEntry) (out []byte) {
		for _, e := range es {
			out = append(out, e.Value[0])
		}
		return out
	}
	for _, c := range []struct {
		name string
		q    HistoryQuery
		want []byte
		more bool
	}{
		{"all", HistoryQuery{Pos: pos, From: -100}, []byte{0, 1, 2, 3, 4, 5}, false},
		{"from 0", HistoryQuery{Pos: pos}, []byte{1, 2, 3, 4, 5}, false},
		{"[10, 30)", HistoryQuery{Pos: pos, From: 10, To: 30}, []byte{1, 2, 3}, false},
		{"desc [10, 30)", HistoryQuery{Pos: pos, From: 10, To: 30, Desc: true}, []byte{3, 2, 1}, false},
		{"desc all", HistoryQuery{Pos: pos, From: -100, Desc: true}, []byte{5, 4, 3, 2, 1, 0}, false},
		{"limit 2", HistoryQuery{Pos: pos, Limit: 2}, []byte{1, 2}, true},
		{"after the first 10", HistoryQuery{Pos: pos, After: &HistoryRef{Pos: pos, Time: 10, TxID: [32]byte{2}}}, []byte{2, 3, 4, 5}, false},
		{"desc after 30", HistoryQuery{Pos: pos, Desc: true, After: &HistoryRef{Pos: pos, Time: 30, TxID: [32]byte{5}}}, []byte{3, 2, 1}, false},
		{"max bytes", HistoryQuery{Pos: pos, MaxBytes: 2}, []byte{1, 2}, true},
		{"to before from", HistoryQuery{Pos: pos, From: 30, To: 10}, nil, false},
	} {
		es, more, err := s.History(c.q)
		if err != nil || string(values(es)) != string(c.want) || more != c.more {
			t.Errorf("%s: %v more=%v %v; want %v more=%v", c.name, values(es), more, err, c.want, c.more)
		}
	}
	if v, err := s.HistoryEntryValue(HistoryRef{Pos: pos, Time: 20, TxID: [32]byte{4}}); err != nil || v[0] != 3 {
		t.Errorf("one entry: %v %v", v, err)
	}
	d, err := s.RangeDigest(pos, pos)
	if err != nil || d.History != 7 {
		t.Errorf("digest of the whole ring: %+v %v, want 7 history entries", d, err)
	}
	n := 0
	if err := s.EachHistoryInRange([20]byte{7}, [20]byte{8}, func(HistoryRef) error { n++; return nil }); err != nil || n != 1 {
		t.Errorf("range (7, 8]: %d entries %v, want the one at 8", n, err)
	}
	if err := s.Write(ctx, Write{DropHistory: []HistoryRef{{Pos: pos, Time: 10, TxID: [32]byte{2}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.HistoryEntryValue(HistoryRef{Pos: pos, Time: 10, TxID: [32]byte{2}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("a dropped entry: %v, want not found", err)
	}
}
