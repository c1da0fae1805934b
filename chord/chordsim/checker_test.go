package chordsim

import (
	"strings"
	"testing"

	"github.com/flownode/flownode/chord"
)

// A checker that cannot fail proves nothing. These tests feed it broken
// states — the protocol never produces them, so they are injected — and
// expect each invariant to catch its own kind of damage.

// fakeRing builds a simulation of live members named by position whose
// successor lists are given by hand (pred: the previous name in the map).
func fakeRing(t *testing.T, lists map[string][]string, preds map[string]string) *Sim {
	t.Helper()
	s := New(Options{Seed: 1})
	for name := range lists {
		n := s.node(name)
		n.start()
	}
	for name, l := range lists {
		n := s.byName[name]
		f := &fakeState{status: chord.StatusMember, r: 4}
		for _, x := range l {
			f.succs = append(f.succs, s.node(x).peer)
		}
		if p, ok := preds[name]; ok {
			f.pred = s.node(p).peer
		}
		n.fake = f
	}
	return s
}

func wantViolation(t *testing.T, v *Violation, invariant, detail string) {
	t.Helper()
	if v == nil {
		t.Fatalf("checker found nothing; want %s (%s)", invariant, detail)
	}
	if v.Invariant != invariant || !strings.Contains(v.Detail, detail) {
		t.Fatalf("checker found %v; want %s (%s)", v, invariant, detail)
	}
}

func TestCheckerAcceptsAGoodRing(t *testing.T) {
	s := fakeRing(t, map[string][]string{
		"10": {"20", "30"}, "20": {"30", "40"}, "30": {"40", "10"}, "40": {"10", "20"},
	}, map[string]string{"10": "40", "20": "10", "30": "20", "40": "30"})
	for _, n := range s.sorted {
		n.fake.r = 2
	}
	if v := s.checkRing(); v != nil {
		t.Fatal(v)
	}
	for _, n := range s.sorted {
		if v := checkOrdered(n); v != nil {
			t.Fatal(v)
		}
	}
	if err := s.idealErr(); err != nil {
		t.Fatal(err)
	}
}

func TestCheckerCatchesTwoRings(t *testing.T) {
	s := fakeRing(t, map[string][]string{
		"10": {"30"}, "30": {"10"}, // one ring
		"20": {"40"}, "40": {"20"}, // another, interleaved
	}, nil)
	wantViolation(t, s.checkRing(), "OneOrderedRing", "2 rings")
}

func TestCheckerCatchesADisorderedRing(t *testing.T) {
	// 10 → 30 → 20 → 40 → 10 visits every node but goes round twice.
	s := fakeRing(t, map[string][]string{
		"10": {"30"}, "30": {"20"}, "20": {"40"}, "40": {"10"},
	}, nil)
	wantViolation(t, s.checkRing(), "OneOrderedRing", "round the ring 2 times")
}

func TestCheckerCatchesADisorderedList(t *testing.T) {
	s := fakeRing(t, map[string][]string{
		"10": {"20", "40", "30"}, "20": {"30", "40"}, "30": {"40", "10"}, "40": {"10", "20"},
	}, nil)
	wantViolation(t, checkOrdered(s.byName["10"]), "OrderedSuccessorLists", "not strictly clockwise")
	s.byName["20"].fake.succs = []chord.Peer{s.node("30").peer, s.node("30").peer}
	wantViolation(t, checkOrdered(s.byName["20"]), "OrderedSuccessorLists", "not strictly clockwise")
	s.byName["30"].fake.succs = []chord.Peer{s.node("40").peer, s.node("30").peer}
	wantViolation(t, checkOrdered(s.byName["30"]), "OrderedSuccessorLists", "entry 1 is")
}

func TestCheckerCatchesAnAppendageThatNeverConnects(t *testing.T) {
	// 25 points into a node that is alive but in no ring: a dead end.
	s := fakeRing(t, map[string][]string{
		"10": {"20"}, "20": {"30"}, "30": {"10"}, "25": {"27"},
	}, nil)
	s.node("27").start() // alive, but joining: no list
	wantViolation(t, s.checkRing(), "OneLiveSuccessor", "no live ring member")

	// 25 does reach the ring (25 → 30), but nobody ever points to it: the
	// ring may be safe, but it is not Ideal, and the liveness check says so.
	s = fakeRing(t, map[string][]string{
		"10": {"20"}, "20": {"30"}, "30": {"10"}, "25": {"30"},
	}, map[string]string{"10": "30", "20": "10", "30": "20", "25": "20"})
	if v := s.checkRing(); v != nil {
		t.Fatalf("an appendage that reaches the ring is safe, got %v", v)
	}
	for _, n := range s.sorted {
		n.fake.r = 1
	}
	if err := s.idealErr(); err == nil || !strings.Contains(err.Error(), "20 has successors [30], want [25]") {
		t.Fatalf("Ideal accepted a ring with an appendage: %v", err)
	}
}

func TestCheckerCatchesAMisplacedKey(t *testing.T) {
	s := fakeRing(t, map[string][]string{
		"10": {"20"}, "20": {"30"}, "30": {"10"},
	}, map[string]string{"10": "30", "20": "10", "30": "20"})
	key := s.node("15").peer.ID // belongs to 20
	s.byName["30"].store.primary[key] = true
	wantViolation(t, checkPlacement(s.byName["30"]), "Placement", "outside its range")

	// After convergence: the key must be primary on its owner.
	delete(s.byName["30"].store.primary, key)
	s.byName["30"].store.replica[key] = true
	s.keys[key] = &keyRecord{}
	if err := s.keysErr(); err == nil || !strings.Contains(err.Error(), "not primary on its owner 20") {
		t.Fatalf("keysErr: %v", err)
	}
	// On its owner and somewhere else as primary: duplicated.
	s.byName["20"].store.primary[key] = true
	s.byName["10"].store.primary[key] = true
	if err := s.keysErr(); err == nil || !strings.Contains(err.Error(), "primary on 10 as well") {
		t.Fatalf("keysErr: %v", err)
	}
	// Nowhere at all: lost.
	for _, n := range s.sorted {
		delete(n.store.primary, key)
		delete(n.store.replica, key)
	}
	if err := s.keysErr(); err == nil || !strings.Contains(err.Error(), "lost") {
		t.Fatalf("keysErr: %v", err)
	}
}

func TestCheckerCatchesWrongFingersAndLookups(t *testing.T) {
	// A two-node ring that has not run fix-fingers yet.
	s := New(Options{Seed: 1})
	s.Exec(mustCmd("create 10"))
	s.Exec(mustCmd("join 20 via=10"))
	s.deliverAll()
	if err := s.fingersErr(); err == nil {
		t.Fatal("fingers that were never fixed were accepted")
	}
	// A lookup answer naming the wrong owner.
	n := s.byName["10"]
	op := s.newOp(opLookup, n, s.node("15").peer.ID)
	n.lookups[999] = op.id
	s.checkLookups = true
	s.lookupDone(n, chord.LookupDone{ReqID: 999, Key: op.key, Owner: n.peer})
	wantViolation(t, s.Violation(), "Lookups", "oracle says 20")
}

func mustCmd(line string) Cmd {
	c, err := ParseCmd(line)
	if err != nil {
		panic(err)
	}
	return c
}
