package placement

import (
	"testing"

	"github.com/flownode/flownode/chord"
)

func peer(b byte) chord.Peer { return chord.Peer{ID: chord.ID{b}, Addr: string(rune('a' + b))} }

func TestOwnAndReplicas(t *testing.T) {
	self := peer(5)
	cases := []struct {
		name     string
		st       chord.State
		own      Range
		ok       bool
		replicas []byte
	}{
		{"alone", chord.State{Self: self, Succs: []chord.Peer{self}}, Range{self.ID, self.ID}, true, nil},
		{"no predecessor yet", chord.State{Self: self, Succs: []chord.Peer{peer(7), peer(9)}}, Range{}, false, []byte{7, 9}},
		{"ring", chord.State{Self: self, Pred: peer(3), Succs: []chord.Peer{peer(7), peer(9), peer(1), peer(3)}}, Range{peer(3).ID, self.ID}, true, []byte{7, 9}},
		{"two nodes", chord.State{Self: self, Pred: peer(7), Succs: []chord.Peer{peer(7), self}}, Range{peer(7).ID, self.ID}, true, []byte{7}},
		{"duplicates and zeros skipped", chord.State{Self: self, Pred: peer(3), Succs: []chord.Peer{peer(7), peer(7), {}, self, peer(9)}}, Range{peer(3).ID, self.ID}, true, []byte{7, 9}},
	}
	for _, c := range cases {
		own, ok := Own(c.st)
		if own != c.own || ok != c.ok {
			t.Errorf("%s: Own = %v %v, want %v %v", c.name, own, ok, c.own, c.ok)
		}
		reps := Replicas(c.st, 3)
		if len(reps) != len(c.replicas) {
			t.Fatalf("%s: Replicas = %v, want %v", c.name, reps, c.replicas)
		}
		for i, r := range reps {
			if r.ID != peer(c.replicas[i]).ID {
				t.Errorf("%s: replica %d is %s, want %d", c.name, i, r.ID.Short(), c.replicas[i])
			}
		}
	}
	if r := (Range{peer(9).ID, peer(2).ID}); !r.Contains(peer(1).ID) || r.Contains(peer(5).ID) || !r.Contains(peer(2).ID) || r.Contains(peer(9).ID) {
		t.Error("a range that wraps around zero")
	}
	if got := Replicas(chord.State{Self: self, Succs: []chord.Peer{peer(7)}}, 1); len(got) != 0 {
		t.Errorf("k=1 has no replicas: %v", got)
	}
}

func TestSurplus(t *testing.T) {
	self := peer(5)
	st := chord.State{Self: self, Pred: peer(3), Succs: []chord.Peer{peer(7), peer(9)}}
	assigned := []Range{{peer(1).ID, peer(3).ID}} // this node holds copies of (1, 3]
	for _, c := range []struct {
		pos  byte
		want bool
	}{{4, false}, {5, false}, {2, false}, {3, false}, {1, true}, {6, true}, {200, true}} {
		if got := Surplus(st, assigned, chord.ID{c.pos}); got != c.want {
			t.Errorf("Surplus at %d = %v, want %v", c.pos, got, c.want)
		}
	}
	if Surplus(chord.State{Self: self, Succs: []chord.Peer{peer(7)}}, nil, chord.ID{200}) {
		t.Error("a node that does not know its range dropped a copy")
	}
	if Surplus(chord.State{Self: self, Succs: []chord.Peer{self}}, nil, chord.ID{200}) {
		t.Error("a node alone dropped a copy")
	}
}

// TestMayOwnAndAgrees: a peer's claim to a position or a range is refused
// when the view names a live node that would own it instead.
func TestMayOwnAndAgrees(t *testing.T) {
	self := peer(5)
	st := chord.State{Self: self, Pred: peer(3), Succs: []chord.Peer{peer(7), peer(9)},
		Fingers: []chord.Peer{peer(7), peer(20), {}, peer(30)}, Dead: []chord.ID{peer(30).ID}}
	for _, c := range []struct {
		owner, pos byte
		want       bool
	}{
		{3, 2, true},    // the predecessor's own range, as far as known
		{3, 200, true},  // (20, 3] wraps: 30 is dead, so nothing known lies there
		{3, 4, false},   // self (5) owns 4
		{9, 6, false},   // 7 owns 6
		{9, 8, true},    //
		{9, 7, false},   // 7 owns itself
		{7, 7, true},    //
		{20, 25, false}, // 30 is dead, but 3 lies between
		{20, 15, true},
	} {
		if got := MayOwn(st, chord.ID{c.owner}, chord.ID{c.pos}); got != c.want {
			t.Errorf("MayOwn(%d, %d) = %v, want %v", c.owner, c.pos, got, c.want)
		}
	}
	for _, c := range []struct {
		owner    byte
		from, to byte
		want     bool
	}{
		{9, 7, 9, true},
		{9, 8, 9, true},  // a smaller range than known is harmless
		{9, 5, 9, false}, // holds 7
		{9, 9, 9, false}, // the whole ring
		{9, 7, 8, false}, // does not end at the owner
		{3, 20, 3, true}, // 30 is dead
	} {
		if got := Agrees(st, chord.ID{c.owner}, Range{chord.ID{c.from}, chord.ID{c.to}}); got != c.want {
			t.Errorf("Agrees(%d, (%d, %d]) = %v, want %v", c.owner, c.from, c.to, got, c.want)
		}
	}
}
