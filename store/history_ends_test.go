package store

import (
	"context"
	"sync"
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

// Readers and a writer of one position, each holding its lock as the
// contract says, keep the hint true: after the last write the ends are the
// listing's.
func TestHistoryEndsWithConcurrentReaders(t *testing.T) {
	s := openLocal(t, t.TempDir())
	ctx := context.Background()
	pos := [20]byte{42}
	var mu sync.Mutex
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				mu.Lock()
				if _, err := s.HistoryEnds(pos); err != nil {
					t.Error(err)
				}
				mu.Unlock()
			}
		})
	}
	for i := 1; i <= 300; i++ {
		mu.Lock()
		es, err := s.HistoryEnds(pos)
		if err != nil {
			t.Fatal(err)
		}
		w := Write{History: []HistoryEntry{{HistoryRef: HistoryRef{Pos: pos, Time: int64(i), TxID: [32]byte{byte(i), byte(i >> 8)}}, Value: []byte(`{}`)}}}
		if len(es) == 2 {
			w.DropHistory = []HistoryRef{es[1].HistoryRef}
		}
		if err := s.Write(ctx, w); err != nil {
			t.Fatal(err)
		}
		mu.Unlock()
	}
	close(done)
	wg.Wait()
	es, err := s.HistoryEnds(pos)
	all, _, _ := s.History(HistoryQuery{Pos: pos})
	if err != nil || len(all) != 2 || len(es) != 2 || es[0].HistoryRef != all[0].HistoryRef || es[1].HistoryRef != all[1].HistoryRef {
		t.Fatalf("ends %+v, the position holds %+v (%v)", es, all, err)
	}
}

// A view read before a write is never kept as the hint: set refuses it once a
// history write landed since get (a query that had read the store just before
// a write once left its older view behind, and a Thing's newest went missing
// from its history for good).
func TestEndsHintRefusesAViewOlderThanAWrite(t *testing.T) {
	var h endsHints
	pos := [20]byte{1}
	old := endsHint{HistoryRef{Pos: pos, Time: 1}, HistoryRef{Pos: pos, Time: 2}}
	_, _, writes := h.get(pos) // a reader starts
	h.wrote(Write{History: []HistoryEntry{{HistoryRef: HistoryRef{Pos: pos, Time: 3}}}}, true)
	h.set(pos, old, writes) // its view predates the write
	if got, ok, _ := h.get(pos); ok {
		t.Fatalf("a view older than a write became the hint: %+v", got)
	}
	_, _, writes = h.get(pos)
	h.set(pos, old, writes)
	h.wrote(Write{History: []HistoryEntry{{HistoryRef: HistoryRef{Pos: pos, Time: 3}}}}, true)
	if got, ok, _ := h.get(pos); !ok || got.newest.Time != 3 || got.oldest.Time != 1 {
		t.Fatalf("a write beyond the newest end: hint %+v %v, want 1..3", got, ok)
	}
	h.wrote(Write{DropHistory: []HistoryRef{{Pos: pos, Time: 3}}}, true)
	if _, ok, _ := h.get(pos); ok {
		t.Fatal("dropping an end kept the hint")
	}
}
