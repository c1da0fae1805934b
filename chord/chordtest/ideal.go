package chordtest

import (
	"fmt"
	"slices"

	"github.com/flownode/flownode/chord"
)

// View is what the ring checks need to know of one node, whatever it was
// read from: a chord.State (FromState), a simulated node, or the JSON of GET
// /api/v1/node.
type View struct {
	// Self is the node's ID.
	Self chord.ID
	// Status is where the node stands, as chord.Status's String names it
	// ("member", "joining", ...); only a member can be Ideal.
	Status string
	// Pred is the node's predecessor; the zero ID if it has none.
	Pred chord.ID
	// Succs is the node's successor list, nearest first.
	Succs []chord.ID
	// R is the successor-list length the node keeps now (chord.State.R:
	// Config.R, or the adaptive r of about 2·log2 N clamped to [MinR, MaxR]).
	// 0 means not known (GET /api/v1/node does not show it); see IdealErr.
	R int
	// Fingers is the finger table: chord.Bits entries, the zero ID where
	// unknown. Only FingersErr reads it.
	Fingers []chord.ID
}

// FromState makes the View of a node's State.
func FromState(s chord.State) View {
	return View{Self: s.Self.ID, Status: s.Status, Pred: s.Pred.ID, Succs: peerIDs(s.Succs), R: s.R, Fingers: peerIDs(s.Fingers)}
}

// FromStates makes the Views of node states, in the same order.
func FromStates(states []chord.State) []View {
	out := make([]View, len(states))
	for i, s := range states {
		out[i] = FromState(s)
	}
	return out
}

// MinSuccessors is the shortest successor list a node of an Ideal ring of n
// nodes keeps when its r is not known: r is at least chord.Config's MinR
// (default 4), and a list never holds more than the n-1 other nodes.
func MinSuccessors(n int) int { return min(chord.DefaultConfig(chord.Peer{}).MinR, n-1) }

// ShortName names a node by the first 8 hex characters of its ID, and the
// zero ID as "none" (as chord.Peer's String does). It is what the checks
// use when given no name function.
func ShortName(id chord.ID) string { return chord.Peer{ID: id}.String() }

// IdealErr reports why the ring made of these nodes is not Ideal
// (docs/chord.md, invariant 5), or nil. The views are the live nodes, and
// the oracle is their IDs in ring order. Ideal is: every node a member; its
// successor list the true next R nodes (in a ring of one node: just itself);
// its predecessor the true previous node (not checked in a ring of one).
//
// A view with R = 0 (r not known) passes if its list is the true next nodes,
// at least MinSuccessors(N) and at most N-1 of them (a ring of one: just
// itself).
//
// Nodes are checked in the order given, and the first fault is reported.
// Errors name nodes by name (nil: ShortName).
func IdealErr(views []View, name func(chord.ID) string) error {
	if name == nil {
		name = ShortName
	}
	o := oracleOf(views)
	for _, v := range views {
		i := o.Index(v.Self)
		if v.Status != chord.StatusMember.String() {
			return fmt.Errorf("%s is %s", name(v.Self), v.Status)
		}
		var want []chord.ID
		switch {
		case len(o) == 1:
			want = []chord.ID{v.Self}
		case v.R > 0:
			want = o.Next(i, v.R)
		case len(v.Succs) < MinSuccessors(len(o)):
			return fmt.Errorf("%s has %d successors %v, want at least %d", name(v.Self), len(v.Succs), names(v.Succs, name), MinSuccessors(len(o)))
		case len(v.Succs) > len(o)-1:
			return fmt.Errorf("%s has %d successors %v in a ring of %d", name(v.Self), len(v.Succs), names(v.Succs, name), len(o))
		default:
			want = o.Next(i, len(v.Succs))
		}
		if !slices.Equal(v.Succs, want) {
			return fmt.Errorf("%s has successors %v, want %v", name(v.Self), names(v.Succs, name), names(want, name))
		}
		if len(o) > 1 && v.Pred != o.Prev(i) {
			return fmt.Errorf("%s has predecessor %s, want %s", name(v.Self), name(v.Pred), name(o.Prev(i)))
		}
	}
	return nil
}

// FingersErr reports a finger that is not the true successor of its start
// (docs/chord.md, invariant 6), or nil. Every view must carry its whole
// finger table (chord.Bits entries). Errors name nodes by name (nil:
// ShortName).
func FingersErr(views []View, name func(chord.ID) string) error {
	if name == nil {
		name = ShortName
	}
	o := oracleOf(views)
	for _, v := range views {
		if len(v.Fingers) != chord.Bits {
			return fmt.Errorf("%s has %d fingers, want %d", name(v.Self), len(v.Fingers), chord.Bits)
		}
		for i, f := range v.Fingers {
			if want := o.Successor(v.Self.AddPow2(i)); f != want {
				return fmt.Errorf("%s finger %d is %s, want %s", name(v.Self), i, name(f), name(want))
			}
		}
	}
	return nil
}

// OracleOf returns the oracle of the ring the views make.
func OracleOf(views []View) Oracle { return oracleOf(views) }

func oracleOf(views []View) Oracle {
	ids := make([]chord.ID, len(views))
	for i, v := range views {
		ids[i] = v.Self
	}
	return NewOracle(ids)
}

func peerIDs(ps []chord.Peer) []chord.ID {
	var out []chord.ID
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func names(ids []chord.ID, name func(chord.ID) string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = name(id)
	}
	return out
}
