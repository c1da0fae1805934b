package store

import (
	"context"
	"testing"
	"time"
)

// HistoryEnds finds the two ends of positions whose entries are replaced
// again and again (Things' extremes), as the full listing says, and walks
// neither their replaced entries nor those of the positions beside them: its
// cost stays flat as they pile up.
func TestHistoryEndsOverReplacedEntries(t *testing.T) {
	s := openLocal(t, t.TempDir())
	ctx := context.Background()
	check := func(pos [20]byte, es []HistoryEntry, step int) {
		t.Helper()
		all, _, err := s.History(HistoryQuery{Pos: pos})
		if err != nil || len(all) != len(es) || len(es) > 0 && (all[0].HistoryRef != es[0].HistoryRef || all[len(all)-1].HistoryRef != es[len(es)-1].HistoryRef) {
			t.Fatalf("position %x, step %d: ends %+v, the position holds %+v (%v)", pos[0], step, es, all, err)
		}
	}
	for p := byte(10); p < 13; p++ {
		pos := [20]byte{p}
		if es, err := s.HistoryEnds(pos); err != nil || len(es) != 0 {
			t.Fatalf("empty position: %v %v", es, err)
		}
		var first, last time.Duration
		for i := 1; i <= 1500; i++ {
			t0 := time.Now()
			es, err := s.HistoryEnds(pos)
			took := time.Since(t0)
			if err != nil {
				t.Fatal(err)
			}
			if i%100 == 1 {
				check(pos, es, i)
			}
			switch i {
			case 10:
				first = took
			case 1500:
				last = took
			}
			ref := HistoryRef{Pos: pos, Time: int64(1000 + i), TxID: [32]byte{byte(i), byte(i >> 8)}}
			w := Write{History: []HistoryEntry{{HistoryRef: ref, Value: []byte(`{}`)}}}
			if len(es) == 2 {
				w.DropHistory = []HistoryRef{es[1].HistoryRef} // a new newest replaces the newest
			}
			if err := s.Write(ctx, w); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("position %x: HistoryEnds after 10 replaced entries %v, after 1500 %v", p, first, last)
		// A new oldest replaces the oldest; then the newest goes, leaving a
		// stale hint: both are still found.
		es, _ := s.HistoryEnds(pos)
		older := HistoryRef{Pos: pos, Time: 5, TxID: [32]byte{7}}
		if err := s.Write(ctx, Write{History: []HistoryEntry{{HistoryRef: older, Value: []byte(`{}`)}}, DropHistory: []HistoryRef{es[0].HistoryRef}}); err != nil {
			t.Fatal(err)
		}
		es, _ = s.HistoryEnds(pos)
		check(pos, es, -1)
		if err := s.Write(ctx, Write{DropHistory: []HistoryRef{es[1].HistoryRef}}); err != nil {
			t.Fatal(err)
		}
		es, _ = s.HistoryEnds(pos)
		check(pos, es, -2)
	}
}
