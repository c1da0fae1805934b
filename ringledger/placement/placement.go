// Package placement decides where the entries of the distributed ledger live
// on a Chord ring, from what one node sees of the ring (its chord.State). It is
// pure (no I/O, no clock), so that the shipped ledger (package ringledger) and
// the simulator (chord/chordsim), which checks the placement invariants of
// docs/chord.md after every simulated step, run the very same decisions.
//
// An entry at position x belongs to successor(x), its owner, which holds it as
// primary; the owner's first k-1 distinct successors hold copies. After every
// ring change a node owns Own(st) and copies it to Replicas(st, k).
package placement

import (
	"slices"

	"github.com/flownode/flownode/chord"
)

// Range is the ring range (From, To]; (a, a] is the whole ring.
type Range struct{ From, To chord.ID }

// Contains reports whether x lies in r.
func (r Range) Contains(x chord.ID) bool { return chord.BetweenRightIncl(r.From, x, r.To) }

// Own is the range (pred, self] a node owns. ok is false while it does not
// know its predecessor: it then owns nothing new (and keeps what it holds). A
// node alone owns the whole ring.
func Own(st chord.State) (r Range, ok bool) {
	if Alone(st) {
		return Range{From: st.Self.ID, To: st.Self.ID}, true
	}
	if st.Pred.IsZero() {
		return Range{}, false
	}
	return Range{From: st.Pred.ID, To: st.Self.ID}, true
}

// Alone reports whether the node is a ring of one: no successor but itself.
func Alone(st chord.State) bool {
	for _, s := range st.Succs {
		if s.ID != st.Self.ID {
			return false
		}
	}
	return true
}

// Replicas are the nodes that hold copies of what this node owns: its first
// k-1 distinct successors other than itself (fewer in a ring of fewer than k
// nodes, or while its successor list is short).
func Replicas(st chord.State, k int) []chord.Peer {
	out := make([]chord.Peer, 0, max(k-1, 0))
	seen := map[chord.ID]bool{st.Self.ID: true}
	for _, s := range st.Succs {
		if len(out) >= k-1 {
			break
		}
		if !seen[s.ID] && !s.IsZero() {
			seen[s.ID] = true
			out = append(out, s)
		}
	}
	return out
}

// Surplus reports whether a node may drop its copy at pos: it knows the
// range it owns and pos lies outside it, and outside every range an owner has
// recently named it a replica holder of (assigned). The caller still makes
// sure that the entry's owner holds it before dropping (ringledger's repair),
// so that a surplus copy is never the last one.
func Surplus(st chord.State, assigned []Range, pos chord.ID) bool {
	own, ok := Own(st)
	if !ok || own.Contains(pos) {
		return false
	}
	for _, r := range assigned {
		if r.Contains(pos) {
			return false
		}
	}
	return true
}

// known lists the live nodes a view names: the node itself, its predecessor,
// successors and fingers, less those it knows dead.
func known(st chord.State) []chord.ID {
	var out []chord.ID
	add := func(p chord.Peer) {
		if !p.IsZero() && !slices.Contains(st.Dead, p.ID) && !slices.Contains(out, p.ID) {
			out = append(out, p.ID)
		}
	}
	add(st.Self)
	add(st.Pred)
	for _, p := range st.Succs {
		add(p)
	}
	for _, p := range st.Fingers {
		add(p)
	}
	return out
}

// MayOwn reports whether owner may be successor(pos) as far as st shows the
// ring: no other live node the view names lies in [pos, owner). It is the
// check on a peer that claims an entry is its own: a view that names fewer
// nodes (fingers, not the whole ring) rules out less, never more.
func MayOwn(st chord.State, owner, pos chord.ID) bool {
	return NewView(st).MayOwn(owner, pos)
}

// View is the live nodes a ring state names, worked out once for the many
// checks of one message (a state names each node several times over: in
// its successor list and in many fingers).
type View struct{ known []chord.ID }

// NewView returns st's view of the ring.
func NewView(st chord.State) View { return View{known(st)} }

// MayOwn is MayOwn of the state v was made from.
func (v View) MayOwn(owner, pos chord.ID) bool {
	if pos == owner {
		return true
	}
	for _, x := range v.known {
		if x != owner && chord.BetweenLeftIncl(pos, x, owner) {
			return false
		}
	}
	return true
}

// Agrees reports whether r may be the range owner owns as far as st shows the
// ring: it ends at owner and holds no other live node the view names (its
// start may be owner's predecessor, or any point after it).
func Agrees(st chord.State, owner chord.ID, r Range) bool {
	if r.To != owner {
		return false
	}
	for _, x := range known(st) {
		if x != owner && r.Contains(x) {
			return false
		}
	}
	return true
}
