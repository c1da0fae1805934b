package chord

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func keyAt(v byte) ID {
	var k ID
	k[0] = v
	return k
}

// learnedVia runs a lookup of key 30 from node 100 (linkedNode): 20 names
// 40, and 40 confirms with its predecessor 20 and successors 50 60 90.
func learnedVia(t *testing.T) (*Node, int) {
	t.Helper()
	n, timeout := linkedNode(t)
	id := n.Lookup(keyAt(30))
	path := sentTo(t, n.Ready(), FindSuccessor, pos(20))
	n.Step(reply(path, FoundSuccessor, Payload{Done: true, Owner: pos(40), Succs: []Peer{pos(50), pos(60)}}))
	confirm := sentTo(t, n.Ready(), FindSuccessor, pos(40))
	n.Step(reply(confirm, FoundSuccessor, Payload{Done: true, Owner: pos(40), Pred: pos(20), Succs: []Peer{pos(50), pos(60), pos(90)}}))
	if d := lookupDone(n.Ready(), id); d == nil || d.Owner.ID != pos(40).ID || d.Hops != 1 {
		t.Fatalf("setup lookup: %+v", d)
	}
	return n, timeout
}

// TestLookupAsksKnownOwner: after an owner's confirmation, a lookup for a
// key in the run of nodes it named asks that key's owner at once, and ends
// with its confirmation (no hop on a path).
func TestLookupAsksKnownOwner(t *testing.T) {
	n, _ := learnedVia(t)
	for _, c := range []struct{ key, owner, pred byte }{{35, 40, 20}, {40, 40, 20}, {55, 60, 50}, {61, 90, 60}} {
		id := n.Lookup(keyAt(c.key))
		rd := n.Ready()
		if len(rd.Messages) != 1 {
			t.Fatalf("key %d: sent %v, want one question to %d", c.key, rd.Messages, c.owner)
		}
		q := sentTo(t, rd, FindSuccessor, pos(c.owner))
		n.Step(reply(q, FoundSuccessor, Payload{Done: true, Owner: pos(c.owner), Pred: pos(c.pred)}))
		if d := lookupDone(n.Ready(), id); d == nil || d.Err != nil || d.Owner.ID != pos(c.owner).ID || d.Hops != 0 {
			t.Fatalf("key %d: %+v, want %d with no hop", c.key, d, c.owner)
		}
	}
	// Outside the run (and its predecessor's range is (20, 40]): routed.
	n.Lookup(keyAt(95))
	sentTo(t, n.Ready(), FindSuccessor, pos(20))
}

// TestKnownOwnerStale: a known owner that no longer owns the key names the
// node that joined before it, which is then asked; one that does not answer
// is forgotten and the lookup routes on. Neither ends in a wrong owner.
func TestKnownOwnerStale(t *testing.T) {
	t.Run("joined", func(t *testing.T) {
		n, _ := learnedVia(t)
		id := n.Lookup(keyAt(45))
		q := sentTo(t, n.Ready(), FindSuccessor, pos(50))
		n.Step(reply(q, FoundSuccessor, Payload{Next: []Peer{pos(20)}, Pred: pos(47)}))
		q = sentTo(t, n.Ready(), FindSuccessor, pos(47))
		n.Step(reply(q, FoundSuccessor, Payload{Done: true, Owner: pos(47), Pred: pos(40), Succs: []Peer{pos(50)}}))
		if d := lookupDone(n.Ready(), id); d == nil || d.Owner.ID != pos(47).ID {
			t.Fatalf("lookup: %+v, want 47", d)
		}
		if o, ok := n.cachedOwner(keyAt(45)); !ok || o.ID != pos(47).ID {
			t.Fatalf("known owner of 45: %v %v, want 47", o, ok)
		}
		if o, ok := n.cachedOwner(keyAt(48)); !ok || o.ID != pos(50).ID {
			t.Fatalf("known owner of 48: %v %v, want 50", o, ok)
		}
	})
	t.Run("silent", func(t *testing.T) {
		n, timeout := learnedVia(t)
		id := n.Lookup(keyAt(85))
		sentTo(t, n.Ready(), FindSuccessor, pos(90))
		rd := tickN(n, timeout)
		q := sentTo(t, rd, FindSuccessor, pos(20))
		if _, ok := n.cachedOwner(keyAt(85)); ok {
			t.Fatal("a known owner that did not answer is still known")
		}
		n.Step(reply(q, FoundSuccessor, Payload{Done: true, Owner: pos(95), Succs: []Peer{pos(99)}}))
		q = sentTo(t, n.Ready(), FindSuccessor, pos(95))
		n.Step(reply(q, FoundSuccessor, Payload{Done: true, Owner: pos(95), Pred: pos(60)}))
		if d := lookupDone(n.Ready(), id); d == nil || d.Owner.ID != pos(95).ID {
			t.Fatalf("lookup: %+v, want 95", d)
		}
	})
	t.Run("expired", func(t *testing.T) {
		n, _ := learnedVia(t)
		tickN(n, n.cfg.RangeTTL)
		if o, ok := n.cachedOwner(keyAt(55)); ok {
			t.Fatalf("a range older than RangeTTL names %v", o)
		}
	})
}

