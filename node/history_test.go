package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/ringledger"
)

// TestRingThingHistory: on a live 5-node ring, a Thing's history read
// through the history index is complete and in time order from every node,
// newest first too, its newest record is one read away, and all of it still
// answers once the owners of its bucket and extremes are killed (k = 3).
func TestRingThingHistory(t *testing.T) {
	r := newTestRing(t, 5, 3)
	ctx := context.Background()
	const thing = "history-meter"
	var rs []ledger.Reading
	for i := range 300 {
		name := thing
		if i%3 == 1 {
			name = "history-other"
		}
		rs = append(rs, ledger.Reading{Thing: name, Data: []byte(fmt.Sprintf(`{"n":%d}`, i))})
	}
	var want []ledger.Hash
	for i := 0; i < len(rs); i += 50 {
		rcs, err := r.live()[i/50%5].n.Put(ctx, rs[i:i+50], PutOptions{WaitReplicas: true})
		if err != nil {
			t.Fatal(err)
		}
		for j, rc := range rcs {
			if rs[i+j].Thing == thing {
				want = append(want, rc.TxID)
			}
		}
	}
	check := func(name string, n *Node, newestFirst bool) {
		t.Helper()
		query := n.RecordsByThing
		if newestFirst {
			query = n.RecordsByThingNewestFirst
		}
		recs, err := query(ctx, thing, 0, 0, 1000)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(recs) != len(want) {
			t.Fatalf("%s: %d records, want %d", name, len(recs), len(want))
		}
		got := map[ledger.Hash]bool{}
		var prev int64
		for i, raw := range recs {
			rec, err := ledger.ParseRecord(raw)
			if err != nil || rec.CheckSelf(raw) != nil || rec.Thing != thing {
				t.Fatalf("%s: record %d does not check: %v", name, i, err)
			}
			if i > 0 && (rec.Time < prev) != newestFirst && rec.Time != prev {
				t.Fatalf("%s: record %d is out of order", name, i)
			}
			prev = rec.Time
			got[rec.TxID] = true
		}
		for _, id := range want {
			if !got[id] {
				t.Fatalf("%s: record %s is missing", name, id)
			}
		}
	}
	for _, rn := range r.live() {
		check("from "+rn.id().Short(), rn.n, false)
	}
	check("newest first", r.live()[2].n, true)
	latest, err := r.live()[3].n.LatestByThing(ctx, thing)
	if err != nil {
		t.Fatal(err)
	}
	newest, _ := r.live()[3].n.RecordsByThingNewestFirst(ctx, thing, 0, 0, 1)
	if len(newest) != 1 || string(newest[0]) != string(latest) {
		t.Fatal("LatestByThing is not the newest record")
	}
	// Kill the owners of the Thing's bucket and extremes.
	rec, _ := ledger.ParseRecord(latest)
	o := r.oracle()
	victims := map[string]*ringNode{}
	for _, pos := range []ledger.Key{ringledger.HistoryBucketPosition(thing, rec.Time), ringledger.HistoryExtremesPosition(thing)} {
		rn := r.byID(o.Successor(pos))
		victims[rn.id().Hex()] = rn
	}
	for _, rn := range victims {
		r.kill(rn)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		recs, err := r.live()[0].n.RecordsByThing(ctx, thing, 0, 0, 1000)
		if err == nil && len(recs) == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with the owners of the history killed: %d records, %v; want %d", len(recs), err, len(want))
		}
		time.Sleep(100 * time.Millisecond)
	}
	check("after the kill", r.live()[0].n, false)
	if _, err := r.live()[len(r.live())-1].n.LatestByThing(ctx, thing); err != nil {
		t.Fatalf("LatestByThing after the kill: %v", err)
	}
}
