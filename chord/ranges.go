package chord

import (
	"cmp"
	"slices"
)

// Known ranges: who owns which keys, as owners told this node in their
// answers to its lookups. A lookup ends by asking the owner it found, and the
// owner's answer carries its predecessor and its successor list: a run of
// consecutive nodes, each owning the keys between the one before it and
// itself. Remembering that run lets the next lookup for a key in it ask the
// owner at once instead of routing to it first: one round trip instead of two
// or three.
//
// A range is a peer's claim, and is checked as every range claim is (the
// distributed ledger's placement.Agrees): it is kept, and later used, only
// while no live node this node knows (itself, its predecessor, successors
// and fingers) lies inside it. So a peer that lies about its predecessor or
// its successors can at most claim the keys between two nodes this node
// knows, as it could by lying about its range to the ledger.
//
// Nothing in the cache is taken as an answer. It only names whom to ask: the
// named node must still confirm that it owns the key, exactly as an owner
// named by a node on the path must (confirm in lookup.go), and when it does
// not, the lookup routes on from the node's own tables as before. So a stale
// entry costs a round trip (a node joined in between: the named node names
// it) or a request timeout (the named node is dead, and is then forgotten),
// never a wrong owner. Only user lookups use the cache; joins, fingers and
// probes route as the protocol says, so that the ring's own tables never
// depend on it.

// maxKnownRanges bounds the cache: about 100 bytes an entry, so a gateway
// spends 25 KiB on it, and a ring of up to that many nodes is covered whole.
const maxKnownRanges = 256

// knownRange says that owner owns (start, owner.ID], as of the tick it was
// learned.
type knownRange struct {
	start   ID
	owner   Peer
	expires uint64 // first tick it is no longer used
}

// knownRanges holds ranges sorted by owner ID. They never overlap: a range
// learned later replaces those it overlaps.
type knownRanges []knownRange

// cachedOwner returns the node whose known range holds key, if it is still
// fresh and not known dead.
func (n *Node) cachedOwner(key ID) (Peer, bool) {
	rs := n.ranges
	if len(rs) == 0 {
		return Peer{}, false
	}
	i, _ := slices.BinarySearchFunc(rs, key, func(r knownRange, k ID) int { return cmpID(r.owner.ID, k) })
	if i == len(rs) {
		i = 0 // past the largest owner: the range wraps around zero
	}
	r := rs[i]
	if !BetweenRightIncl(r.start, key, r.owner.ID) || n.now >= r.expires || n.isDead(r.owner.ID) ||
		n.viewContradicts(r.start, r.owner.ID) {
		return Peer{}, false
	}
	return r.owner, true
}

// viewContradicts reports whether a live node this node knows lies inside
// (start, owner): then owner cannot own (start, owner]. Nodes it knows
// nothing of rule out nothing.
func (n *Node) viewContradicts(start, owner ID) bool {
	inside := func(p Peer) bool {
		return !p.IsZero() && p.ID != owner && Between(start, p.ID, owner) && !n.isDead(p.ID)
	}
	if inside(n.self) || inside(n.pred) {
		return true
	}
	for _, s := range n.succ {
		if inside(s) {
			return true
		}
	}
	for i := range n.fingers {
		if (i == 0 || n.fingers[i].ID != n.fingers[i-1].ID) && inside(n.fingers[i]) {
			return true
		}
	}
	return false
}

// learnRanges takes an owner's own answer to a lookup: its predecessor, and
// its successor list. The run pred, owner, succs... is kept up to the first
// entry out of clockwise order, dead, zero, this node (whose own range it
// knows better), or whose range this node's view contradicts. An answer that
// only repeats what is known refreshes it.
func (n *Node) learnRanges(owner, pred Peer, succs []Peer) {
	if owner.ID == n.self.ID || pred.IsZero() || pred.ID == owner.ID {
		return
	}
	if i, ok := n.rangeOf(owner.ID); ok && n.ranges[i].start == pred.ID && n.ranges[i].owner.Addr == owner.Addr {
		n.ranges[i].expires = n.now + uint64(n.cfg.RangeTTL)
		return
	}
	run := make([]knownRange, 0, min(len(succs)+1, maxKnownRanges))
	start := pred.ID
	for _, p := range append([]Peer{owner}, succs...) {
		if len(run) == cap(run) || p.IsZero() || p.ID == n.self.ID || n.isDead(p.ID) ||
			!Between(start, p.ID, pred.ID) || n.viewContradicts(start, p.ID) {
			break
		}
		run = append(run, knownRange{start: start, owner: p, expires: n.now + uint64(n.cfg.RangeTTL)})
		start = p.ID
	}
	n.putRanges(pred.ID, start, run)
}

// putRanges replaces every known range that overlaps (from, to] with run,
// which covers it, and keeps the cache within maxKnownRanges.
func (n *Node) putRanges(from, to ID, run []knownRange) {
	if len(run) == 0 {
		return
	}
	kept := n.ranges[:0]
	for _, r := range n.ranges {
		// Two ranges overlap when the end of one lies inside the other
		// (see TestKnownRangesNeverOverlap).
		if BetweenRightIncl(from, r.owner.ID, to) || Between(r.start, to, r.owner.ID) || n.now >= r.expires {
			continue
		}
		kept = append(kept, r)
	}
	n.ranges = append(kept, run...)
	slices.SortFunc(n.ranges, func(a, b knownRange) int { return cmpID(a.owner.ID, b.owner.ID) })
	if len(n.ranges) > maxKnownRanges {
		n.evictRanges()
	}
}

// evictRanges drops the ranges that expire first until the cache fits.
func (n *Node) evictRanges() {
	byAge := slices.Clone(n.ranges)
	slices.SortStableFunc(byAge, func(a, b knownRange) int { return cmp.Compare(b.expires, a.expires) })
	n.ranges = byAge[:maxKnownRanges]
	slices.SortFunc(n.ranges, func(a, b knownRange) int { return cmpID(a.owner.ID, b.owner.ID) })
}

// rangeOf finds the known range of the node with this ID.
func (n *Node) rangeOf(id ID) (int, bool) {
	return slices.BinarySearchFunc(n.ranges, id, func(r knownRange, k ID) int { return cmpID(r.owner.ID, k) })
}

// forgetRange drops the known range of the node with this ID: it died, did
// not answer, or said it does not own what the cache said it does.
func (n *Node) forgetRange(id ID) {
	if i, ok := n.rangeOf(id); ok {
		n.ranges = slices.Delete(n.ranges, i, i+1)
	}
}
