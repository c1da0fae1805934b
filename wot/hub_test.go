package wot

import (
	"fmt"
	"testing"
	"time"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

func upd(thing string, i int) Update {
	var h ledger.Hash
	copy(h[:], fmt.Sprintf("%s/%d", thing, i))
	return Update{Thing: thing, TxID: h, Time: int64(i), Value: []byte(fmt.Sprint(i))}
}

func drain(s Subscription) []string {
	var out []string
	for {
		select {
		case u := <-s.Updates():
			out = append(out, string(u.Value))
		default:
			return out
		}
	}
}

// TestHubDropsRetriesAndDuplicates: a retried publication (same source,
// sequences already delivered) and a record published twice (same txID)
// reach a subscription once; a new epoch of a source starts afresh.
func TestHubDropsRetriesAndDuplicates(t *testing.T) {
	var h hub
	s, first, err := h.add("t")
	if err != nil || !first {
		t.Fatal(first, err)
	}
	h.things["t"].lastTime = 0 // the test's record times are small numbers
	src := source{node: ledger.Key{1}, epoch: 7}
	h.deliver("t", &src, 1, []Update{upd("t", 1), upd("t", 2), upd("t", 3)})
	h.deliver("t", &src, 2, []Update{upd("t", 2), upd("t", 3), upd("t", 4)}) // a retry overlapping
	other := source{node: ledger.Key{2}, epoch: 1}
	h.deliver("t", &other, 1, []Update{upd("t", 4), upd("t", 5)}) // 4 again, by txID
	h.deliver("t", nil, 0, []Update{upd("t", 6)})                 // this node's own write
	restarted := source{node: ledger.Key{1}, epoch: 8}
	h.deliver("t", &restarted, 1, []Update{upd("t", 7)})
	if got := fmt.Sprint(drain(s)); got != "[1 2 3 4 5 6 7]" {
		t.Fatalf("delivered %s", got)
	}
	// A gap in a source's sequence holds what follows until the catch-up
	// from the ring, which delivers what was missed, then what was held.
	if _, behind := h.deliver("t", &src, 6, []Update{upd("t", 10)}); !behind {
		t.Fatal("a gap (4 to 6) is not behind")
	}
	if got := drain(s); len(got) != 0 {
		t.Fatalf("delivered %v during a catch-up", got)
	}
	if from := h.behindThings()["t"]; from != 4 {
		t.Fatalf("catch-up from %d, want 4 (the last update before the gap)", from)
	}
	// The gap is one update (seq 5): a ring read without it waits.
	if n, done := h.catchUp("t", 4, []Update{upd("t", 4)}, false); n != 0 || done {
		t.Fatalf("caught up %d, done %v, from a read missing the gap", n, done)
	}
	if n, done := h.catchUp("t", 4, []Update{upd("t", 4), upd("t", 8), upd("t", 9), upd("t", 10)}, false); n != 2 || !done {
		t.Fatalf("caught up %d (done %v), want 2 (10 was held)", n, done)
	}
	if got := fmt.Sprint(drain(s)); got != "[8 9 10]" {
		t.Fatalf("after the catch-up: %s", got)
	}
	if len(h.behindThings()) != 0 {
		t.Fatal("still behind")
	}
	// A late publication older than what the catch-up delivered is dropped.
	late := source{node: ledger.Key{3}, epoch: 1}
	old := upd("other", 9) // another record, of time 9
	old.Thing = "t"
	h.deliver("t", &late, 1, []Update{old, upd("t", 11)})
	if got := fmt.Sprint(drain(s)); got != "[11]" {
		t.Fatalf("after a late publication: %s", got)
	}
	if wanted, _ := h.deliver("u", nil, 0, []Update{upd("u", 1)}); wanted {
		t.Fatal("a Thing without subscriptions is wanted")
	}
	s.Close()
	s.Close()
	if h.wants("t") || h.count != 0 {
		t.Fatal("closed subscription still held")
	}
}

// TestSubscriptionDropsOldest: a subscriber that does not read keeps the
// newest subBuffer updates, in order, and Lost counts the others.
func TestSubscriptionDropsOldest(t *testing.T) {
	var h hub
	s, _, _ := h.add("t")
	defer s.Close()
	for i := 0; i < subBuffer+44; i++ {
		h.deliver("t", nil, 0, []Update{upd("t", i)})
	}
	got := drain(s)
	if len(got) != subBuffer || got[0] != "44" || got[len(got)-1] != fmt.Sprint(subBuffer+43) || s.Lost() != 44 {
		t.Fatalf("kept %d from %s, lost %d", len(got), got[0], s.Lost())
	}
}

// TestSubscriptionsBounded: past maxSubscriptions, Subscribe is refused.
func TestSubscriptionsBounded(t *testing.T) {
	var h hub
	for i := 0; i < maxSubscriptions; i++ {
		if _, _, err := h.add(fmt.Sprint("t", i%10)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := h.add("t0"); err != ErrTooManySubscriptions {
		t.Fatalf("over the bound: %v", err)
	}
	h.closeAll()
	if h.count != 0 || len(h.things) != 0 {
		t.Fatalf("closeAll left %d", h.count)
	}
}

// TestLeases: leases are bounded per peer, renewed in place, expire, and
// the publisher is not notified of its own updates.
func TestLeases(t *testing.T) {
	var lt leaseTable
	now := time.Now()
	p1, p2 := node.Peer{ID: ledger.Key{1}}, node.Peer{ID: ledger.Key{2}}
	for i := 0; i < leasesPerPeer; i++ {
		if ok, fresh := lt.grant(fmt.Sprint("t", i), p1, now.Add(time.Minute)); !ok || !fresh {
			t.Fatalf("lease %d refused", i)
		}
	}
	if ok, _ := lt.grant("one-more", p1, now.Add(time.Minute)); ok {
		t.Fatal("over the per-peer bound")
	}
	if ok, fresh := lt.grant("t0", p1, now.Add(time.Second)); !ok || fresh {
		t.Fatal("renewal refused or taken as new")
	}
	if ok, fresh := lt.grant("t0", p2, now.Add(time.Minute)); !ok || !fresh {
		t.Fatal("another peer refused")
	}
	if hs := lt.holders("t0", p2.ID, now); len(hs) != 1 || hs[0].ID != p1.ID {
		t.Fatalf("holders %v", hs)
	}
	if hs := lt.holders("t0", ledger.Key{9}, now.Add(2*time.Second)); len(hs) != 1 || hs[0].ID != p2.ID {
		t.Fatalf("after p1's lease expired: %v", hs)
	}
	lt.sweep(now.Add(2 * time.Minute))
	if lt.total != 0 || len(lt.byThing) != 0 || len(lt.perPeer) != 0 {
		t.Fatalf("sweep left %d leases", lt.total)
	}
}

// TestLatestCache: the newest value wins; the cache is bounded.
func TestLatestCache(t *testing.T) {
	var c latestCache
	now := time.Now()
	c.put(upd("t", 5), now)
	c.put(upd("t", 3), now) // older: kept out
	if u, _, ok, _ := c.get("t", now); !ok || string(u.Value) != "5" {
		t.Fatalf("got %s", u.Value)
	}
	c.putNone("n", now)
	if _, _, ok, none := c.get("n", now); ok || !none {
		t.Fatal("no-value entry")
	}
	if _, _, ok, none := c.get("n", now.Add(noValueFor)); ok || none {
		t.Fatal("no-value entry did not expire")
	}
	for i := 0; i < latestThings+10; i++ {
		c.put(upd(fmt.Sprint("x", i), i), now)
	}
	if len(c.byID) > latestThings || c.lru.Len() != len(c.byID) {
		t.Fatalf("%d entries", len(c.byID))
	}
}

// TestSourceOlderUpdateIsDropped: an update older than one its source sent
// before (a resent reading, signed again with its time and published after
// newer ones) is not delivered late: it counts as lost, and the source's
// sequence goes on without a gap.
func TestSourceOlderUpdateIsDropped(t *testing.T) {
	var h hub
	s, _, _ := h.add("t")
	defer s.Close()
	src := source{node: ledger.Key{1}, epoch: 7}
	now := int(time.Now().UnixNano())
	h.deliver("t", &src, 1, []Update{upd("t", now+10), upd("t", now+20)})
	if _, gap := h.deliver("t", &src, 3, []Update{upd("t", now+15), upd("t", now+30)}); gap {
		t.Fatal("a late update made a gap")
	}
	got := drain(s)
	want := []string{fmt.Sprint(now + 10), fmt.Sprint(now + 20), fmt.Sprint(now + 30)}
	if fmt.Sprint(got) != fmt.Sprint(want) || s.Lost() != 1 {
		t.Fatalf("delivered %v (lost %d), want %v and 1 lost", got, s.Lost(), want)
	}
}