// TestKnownRangesNeverOverlap learns random runs into a small ring's
// cache and checks after each that the ranges are sorted, never overlap,
// and that cachedOwner agrees with a scan of them.
func TestKnownRangesNeverOverlap(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	n, _ := linkedNode(t)
	for round := range 2000 {
		// A run of 1-6 distinct increasing positions, from anywhere.
		start := byte(r.IntN(256))
		run := []Peer{pos(start)}
		for i := r.IntN(6) + 1; i > 0; i-- {
			next := run[len(run)-1].ID[0] + byte(r.IntN(40)+1)
			if !Between(run[len(run)-1].ID, pos(next).ID, run[0].ID) {
				break
			}
			run = append(run, pos(next))
		}
		if len(run) < 2 {
			continue
		}
		n.learnRanges(run[1], run[0], run[2:])
		rs := n.ranges
		if !slices.IsSortedFunc(rs, func(a, b knownRange) int { return cmpID(a.owner.ID, b.owner.ID) }) {
			t.Fatalf("round %d: not sorted: %v", round, rs)
		}
		for i, a := range rs {
			for j, b := range rs {
				if i != j && (BetweenRightIncl(a.start, b.owner.ID, a.owner.ID) || BetweenRightIncl(b.start, a.owner.ID, b.owner.ID)) {
					t.Fatalf("round %d: (%d, %d] and (%d, %d] overlap", round, a.start[0], a.owner.ID[0], b.start[0], b.owner.ID[0])
				}
			}
		}
		for k := range 256 {
			key := keyAt(byte(k))
			var want Peer
			for _, x := range rs {
				if BetweenRightIncl(x.start, key, x.owner.ID) {
					want = x.owner
				}
			}
			got, _ := n.cachedOwner(key)
			if got != want {
				t.Fatalf("round %d: owner of %d: %v, a scan says %v (%v)", round, k, got, want, rs)
			}
		}
		if len(rs) > maxKnownRanges {
			t.Fatalf("%d ranges", len(rs))
		}
	}
}

// TestKnownRangeClaimsChecked: an owner that claims a predecessor, or
// successors, such that a range would hold a node this node knows is not
// believed, up to that range; its confirmation still ends the lookup, as it
// did before there was a cache.
func TestKnownRangeClaimsChecked(t *testing.T) {
	t.Run("predecessor", func(t *testing.T) {
		n, _ := linkedNode(t) // knows 200 250 20
		id := n.Lookup(keyAt(30))
		path := sentTo(t, n.Ready(), FindSuccessor, pos(20))
		n.Step(reply(path, FoundSuccessor, Payload{Done: true, Owner: pos(40)}))
		q := sentTo(t, n.Ready(), FindSuccessor, pos(40))
		// (10, 40] would hold 20.
		n.Step(reply(q, FoundSuccessor, Payload{Done: true, Owner: pos(40), Pred: pos(10), Succs: []Peer{pos(50)}}))
		if d := lookupDone(n.Ready(), id); d == nil || d.Owner.ID != pos(40).ID {
			t.Fatalf("lookup: %+v", d)
		}
		if len(n.ranges) != 0 {
			t.Fatalf("learned %v from a claim that holds a known node", n.ranges)
		}
	})
	t.Run("successors", func(t *testing.T) {
		n, _ := linkedNode(t)
		n.learnRanges(pos(40), pos(20), []Peer{pos(50), pos(210), pos(215)})
		// (50, 210] would hold this node (100) and 200: the run stops at 50.
		for _, c := range []struct {
			key   byte
			owner byte
			known bool
		}{{30, 40, true}, {45, 50, true}, {150, 0, false}, {212, 0, false}} {
			o, ok := n.cachedOwner(keyAt(c.key))
			if ok != c.known || (ok && o.ID != pos(c.owner).ID) {
				t.Errorf("key %d: %v %v, want %d %v", c.key, o, ok, c.owner, c.known)
			}
		}
	})
	t.Run("learned later", func(t *testing.T) {
		n, _ := learnedVia(t) // (60, 90] is known
		// A finger shows a node at 70: 90 may no longer be asked for 65.
		n.fingers[10] = pos(70)
		if o, ok := n.cachedOwner(keyAt(65)); ok {
			t.Fatalf("key 65: %v, though 70 is known to lie before 90", o)
		}
	})
}
