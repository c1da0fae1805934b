package chordtest_test

import (
	"strings"
	"testing"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/chord/chordtest"
)

func id(b byte) chord.ID { return chord.ID{b} }

// ideal returns the Ideal views of a ring of the given first bytes (in
// ring order), each keeping r successors.
func ideal(r int, bs ...byte) []chordtest.View {
	vs := make([]chordtest.View, len(bs))
	for i, b := range bs {
		v := chordtest.View{Self: id(b), Status: "member", R: r, Pred: id(bs[(i+len(bs)-1)%len(bs)])}
		for j := 1; j <= r && j < len(bs); j++ {
			v.Succs = append(v.Succs, id(bs[(i+j)%len(bs)]))
		}
		if len(bs) == 1 {
			v.Succs, v.Pred = []chord.ID{v.Self}, chord.ID{}
		}
		vs[i] = v
	}
	return vs
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("got %v, want Ideal", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an error with %q", err, want)
	}
}

func TestIdealErr(t *testing.T) {
	wantErr(t, chordtest.IdealErr(ideal(2, 10, 20, 30, 40), nil), "")
	wantErr(t, chordtest.IdealErr(ideal(4, 10, 20, 30), nil), "") // r > N-1: the N-1 others
	wantErr(t, chordtest.IdealErr(ideal(4, 10), nil), "")

	vs := ideal(2, 10, 20, 30, 40)
	vs[1].Status = "joining"
	wantErr(t, chordtest.IdealErr(vs, nil), "14000000 is joining")

	vs = ideal(2, 10, 20, 30, 40)
	vs[1].Succs = []chord.ID{id(40), id(10)}
	wantErr(t, chordtest.IdealErr(vs, nil), "14000000 has successors [28000000 0a000000], want [1e000000 28000000]")

	vs = ideal(2, 10, 20, 30, 40)
	vs[2].Succs = vs[2].Succs[:1] // shorter than its r
	wantErr(t, chordtest.IdealErr(vs, nil), "has successors [28000000], want [28000000 0a000000]")

	vs = ideal(2, 10, 20, 30, 40)
	vs[3].Pred = chord.ID{}
	wantErr(t, chordtest.IdealErr(vs, nil), "28000000 has predecessor none, want 1e000000")

	// In a ring of one the list is the node itself; its predecessor is
	// not checked.
	vs = ideal(4, 10)
	vs[0].Pred = id(10)
	wantErr(t, chordtest.IdealErr(vs, nil), "")
	vs[0].Succs = nil
	wantErr(t, chordtest.IdealErr(vs, nil), "has successors [], want [0a000000]")

	// Errors name nodes as asked.
	name := func(x chord.ID) string { return "n" + string(rune('0'+x[0]/10)) }
	vs = ideal(1, 10, 20, 30)
	vs[0].Pred = id(20)
	wantErr(t, chordtest.IdealErr(vs, name), "n1 has predecessor n2, want n3")
}

func TestIdealErrUnknownR(t *testing.T) {
	// r not known: the true next nodes, at least min(4, N-1), at most N-1.
	vs := ideal(5, 1, 2, 3, 4, 5, 6, 7, 8)
	for i := range vs {
		vs[i].R = 0
	}
	wantErr(t, chordtest.IdealErr(vs, nil), "")
	vs[2].Succs = vs[2].Succs[:4]
	wantErr(t, chordtest.IdealErr(vs, nil), "")
	vs[2].Succs = vs[2].Succs[:3]
	wantErr(t, chordtest.IdealErr(vs, nil), "03000000 has 3 successors [04000000 05000000 06000000], want at least 4")

	vs = ideal(3, 1, 2, 3)
	for i := range vs {
		vs[i].R = 0
	}
	wantErr(t, chordtest.IdealErr(vs, nil), "")
	vs[0].Succs = []chord.ID{id(2), id(3), id(1)}
	wantErr(t, chordtest.IdealErr(vs, nil), "01000000 has 3 successors [02000000 03000000 01000000] in a ring of 3")
	vs[0].Succs = []chord.ID{id(3), id(2)}
	wantErr(t, chordtest.IdealErr(vs, nil), "01000000 has successors [03000000 02000000], want [02000000 03000000]")

	vs = ideal(1, 9)
	vs[0].R = 0
	wantErr(t, chordtest.IdealErr(vs, nil), "")
}

func TestFingersErr(t *testing.T) {
	ids := []chord.ID{id(0x10), id(0x80), id(0xc0)}
	o := chordtest.NewOracle(ids)
	var vs []chordtest.View
	for _, x := range ids {
		v := chordtest.View{Self: x}
		for i := range chord.Bits {
			v.Fingers = append(v.Fingers, o.Successor(x.AddPow2(i)))
		}
		vs = append(vs, v)
	}
	wantErr(t, chordtest.FingersErr(vs, nil), "")
	vs[1].Fingers[chord.Bits-1] = chord.ID{}
	wantErr(t, chordtest.FingersErr(vs, nil), "80000000 finger 159 is none, want 10000000")
	vs[1].Fingers = vs[1].Fingers[:3]
	wantErr(t, chordtest.FingersErr(vs, nil), "80000000 has 3 fingers, want 160")
}

func TestOracle(t *testing.T) {
	in := []chord.ID{id(30), id(10), id(20)}
	o := chordtest.NewOracle(in)
	if in[0] != id(30) {
		t.Fatal("NewOracle sorted its argument")
	}
	for k, want := range map[byte]byte{5: 10, 10: 10, 11: 20, 30: 30, 31: 10} {
		if got := o.Successor(id(k)); got != id(want) {
			t.Errorf("Successor(%d) = %v, want %d", k, got.Short(), want)
		}
	}
	if o.Index(id(20)) != 1 || o.Index(id(21)) != -1 {
		t.Errorf("Index: %d %d", o.Index(id(20)), o.Index(id(21)))
	}
	if got := o.Next(2, 5); len(got) != 2 || got[0] != id(10) || got[1] != id(20) {
		t.Errorf("Next(2, 5) = %v", got)
	}
	if o.Prev(0) != id(30) {
		t.Errorf("Prev(0) = %v", o.Prev(0).Short())
	}
	if (chordtest.Oracle{}).Successor(id(1)) != (chord.ID{}) {
		t.Error("an empty oracle's Successor is not the zero ID")
	}
}
