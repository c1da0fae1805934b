package store

import (
	"context"
	"testing"
	"time"
)

// HistoryEnds finds the two ends of a position whose entries are replaced
// again and again (a Thing's extremes), as the full listing says, and does
// not walk the replaced ones: its cost stays flat as they pile up.
func TestHistoryEndsOverReplacedEntries(t *testing.T) {
	s := openLocal(t, t.TempDir())
	var pos [20]byte
	pos[0] = 7
	ctx := context.Background()
	// Neighbours on both sides: every walk must stop at the position's edge.
	for _, p := range [][20]byte{{6, 0xff}, {8}} {
		if err := s.Write(ctx, Write{History: []HistoryEntry{{HistoryRef: HistoryRef{Pos: p, Time: 5, TxID: [32]byte{9}}, Value: []byte(`{}`)}}}); err != nil {
			t.Fatal(err)
		}
	}
	if es, err := s.HistoryEnds(pos); err != nil || len(es) != 0 {
		t.Fatalf("empty position: %v %v", es, err)
	}
	oldest := HistoryRef{Pos: pos, Time: 1, TxID: [32]byte{1}}
	if err := s.Write(ctx, Write{History: []HistoryEntry{{HistoryRef: oldest, Value: []byte(`{"i":1}`)}}}); err != nil {
		t.Fatal(err)
	}
	if es, err := s.HistoryEnds(pos); err != nil || len(es) != 1 || es[0].HistoryRef != oldest {
		t.Fatalf("one entry: %+v %v", es, err)
	}
	var first, last time.Duration
	for i := 2; i <= 3000; i++ {
		t0 := time.Now()
		es, err := s.HistoryEnds(pos)
		took := time.Since(t0)
		if err != nil {
			t.Fatal(err)
		}
		all, _, err := s.History(HistoryQuery{Pos: pos})
		if err != nil || len(all) != len(es) || all[0].HistoryRef != es[0].HistoryRef || all[len(all)-1].HistoryRef != es[len(es)-1].HistoryRef {
			t.Fatalf("step %d: ends %+v, the position holds %+v (%v)", i, es, all, err)
		}
		switch i {
		case 10:
			first = took
		case 3000:
			last = took
		}
		ref := HistoryRef{Pos: pos, Time: int64(i), TxID: [32]byte{byte(i), byte(i >> 8)}}
		w := Write{History: []HistoryEntry{{HistoryRef: ref, Value: []byte(`{}`)}}}
		if len(es) == 2 {
			w.DropHistory = []HistoryRef{es[1].HistoryRef}
		}
		if err := s.Write(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	// A stale hint (its entry gone, nothing after it) still finds the newest.
	es, _ := s.HistoryEnds(pos)
	if err := s.Write(ctx, Write{DropHistory: []HistoryRef{es[1].HistoryRef}}); err != nil {
		t.Fatal(err)
	}
	es2, err := s.HistoryEnds(pos)
	all, _, _ := s.History(HistoryQuery{Pos: pos})
	if err != nil || len(es2) != len(all) || es2[len(es2)-1].HistoryRef != all[len(all)-1].HistoryRef {
		t.Fatalf("after the newest was dropped: %+v, the position holds %+v (%v)", es2, all, err)
	}
	t.Logf("HistoryEnds after 10 replaced entries %v, after 3000 %v", first, last)
}
