package ringledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/store"
)

// testClock is a clock the test moves: the ring's nodes share it, so that
// records can be signed hours apart.
type testClock struct{ ns atomic.Int64 }

func newTestClock(t time.Time) *testClock {
	c := &testClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *testClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *testClock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *testClock) add(d time.Duration) { c.ns.Add(int64(d)) }

// historyRing is a static ring of n members on a shared test clock that
// starts at an hour's start, three hours ago; memberships cover two days
// around it.
func historyRing(t *testing.T, n int) (*staticRing, *testClock) {
	t.Helper()
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Hour)
	c := newTestClock(start)
	a := &fakeAuthority{issued: map[ledger.Key]fakeMembership{}, revoked: map[ledger.Key]time.Time{}}
	r := openStaticRingAt(t, n, a, c.now)
	for _, id := range r.ids {
		a.admit(id, start.Add(-48*time.Hour), start.Add(48*time.Hour))
	}
	return r, c
}

// putAt puts count readings of thing at the clock's time, through entry,
// waiting for their replicas and history entries.
func putAt(t *testing.T, entry *Ledger, thing string, count int, tag string) []Receipt {
	t.Helper()
	var rs []ledger.Reading
	for i := range count {
		rs = append(rs, ledger.Reading{Thing: thing, Data: []byte(fmt.Sprintf(`{"%s":%d}`, tag, i))})
	}
	rcs, err := entry.Put(context.Background(), rs, PutOptions{WaitReplicas: true})
	if err != nil {
		t.Fatal(err)
	}
	return rcs
}

// checkHistory checks that got are the records of want (txIDs), in order,
// each verifying.
func checkHistoryOrder(t *testing.T, name string, got [][]byte, want []ledger.Hash) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", name, len(got), len(want))
	}
	for i, raw := range got {
		r, err := ledger.ParseRecord(raw)
		if err != nil || r.CheckSelf(raw) != nil {
			t.Fatalf("%s: record %d does not check: %v", name, i, err)
		}
		if r.TxID != want[i] {
			t.Fatalf("%s: record %d is %s, want %s", name, i, r.TxID, want[i])
		}
	}
}

// inTimeOrder sorts receipts' txIDs as a history returns them: by the
// records' time, then txID.
func inTimeOrder(t *testing.T, r *staticRing, rcs []Receipt) []ledger.Hash {
	t.Helper()
	type at struct {
		time int64
		id   ledger.Hash
	}
	var all []at
	for _, rc := range rcs {
		raw, err := r.nodes[rc.Owner.ID].LocalRecord(rc.TxID)
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := ledger.ParseRecord(raw)
		all = append(all, at{rec.Time, rec.TxID})
	}
	slices.SortFunc(all, func(a, b at) int {
		if a.time != b.time {
			return int(a.time - b.time)
		}
		return slices.Compare(a.id[:], b.id[:])
	})
	out := make([]ledger.Hash, len(all))
	for i, a := range all {
		out[i] = a.id
	}
	return out
}

// countGets counts the get requests the ring's nodes answer.
func countGets(r *staticRing) *atomic.Int64 {
	var n atomic.Int64
	r.mu.Lock()
	defer r.mu.Unlock()
	r.afterCall = func(_ *Ledger, req, reply json.RawMessage, err error) (json.RawMessage, error) {
		var q peerRequest
		if json.Unmarshal(req, &q) == nil && q.Op == opGet {
			n.Add(1)
		}
		return reply, err
	}
	return &n
}

// TestThingHistoryAcrossBuckets: a Thing's records written in three hours
// come back complete and in time order across the bucket boundaries, oldest
// or newest first, within bounds, up to a limit, from any node, without
// asking every node; LatestByThing is the newest one.
func TestThingHistoryAcrossBuckets(t *testing.T) {
	r, clock := historyRing(t, 5)
	start := clock.now()
	var rcs []Receipt
	for h := range 3 {
		clock.set(start.Add(time.Duration(h)*time.Hour + 10*time.Minute))
		rcs = append(rcs, putAt(t, r.nodes[r.ids[h]], "meter-7", 40, fmt.Sprint("h", h))...)
		putAt(t, r.nodes[r.ids[h]], "meter-8", 5, "other") // another Thing, same hours
	}
	want := inTimeOrder(t, r, rcs)
	reader := r.nodes[r.ids[4]]
	ctx := context.Background()
	gets := countGets(r)

	got, err := reader.RecordsByThing(ctx, "meter-7", 0, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	checkHistoryOrder(t, "the whole history", got, want)
	if n := gets.Load(); n > 6 {
		t.Errorf("the whole history took %d gets; the index needs about 4 (extremes + 3 buckets)", n)
	}
	desc, err := reader.RecordsByThingNewestFirst(ctx, "meter-7", 0, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	rev := slices.Clone(want)
	slices.Reverse(rev)
	checkHistoryOrder(t, "newest first", desc, rev)

	mid, err := reader.RecordsByThing(ctx, "meter-7", start.Add(time.Hour).UnixNano(), start.Add(2*time.Hour).UnixNano(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	checkHistoryOrder(t, "the second hour", mid, want[40:80])

	first, err := reader.RecordsByThing(ctx, "meter-7", 0, 0, 50)
	if err != nil {
		t.Fatal(err)
	}
	checkHistoryOrder(t, "limit 50 across a boundary", first, want[:50])
	last, err := reader.RecordsByThingNewestFirst(ctx, "meter-7", 0, 0, 45)
	if err != nil {
		t.Fatal(err)
	}
	checkHistoryOrder(t, "newest 45", last, rev[:45])

	latest, err := reader.LatestByThing(ctx, "meter-7")
	if err != nil {
		t.Fatal(err)
	}
	checkHistoryOrder(t, "latest", [][]byte{latest}, want[len(want)-1:])
	if _, err := reader.LatestByThing(ctx, "never-seen"); !errors.Is(err, ErrNotFound) {
		t.Errorf("LatestByThing of an unknown Thing: %v, want ErrNotFound", err)
	}
	if got, err := reader.RecordsByThing(ctx, "never-seen", 0, 0, 10); err != nil || len(got) != 0 {
		t.Errorf("history of an unknown Thing: %d records, %v", len(got), err)
	}
	for _, d := range r.nodes {
		if st := d.Stats(); st.HistoryFallbacks != 0 || st.HistoryFails != 0 {
			t.Errorf("node %s: %d fallbacks to every node, %d failed history writes", d.self().Short(), st.HistoryFallbacks, st.HistoryFails)
		}
	}
	// The old query agrees.
	old, err := reader.RecordsByThingEveryNode(ctx, "meter-7", 0, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	checkHistoryOrder(t, "every node", old, want)
}

// TestThingHistoryFromReplicas: with the owner of a bucket (and of the
// Thing's extremes) unreachable, the query answers from the copies on the
// next nodes; k = 3 copies of each entry exist.
func TestThingHistoryFromReplicas(t *testing.T) {
	r, clock := historyRing(t, 5)
	start := clock.now()
	var rcs []Receipt
	for h := range 2 {
		clock.set(start.Add(time.Duration(h)*time.Hour + 5*time.Minute))
		rcs = append(rcs, putAt(t, r.nodes[r.ids[0]], "pump", 30, fmt.Sprint("h", h))...)
	}
	want := inTimeOrder(t, r, rcs)
	settle(t, r)
	view := ringView{r: r}
	ctx := context.Background()
	for _, pos := range []ledger.Key{bucketPos("pump", historyBucketOf(start.UnixNano())), extremesPos("pump")} {
		holders := 0
		for _, d := range r.nodes {
			es, _, err := d.store.History(store.HistoryQuery{Pos: pos})
			if err != nil {
				t.Fatal(err)
			}
			if len(es) > 0 {
				holders++
			}
		}
		if holders != 3 {
			t.Errorf("position %s is held by %d nodes, want k = 3", pos.Short(), holders)
		}
	}
	owner, _, _ := view.Lookup(ctx, bucketPos("pump", historyBucketOf(start.UnixNano())))
	kill := []chord.ID{owner.ID}
	if o, _, _ := view.Lookup(ctx, extremesPos("pump")); o.ID != owner.ID {
		kill = append(kill, o.ID)
	}
	r.mu.Lock()
	dead := map[chord.ID]*Ledger{}
	for _, id := range kill {
		dead[id] = r.nodes[id]
		delete(r.nodes, id) // unreachable; the ring has not noticed yet
	}
	r.mu.Unlock()
	var reader *Ledger
	for _, id := range r.ids {
		if dead[id] == nil {
			reader = r.nodes[id]
			break
		}
	}
	got, err := reader.RecordsByThing(ctx, "pump", 0, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	checkHistoryOrder(t, "with the owners down", got, want)
	latest, err := reader.LatestByThing(ctx, "pump")
	if err != nil {
		t.Fatal(err)
	}
	checkHistoryOrder(t, "latest with the owners down", [][]byte{latest}, want[len(want)-1:])
	if reader.Stats().HistoryFallbacks != 0 {
		t.Error("the query asked every node instead of the copies")
	}
	r.mu.Lock()
	for id, d := range dead {
		r.nodes[id] = d
	}
	r.mu.Unlock()
}

// TestThingHistoryMovesWithAJoin: a node that joins takes the history
// entries of its new range from its successor (the repair round's handoff),
// answers the history of a Thing whose bucket it now owns, and the old
// holders drop their surplus copies in time.
func TestThingHistoryMovesWithAJoin(t *testing.T) {
	r, clock := historyRing(t, 4)
	clock.add(20 * time.Minute)
	ctx := context.Background()
	// Things until one's bucket falls in the range a node with seed 9 takes.
	g := r.nodes[r.ids[0]].ledger.Genesis()
	newcomer := openLedgerAt(t, g, 9, clock.now, func(c *Config) {
		m := &fakeMembers{a: r.authority, known: map[ledger.Key]bool{}}
		for _, id := range r.ids {
			m.known[id] = true
		}
		c.Members = m
	})
	id := newcomer.self()
	r.authority.admit(id, clock.now().Add(-48*time.Hour), clock.now().Add(48*time.Hour))
	for _, d := range append(slices.Collect(maps.Values(r.nodes)), newcomer) {
		m := d.cfg.Members.(*fakeMembers)
		m.mu.Lock()
		m.known[id] = true
		m.mu.Unlock()
	}
	ids := append(slices.Clone(r.ids), id)
	slices.SortFunc(ids, chord.ID.Cmp)
	i := slices.Index(ids, id)
	pred := ids[(i+len(ids)-1)%len(ids)]
	thing := ""
	for n := 0; thing == ""; n++ {
		name := fmt.Sprintf("valve-%d", n)
		if inRange(pred, bucketPos(name, historyBucketOf(clock.now().UnixNano())), id) {
			thing = name
		}
	}
	rcs := putAt(t, r.nodes[r.ids[0]], thing, 25, "v")
	want := inTimeOrder(t, r, rcs)
	settle(t, r)
	// The join.
	r.mu.Lock()
	r.nodes[id] = newcomer
	r.ids = ids
	r.mu.Unlock()
	newcomer.Attach(ringView{r: r, self: id})
	for _, d := range r.nodes {
		d.RingEvent(chord.SuccessorsChanged{})
	}
	if err := newcomer.SyncNow(ctx); err != nil {
		t.Fatal(err)
	}
	pos := bucketPos(thing, historyBucketOf(clock.now().UnixNano()))
	es, _, err := newcomer.store.History(store.HistoryQuery{Pos: pos})
	if err != nil || len(es) != len(want) {
		t.Fatalf("the newcomer holds %d entries of the bucket it owns (%v), want %d", len(es), err, len(want))
	}
	// Only the newcomer answers now: the others are cut off from the
	// bucket's get.
	r.mu.Lock()
	r.intercept = func(to *Ledger, _ chord.Peer, req json.RawMessage) (json.RawMessage, bool) {
		var q peerRequest
		var b getBody
		if to == newcomer || json.Unmarshal(req, &q) != nil || q.Op != opGet || json.Unmarshal(q.Body, &b) != nil || b.History == nil || *b.History != pos {
			return nil, false
		}
		out, _ := json.Marshal(reply{Refusal: refuse(CodeUnavailable, "cut off in this test")})
		return out, true
	}
	r.mu.Unlock()
	got, err := r.nodes[r.ids[0]].RecordsByThing(ctx, thing, 0, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	checkHistoryOrder(t, "after the join", got, want)
	// The copies settle to k holders of the bucket once surplus copies go
	// (after the grace period: the clock jumps past it).
	r.mu.Lock()
	r.intercept = nil
	r.mu.Unlock()
	clock.add(7 * time.Hour) // past the grace period of six sync intervals
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, d := range r.nodes {
			d.SyncNow(ctx)
		}
		holders := 0
		for _, d := range r.nodes {
			if es, _, _ := d.store.History(store.HistoryQuery{Pos: pos}); len(es) > 0 {
				holders++
			}
		}
		if holders == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d nodes hold the bucket after the join, want k = 3", holders)
		}
		clock.add(time.Hour)
	}
}

// TestLiarPlantedHistoryIsRefused: a member cannot plant history entries
// that are not the record they claim to be at the position they claim: a
// record of another Thing at a Thing's bucket, a record of another hour, a
// throwaway key's record, a tampered one, a record of a key outside the
// liar's range, a copy at a position the liar does not own. A holder that
// answers a reader with such entries is filtered out by the reader.
func TestLiarPlantedHistoryIsRefused(t *testing.T) {
	r, clock := historyRing(t, 5)
	clock.add(30 * time.Minute)
	ctx := context.Background()
	liar := r.nodes[r.ids[1]]
	g := liar.ledger.Genesis()
	rcs := putAt(t, r.nodes[r.ids[3]], "boiler", 10, "b")
	want := inTimeOrder(t, r, rcs)
	settle(t, r)
	now := clock.now()
	bucket := bucketPos("boiler", historyBucketOf(now.UnixNano()))
	view := ringView{r: r}
	holderPeer, _, _ := view.Lookup(ctx, bucket)
	holder := r.nodes[holderPeer.ID]
	if holder == liar {
		t.Skip("the liar owns the bucket in this ring") // seeds are fixed: never happens
	}
	var reader *Ledger // reads the bucket from its holders, not from itself
	for _, id := range r.ids {
		if id != holderPeer.ID && id != liar.self() {
			reader = r.nodes[id]
			break
		}
	}
	own := liar.ledger.Identity()
	liarKey := liar.self() // a key in the liar's range
	_, otherThing := signAs(t, own, g, "furnace", liarKey, now)
	_, otherHour := signAs(t, own, g, "boiler", liarKey, now.Add(-2*time.Hour))
	_, throw := signAs(t, throwaway(t), g, "boiler", liarKey, now)
	tamperedRec, _ := signAs(t, own, g, "boiler", liarKey, now)
	tamperedRec.Data = []byte(`{"v":2}`)
	tampered, _ := json.Marshal(tamperedRec)
	_, outside := signAs(t, own, g, "boiler", r.ids[3], now) // key owned by ids[3]
	_, future := signAs(t, own, g, "boiler", liarKey, now.Add(time.Hour))
	from := r.peer(liar.self())
	before := digests(t, r)
	for name, raw := range map[string][]byte{
		"a record of another Thing":         otherThing,
		"a record of another hour":          otherHour,
		"a throwaway key's record":          throw,
		"a tampered record":                 tampered,
		"a record of a key the liar lacks":  outside,
		"a record from the next hour ahead": future,
	} {
		body := replicateBody{History: []wireHistory{{Pos: bucket, Record: raw}}}
		if rf := send(t, holder, from, opPointers, body); rf == nil || rf.Code != CodeRefused {
			t.Errorf("%s: %v, want refused", name, rf)
		}
	}
	// A copy pushed as if the liar owned the bucket.
	_, good := signAs(t, own, g, "boiler", liarKey, now)
	for _, d := range r.nodes {
		if d == liar || d == holder {
			continue
		}
		if rf := send(t, d, from, opReplicate, replicateBody{History: []wireHistory{{Pos: bucket, Record: good}}}); rf == nil || rf.Code != CodeRefused {
			t.Errorf("a copy of a bucket the liar does not own, to %s: %v, want refused", d.self().Short(), rf)
		}
	}
	unchanged(t, r, before)
	// The holders of the bucket answer with planted entries: the reader
	// drops them and still returns the true history.
	r.mu.Lock()
	r.afterCall = func(to *Ledger, req, rep json.RawMessage, err error) (json.RawMessage, error) {
		var q peerRequest
		var b getBody
		if json.Unmarshal(req, &q) != nil || q.Op != opGet || json.Unmarshal(q.Body, &b) != nil || b.History == nil || *b.History != bucket {
			return rep, err
		}
		var ans struct {
			Answer getAnswer `json:"answer"`
		}
		if json.Unmarshal(rep, &ans) != nil {
			return rep, err
		}
		ans.Answer.Records = append(ans.Answer.Records, otherThing, otherHour)
		out, _ := json.Marshal(reply{Answer: ans.Answer})
		return out, nil
	}
	r.mu.Unlock()
	got, err := reader.RecordsByThing(ctx, "boiler", 0, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	checkHistoryOrder(t, "with planted answers", got, want)
	if reader.Stats().BadAnswers == 0 {
		t.Error("the planted answers were not counted")
	}
	// A holder answering with a forged record makes the reader go to the
	// next holder.
	r.mu.Lock()
	r.afterCall = func(to *Ledger, req, rep json.RawMessage, err error) (json.RawMessage, error) {
		var q peerRequest
		var b getBody
		if to != holder || json.Unmarshal(req, &q) != nil || q.Op != opGet || json.Unmarshal(q.Body, &b) != nil || b.History == nil {
			return rep, err
		}
		out, _ := json.Marshal(reply{Answer: getAnswer{Records: []json.RawMessage{throw}}})
		return out, nil
	}
	r.mu.Unlock()
	got, err = reader.RecordsByThing(ctx, "boiler", 0, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	checkHistoryOrder(t, "with a forging holder", got, want)
	verifyAll(t, r)
}

// TestThingHistoryBounds: bad input is refused, a range that would need
// more than MaxHistoryBuckets buckets says so, a peer's get of history is
// bounded.
func TestThingHistoryBounds(t *testing.T) {
	r, clock := historyRing(t, 3)
	ctx := context.Background()
	reader := r.nodes[r.ids[0]]
	var ie *ledger.InputError
	if _, err := reader.RecordsByThing(ctx, "bad/thing", 0, 0, 10); !errors.As(err, &ie) {
		t.Errorf("an invalid Thing: %v, want an input error", err)
	}
	if _, err := reader.LatestByThing(ctx, ""); !errors.As(err, &ie) {
		t.Errorf("an empty Thing: %v, want an input error", err)
	}
	if got, err := reader.RecordsByThing(ctx, "x", 10, 5, 10); err != nil || len(got) != 0 {
		t.Errorf("to before from: %d %v", len(got), err)
	}
	// One record now, one 400 days later: a history without bounds would
	// walk 9 600 empty hours.
	putAt(t, reader, "slow", 1, "a")
	clock.add(400 * 24 * time.Hour)
	for _, d := range r.nodes { // memberships for the new time
		r.authority.admit(d.self(), clock.now().Add(-500*24*time.Hour), clock.now().Add(time.Hour))
	}
	putAt(t, reader, "slow", 1, "b")
	if _, err := reader.RecordsByThing(ctx, "slow", 0, 0, 10); !errors.Is(err, ErrRangeTooLong) {
		t.Errorf("400 days, limit 10: %v, want ErrRangeTooLong", err)
	}
	if got, err := reader.RecordsByThing(ctx, "slow", 0, 0, 1); err != nil || len(got) != 1 {
		t.Errorf("400 days, limit 1: %d records, %v; the first bucket fills it", len(got), err)
	}
	if got, err := reader.RecordsByThingNewestFirst(ctx, "slow", 0, 0, 1); err != nil || len(got) != 1 {
		t.Errorf("400 days newest first, limit 1: %d records, %v", len(got), err)
	}
	from := r.peer(r.ids[1])
	pos := extremesPos("slow")
	for name, q := range map[string]getBody{
		"skip":          {History: &pos, Thing: "slow", Skip: 3},
		"a huge limit":  {History: &pos, Thing: "slow", Limit: maxGetLimit + 1},
		"no thing":      {History: &pos},
		"a far cursor":  {History: &pos, Thing: "slow", After: &wireCursor{Pos: r.ids[0]}},
		"a desc by key": {Key: &pos, Desc: true},
	} {
		if rf := send(t, reader, from, opGet, q); rf == nil || rf.Code != CodeRefused {
			t.Errorf("%s: %v, want refused", name, rf)
		}
	}
	if rf := send(t, reader, from, opPointers, replicateBody{History: make([]wireHistory, listPage+1)}); rf == nil || rf.Code != CodeRefused {
		t.Errorf("a flood of history entries: %v, want refused", rf)
	}
}

// TestThingHistoryRebuild: records whose history entries are gone (a data
// directory from before the index, or writes that failed) are indexed again
// by the owners of their keys in their repair rounds.
func TestThingHistoryRebuild(t *testing.T) {
	r, clock := historyRing(t, 5)
	clock.add(15 * time.Minute)
	ctx := context.Background()
	rcs := putAt(t, r.nodes[r.ids[2]], "legacy", 60, "l")
	want := inTimeOrder(t, r, rcs)
	settle(t, r)
	for _, d := range r.nodes {
		var drop []store.HistoryRef
		if err := d.store.EachHistoryInRange(d.self(), d.self(), func(ref store.HistoryRef) error {
			drop = append(drop, ref)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := d.ledger.PutHistory(ctx, nil, nil, drop); err != nil {
			t.Fatal(err)
		}
		d.needHistoryRebuild()
	}
	if got, err := r.nodes[r.ids[0]].RecordsByThing(ctx, "legacy", 0, 0, 100); err != nil || len(got) != 0 {
		t.Fatalf("with the index gone: %d records, %v", len(got), err)
	}
	var wg sync.WaitGroup
	for _, d := range r.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.SyncNow(ctx); err != nil {
				t.Errorf("sync: %v", err)
			}
		}()
	}
	wg.Wait()
	for _, d := range r.nodes {
		if d.HistoryOwed() {
			t.Errorf("node %s still owes its history index", d.self().Short())
		}
		if v, err := d.store.Meta(historyMeta); err != nil || string(v) != string(historyBuilt) {
			t.Errorf("node %s's history meta: %q %v", d.self().Short(), v, err)
		}
	}
	got, err := r.nodes[r.ids[0]].RecordsByThing(ctx, "legacy", 0, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	checkHistoryOrder(t, "after the rebuild", got, want)
}

// TestHistoryRepairIsQuiet: once the history entries are in place, repair
// rounds move nothing: the holders of each position agree, extremes too.
func TestHistoryRepairIsQuiet(t *testing.T) {
	r, clock := historyRing(t, 5)
	ctx := context.Background()
	for i := range 6 {
		clock.add(20 * time.Minute)
		putAt(t, r.nodes[r.ids[i%5]], fmt.Sprint("quiet-", i%2), 20, "q")
	}
	settle(t, r)
	moved := func() (n uint64) {
		for _, d := range r.nodes {
			if err := d.SyncNow(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for _, d := range r.nodes {
			st := d.Stats()
			n += st.Pushed + st.Pulled
		}
		return n
	}
	moved()
	first := moved()
	if second := moved(); second != first {
		t.Errorf("repair rounds keep moving entries: %d more in a round after the ring settled", second-first)
	}
}
