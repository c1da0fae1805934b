package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// pos returns the ring position with value v, which may be negative (counted
// down from 2^160).
func pos(v int64) [20]byte {
	n := big.NewInt(v)
	if v < 0 {
		n.Add(n, ringSize)
	}
	var p [20]byte
	n.FillBytes(p[:])
	return p
}

var ringSize = new(big.Int).Lsh(big.NewInt(1), 160)

func bigPos(p [20]byte) *big.Int { return new(big.Int).SetBytes(p[:]) }

// inRangeRef is the definition of the ring range (from, to], written
// independently of ringSpans.
func inRangeRef(from, to, p [20]byte) bool {
	f, t, x := bigPos(from), bigPos(to), bigPos(p)
	switch f.Cmp(t) {
	case -1:
		return x.Cmp(f) > 0 && x.Cmp(t) <= 0
	case 1:
		return x.Cmp(f) > 0 || x.Cmp(t) <= 0
	}
	return true
}

// edgePositions are the ring's edges: 0, max and their neighbours, the middle
// and its neighbours.
func edgePositions() [][20]byte {
	mid := [20]byte{0x80}
	below := mid
	for i := range below {
		below[i]--
		if below[i] != 0xff {
			break
		}
	}
	// below = 0x7f ff … ff is mid-1; succ gives mid+1.
	return [][20]byte{pos(0), pos(1), pos(2), below, mid, succ(mid), pos(-2), pos(-1)}
}

func TestSucc(t *testing.T) {
	for _, v := range []int64{0, 1, 254, 255, 256, 65535, 1 << 40, -3, -2} {
		if got, want := bigPos(succ(pos(v))), new(big.Int).Add(bigPos(pos(v)), big.NewInt(1)); got.Cmp(want) != 0 {
			t.Errorf("succ(%d) = %v, want %v", v, got, want)
		}
	}
	if ringMax != pos(-1) {
		t.Fatal("ringMax is not 2^160-1")
	}
}

// TestRingSpans checks ringSpans for every pair of edge positions: the spans
// are non-empty, cover exactly as many positions as the range holds, agree
// with the definition on every probe, and are in walk order.
func TestRingSpans(t *testing.T) {
	edges := edgePositions()
	probes := slices.Clone(edges)
	for _, e := range edges {
		probes = append(probes, succ(e)) // wraps to 0 past max: still a valid probe
	}
	probes = append(probes, pos(1<<40), pos(-(1 << 40)), [20]byte{0x40}, [20]byte{0xc0, 1})
	for _, from := range edges {
		for _, to := range edges {
			spans := ringSpans(from, to)
			if len(spans) == 0 || len(spans) > 2 {
				t.Fatalf("(%x, %x]: %d spans", from, to, len(spans))
			}
			size := new(big.Int)
			for i, sp := range spans {
				if bytes.Compare(sp.lo[:], sp.hi[:]) > 0 {
					t.Fatalf("(%x, %x]: empty span %d", from, to, i)
				}
				size.Add(size, new(big.Int).Sub(bigPos(sp.hi), bigPos(sp.lo)))
				size.Add(size, big.NewInt(1))
			}
			// The range holds to-from positions modulo 2^160, all 2^160 when from == to.
			want := new(big.Int).Sub(bigPos(to), bigPos(from))
			want.Mod(want, ringSize)
			if want.Sign() == 0 {
				want.Set(ringSize)
			}
			if size.Cmp(want) != 0 {
				t.Fatalf("(%x, %x]: spans cover %v positions, want %v", from, to, size, want)
			}
			// The first span starts just after from; a second one starts at 0
			// and comes after a first one that ends at max.
			if spans[0].lo != succ(from) && !(from == ringMax && spans[0].lo == [20]byte{}) {
				t.Fatalf("(%x, %x]: walk starts at %x", from, to, spans[0].lo)
			}
			if len(spans) == 2 && (spans[0].hi != ringMax || spans[1].lo != [20]byte{}) {
				t.Fatalf("(%x, %x]: spans %x", from, to, spans)
			}
			for _, p := range probes {
				in := false
				for _, sp := range spans {
					if bytes.Compare(p[:], sp.lo[:]) >= 0 && bytes.Compare(p[:], sp.hi[:]) <= 0 {
						if in {
							t.Fatalf("(%x, %x]: %x in two spans", from, to, p)
						}
						in = true
					}
				}
				if in != inRangeRef(from, to, p) {
					t.Fatalf("(%x, %x]: %x in spans %v, by definition %v", from, to, p, in, !in)
				}
			}
		}
	}
}

// ringOrder sorts entries by walk order of a range starting after from:
// positions after from first, then the wrapped ones, each by full key.
func ringOrder(from [20]byte, a, b []byte) int {
	aw, bw := bytes.Compare(a[:20], from[:]) <= 0, bytes.Compare(b[:20], from[:]) <= 0
	if aw != bw {
		if aw {
			return 1
		}
		return -1
	}
	return bytes.Compare(a, b)
}

type ringFixture struct {
	keys     [][]byte // key(20) txID(32) of each key-index entry
	pointers [][]byte // txID(32) key(20) of each pointer
}

func (f *ringFixture) wantKeys(from, to [20]byte) [][]byte {
	var out [][]byte
	for _, e := range f.keys {
		if inRangeRef(from, to, [20]byte(e[:20])) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b []byte) int { return ringOrder(from, a, b) })
	return out
}

func (f *ringFixture) wantPointers(from, to [20]byte) [][]byte {
	var out [][]byte
	for _, e := range f.pointers {
		if inRangeRef(from, to, [20]byte(e[:20])) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b []byte) int { return ringOrder(from, a[:32], b[:32]) })
	return out
}

func (f *ringFixture) wantDigest(from, to [20]byte) Digest {
	var d Digest
	for _, e := range f.wantKeys(from, to) {
		d.Records++
		d.add(e)
	}
	for _, e := range f.wantPointers(from, to) {
		d.Pointers++
		d.add(e[:32])
	}
	return d
}

func gotKeys(t *testing.T, r *Reader, from, to [20]byte) [][]byte {
	t.Helper()
	var out [][]byte
	err := r.EachKeyInRange(from, to, func(key [20]byte, id [32]byte) error {
		out = append(out, append(key[:], id[:]...))
		return nil
	})
	if err != nil {
		t.Fatalf("EachKeyInRange(%x, %x): %v", from, to, err)
	}
	return out
}

func gotPointers(t *testing.T, r *Reader, from, to [20]byte) [][]byte {
	t.Helper()
	var out [][]byte
	err := r.EachPointerInRange(from, to, func(id [32]byte, key [20]byte) error {
		out = append(out, append(id[:], key[:]...))
		return nil
	})
	if err != nil {
		t.Fatalf("EachPointerInRange(%x, %x): %v", from, to, err)
	}
	return out
}

// randomFixture writes n records and n pointers. Positions are random, except
// that about a quarter sit exactly on an edge position, and some share a
// position with the entry before them.
func randomFixture(t *testing.T, s *Store, rng *rand.Rand, n int) *ringFixture {
	t.Helper()
	edges := edgePositions()
	position := func(prev [20]byte) [20]byte {
		var p [20]byte
		switch x := rng.IntN(8); {
		case x < 2:
			return edges[rng.IntN(len(edges))]
		case x == 2 && prev != [20]byte{}:
			return prev
		default:
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
			return p
		}
	}
	randTx := func() [32]byte {
		var id [32]byte
		for i := range id {
			id[i] = byte(rng.Uint32())
		}
		return id
	}
	f := &ringFixture{}
	var w Write
	var prev [20]byte
	for i := range n {
		r := testRecord(i)
		r.TxID = randTx()
		r.Key = position(prev)
		prev = r.Key
		r.Value = recordValue(r.TxID)
		w.Records = append(w.Records, r)
		f.keys = append(f.keys, append(r.Key[:], r.TxID[:]...))
	}
	prev = [20]byte{}
	for range n {
		p := Pointer{TxID: randTx()}
		at := position(prev)
		prev = at
		copy(p.TxID[:20], at[:])
		for i := range p.Key {
			p.Key[i] = byte(rng.Uint32())
		}
		w.Pointers = append(w.Pointers, p)
		f.pointers = append(f.pointers, append(p.TxID[:], p.Key[:]...))
	}
	mustWrite(t, s, w)
	return f
}

// TestRangesMatchBruteForce compares the range walks and digests with a
// filter over every entry, for every pair of edge positions and of positions
// of stored entries and random ones.
func TestRangesMatchBruteForce(t *testing.T) {
	s := openLocal(t, "")
	rng := rand.New(rand.NewPCG(1, 2))
	f := randomFixture(t, s, rng, 300)

	bounds := edgePositions()
	for i := range 3 {
		bounds = append(bounds, [20]byte(f.keys[i*97][:20]), [20]byte(f.pointers[i*89][:20]))
	}
	for range 3 {
		var p [20]byte
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		bounds = append(bounds, p)
	}
	snaps, err := s.Snapshots(1)
	if err != nil {
		t.Fatal(err)
	}
	defer snaps[0].Close()
	seenKeyAtFrom, seenKeyAtTo := false, false
	for bi, from := range bounds {
		for bj, to := range bounds {
			r := &s.Reader
			if (bi+bj)%2 == 1 {
				r = &snaps[0].Reader
			}
			want := f.wantKeys(from, to)
			if got := gotKeys(t, r, from, to); !slices.EqualFunc(got, want, bytes.Equal) {
				t.Fatalf("EachKeyInRange(%x, %x): %d entries, want %d", from, to, len(got), len(want))
			}
			wantP := f.wantPointers(from, to)
			if got := gotPointers(t, r, from, to); !slices.EqualFunc(got, wantP, bytes.Equal) {
				t.Fatalf("EachPointerInRange(%x, %x): %d entries, want %d", from, to, len(got), len(wantP))
			}
			d, err := r.RangeDigest(from, to)
			if err != nil || d != f.wantDigest(from, to) {
				t.Fatalf("RangeDigest(%x, %x) = %+v, %v; want %+v", from, to, d, err, f.wantDigest(from, to))
			}
			// Make sure the edge cases are exercised: entries exactly at from
			// and at to of a proper range.
			if from != to {
				for _, e := range f.keys {
					seenKeyAtFrom = seenKeyAtFrom || [20]byte(e[:20]) == from
					seenKeyAtTo = seenKeyAtTo || [20]byte(e[:20]) == to
				}
			}
		}
	}
	if !seenKeyAtFrom || !seenKeyAtTo {
		t.Fatal("no range had an entry exactly at from and at to")
	}
	// The whole ring, however it is named, holds everything.
	for _, b := range bounds {
		if d, _ := s.RangeDigest(b, b); d.Records != len(f.keys) || d.Pointers != len(f.pointers) {
			t.Fatalf("RangeDigest(%x, %x) = %+v: not the whole ring", b, b, d)
		}
	}
}

// TestRangeEdges pins the edge cases by hand on a few entries.
func TestRangeEdges(t *testing.T) {
	s := openLocal(t, "")
	at := map[string][20]byte{"0": pos(0), "1": pos(1), "10": pos(10), "20": pos(20), "max-1": pos(-2), "max": pos(-1)}
	var w Write
	for i, name := range []string{"0", "1", "10", "20", "max-1", "max"} {
		r := testRecord(i)
		r.Key = at[name]
		w.Records = append(w.Records, r)
		var id [32]byte
		copy(id[:], r.Key[:])
		id[31] = byte(i)
		w.Pointers = append(w.Pointers, Pointer{TxID: id, Key: r.Key})
	}
	mustWrite(t, s, w)
	names := func(from, to [20]byte) []string {
		var out []string
		if err := s.EachKeyInRange(from, to, func(key [20]byte, _ [32]byte) error {
			for n, p := range at {
				if p == key {
					out = append(out, n)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var ptrs []string
		if err := s.EachPointerInRange(from, to, func(id [32]byte, key [20]byte) error {
			if [20]byte(id[:20]) != key {
				t.Errorf("pointer %x → %x", id, key)
			}
			for n, p := range at {
				if p == key {
					ptrs = append(ptrs, n)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(out, ptrs) {
			t.Errorf("(%x, %x]: keys %v, pointers %v", from, to, out, ptrs)
		}
		return out
	}
	for _, tt := range []struct {
		from, to [20]byte
		want     []string
	}{
		{pos(1), pos(20), []string{"10", "20"}},                            // from excluded, to included
		{pos(0), pos(1), []string{"1"}},                                    // a range of one position
		{pos(1), pos(9), nil},                                              // empty
		{pos(20), pos(10), []string{"max-1", "max", "0", "1", "10"}},       // wraps
		{pos(-1), pos(10), []string{"0", "1", "10"}},                       // from == max
		{pos(10), pos(-1), []string{"20", "max-1", "max"}},                 // to == max
		{pos(-2), pos(-1), []string{"max"}},                                // the last position
		{pos(-1), pos(0), []string{"0"}},                                   // the wrap alone
		{pos(10), pos(10), []string{"20", "max-1", "max", "0", "1", "10"}}, // whole ring
		{pos(0), pos(0), []string{"1", "10", "20", "max-1", "max", "0"}},
		{pos(-1), pos(-1), []string{"0", "1", "10", "20", "max-1", "max"}},
		{pos(5), pos(5), []string{"10", "20", "max-1", "max", "0", "1"}},
	} {
		if got := names(tt.from, tt.to); !slices.Equal(got, tt.want) {
			t.Errorf("(%x, %x] = %v, want %v", tt.from, tt.to, got, tt.want)
		}
	}
}

func TestRangeEmptyStore(t *testing.T) {
	s := openLocal(t, "")
	for _, from := range edgePositions() {
		for _, to := range edgePositions() {
			if got := gotKeys(t, &s.Reader, from, to); len(got) != 0 {
				t.Fatalf("keys in an empty store: %d", len(got))
			}
			if got := gotPointers(t, &s.Reader, from, to); len(got) != 0 {
				t.Fatalf("pointers in an empty store: %d", len(got))
			}
			if d, err := s.RangeDigest(from, to); err != nil || d != (Digest{}) {
				t.Fatalf("RangeDigest = %+v, %v", d, err)
			}
		}
	}
	// Entries of the other kinds are not in any range.
	mustWrite(t, s, Write{Blocks: []Block{{Branch: pos(-1), Hash: txID(1), Value: []byte("b")}}, Meta: map[string][]byte{"m": nil}})
	if d, err := s.RangeDigest(pos(0), pos(0)); err != nil || d != (Digest{}) {
		t.Fatalf("RangeDigest = %+v, %v", d, err)
	}
}

func TestRangeStopsEarly(t *testing.T) {
	s := openLocal(t, "")
	f := randomFixture(t, s, rand.New(rand.NewPCG(3, 4)), 50)
	stop := errors.New("stop")
	from, to := [20]byte{0x10}, [20]byte{0x08} // wraps: almost the whole ring
	if len(f.wantKeys(from, to)) < 10 || len(f.wantPointers(from, to)) < 10 {
		t.Fatal("fixture too small")
	}
	calls := 0
	err := s.EachKeyInRange(from, to, func([20]byte, [32]byte) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 3 {
		t.Fatalf("EachKeyInRange: %d calls, %v", calls, err)
	}
	calls = 0
	err = s.EachPointerInRange(from, to, func([32]byte, [20]byte) error {
		calls++
		if calls == 3 {
			return stop
		}
		return nil
	})
	if err != stop || calls != 3 {
		t.Fatalf("EachPointerInRange: %d calls, %v", calls, err)
	}
	// Reads nested in the callback work, as in the Each walks.
	err = s.EachPointerInRange(from, to, func(id [32]byte, key [20]byte) error {
		got, err := s.Pointer(id)
		if err != nil || got != key {
			t.Errorf("nested Pointer(%x) = %x, %v", id, got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDigestCompares(t *testing.T) {
	a, b := openLocal(t, ""), openLocal(t, "")
	var recs []Record
	var ptrs []Pointer
	for i := range 40 {
		r := testRecord(i)
		copy(r.Key[:], r.TxID[8:]) // keys all over the ring
		recs = append(recs, r)
		ptrs = append(ptrs, Pointer{TxID: r.TxID, Key: r.Key})
	}
	// The same entries, written in different orders and groupings.
	mustWrite(t, a, Write{Records: recs, Pointers: ptrs})
	for i := len(recs) - 1; i >= 0; i-- {
		mustWrite(t, b, Write{Records: recs[i : i+1], Pointers: ptrs[i : i+1]})
	}
	ranges := [][2][20]byte{{pos(0), pos(0)}, {pos(0), [20]byte{0x80}}, {[20]byte{0x80}, [20]byte{0x40}}, {pos(-1), [20]byte{0x10}}}
	digests := func(s *Store) []Digest {
		var out []Digest
		for _, rg := range ranges {
			d, err := s.RangeDigest(rg[0], rg[1])
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, d)
		}
		return out
	}
	da := digests(a)
	if db := digests(b); !slices.Equal(da, db) {
		t.Fatalf("same entries, different digests:\n%+v\n%+v", da, db)
	}
	if da[0].Records != 40 || da[0].Pointers != 40 || da[0].Sum == ([32]byte{}) {
		t.Fatalf("whole ring digest %+v", da[0])
	}

	// One key-index entry differs: b gets record 40 at record 0's key, a gets
	// record 41 there. Same counts, different sums.
	for s, i := range map[*Store]int{a: 40, b: 41} {
		r := testRecord(i)
		r.Key = recs[0].Key
		mustWrite(t, s, Write{Records: []Record{r}})
	}
	checkDiffer := func(what string) {
		t.Helper()
		da, db := digests(a), digests(b)
		for i, rg := range ranges {
			in := inRangeRef(rg[0], rg[1], recs[0].Key)
			if da[i].Records != db[i].Records || da[i].Pointers != db[i].Pointers {
				t.Fatalf("%s: range %x: counts differ: %+v %+v", what, rg, da[i], db[i])
			}
			if (da[i].Sum != db[i].Sum) != in {
				t.Fatalf("%s: range %x (holds the entry: %v): sums %x %x", what, rg, in, da[i].Sum, db[i].Sum)
			}
		}
	}
	checkDiffer("key index")

	// Now the same for one pointer, after making the key index equal again.
	for s, i := range map[*Store]int{a: 41, b: 40} {
		r := testRecord(i)
		r.Key = recs[0].Key
		mustWrite(t, s, Write{Records: []Record{r}})
	}
	if da, db := digests(a), digests(b); !slices.Equal(da, db) {
		t.Fatal("digests differ after evening out")
	}
	var pa, pb Pointer
	copy(pa.TxID[:20], recs[0].Key[:])
	pb.TxID = pa.TxID
	pb.TxID[31] = 1
	mustWrite(t, a, Write{Pointers: []Pointer{pa}})
	mustWrite(t, b, Write{Pointers: []Pointer{pb}})
	checkDiffer("pointer")
}

func TestPointers(t *testing.T) {
	dir := t.TempDir()
	s := openLocal(t, dir)
	p := Pointer{TxID: txID(1), Key: pos(12345)}
	q := Pointer{TxID: txID(2), Key: pos(-1)}
	if _, err := s.Pointer(p.TxID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Pointer before write: %v", err)
	}
	// Twice in one write and again in the next: idempotent.
	mustWrite(t, s, Write{Pointers: []Pointer{p, q, p}})
	mustWrite(t, s, Write{Pointers: []Pointer{p}, Records: []Record{testRecord(1)}})
	check := func(s *Store) {
		t.Helper()
		for _, x := range []Pointer{p, q} {
			if got, err := s.Pointer(x.TxID); err != nil || got != x.Key {
				t.Fatalf("Pointer(%x) = %x, %v; want %x", x.TxID, got, err, x.Key)
			}
		}
		if d, err := s.RangeDigest(pos(0), pos(0)); err != nil || d.Pointers != 2 || d.Records != 1 {
			t.Fatalf("RangeDigest = %+v, %v", d, err)
		}
		if _, err := s.Pointer(txID(3)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Pointer(missing): %v", err)
		}
	}
	check(s)
	if !bytes.Equal(PointerKey(p.TxID), append([]byte{'x'}, p.TxID[:]...)) {
		t.Fatalf("PointerKey = %x", PointerKey(p.TxID))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pointer(p.TxID); !errors.Is(err, ErrClosed) {
		t.Fatalf("Pointer after Close: %v", err)
	}
	if err := s.EachPointerInRange(pos(0), pos(0), func([32]byte, [20]byte) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("EachPointerInRange after Close: %v", err)
	}
	if _, err := s.RangeDigest(pos(0), pos(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("RangeDigest after Close: %v", err)
	}
	check(openLocal(t, dir))
}

// TestLargePointerWrite writes more pointers than one transaction holds.
func TestLargePointerWrite(t *testing.T) {
	s := openLocal(t, "")
	n := min(s.maxCount, int(s.maxSize/opSize(op{key: PointerKey([32]byte{}), val: make([]byte, 20)}))) + 10
	ptrs := make([]Pointer, n)
	for i := range ptrs {
		ptrs[i] = Pointer{TxID: txID(i), Key: pos(int64(i))}
	}
	mustWrite(t, s, Write{Pointers: ptrs})
	t.Logf("%d pointers, maxCount %d maxSize %d, %d groups", n, s.maxCount, s.maxSize, s.Stats().Groups)
	if st := s.Stats(); st.Groups < 2 {
		t.Fatalf("%d pointers in %d groups", n, st.Groups)
	}
	if d, err := s.RangeDigest(pos(0), pos(0)); err != nil || d.Pointers != n {
		t.Fatalf("RangeDigest = %+v, %v; want %d pointers", d, err, n)
	}
}

func TestCorruptPointersAndRanges(t *testing.T) {
	id := txID(1)
	var at [20]byte
	copy(at[:], id[:])
	everyRange := func(s *Store) error {
		return s.EachPointerInRange(at, at, func([32]byte, [20]byte) error { return nil })
	}
	tests := []struct {
		name     string
		key, val []byte
		read     func(s *Store) error
	}{
		{"pointer value short", PointerKey(id), []byte("short"), func(s *Store) error {
			_, err := s.Pointer(id)
			return err
		}},
		{"pointer value long", PointerKey(id), make([]byte, 21), func(s *Store) error {
			_, err := s.Pointer(id)
			return err
		}},
		{"pointer value in range walk", PointerKey(id), nil, everyRange},
		{"pointer key long", append(PointerKey(id), 0), make([]byte, 20), everyRange},
		{"pointer key short", PointerKey(id)[:25], make([]byte, 20), everyRange},
		{"pointer key in digest", PointerKey(id)[:25], nil, func(s *Store) error {
			_, err := s.RangeDigest(pos(0), pos(0))
			return err
		}},
		{"key index in range walk", KeyIndexKey(at, id)[:30], nil, func(s *Store) error {
			return s.EachKeyInRange(pos(0), pos(0), func([20]byte, [32]byte) error { return nil })
		}},
		{"key index in digest", append(KeyIndexKey(at, id), 1), nil, func(s *Store) error {
			_, err := s.RangeDigest(pos(0), pos(0))
			return err
		}},
		{"key index part of a position", []byte("k\x00\x01"), nil, func(s *Store) error {
			return s.EachKeyInRange(pos(-1), [20]byte{0, 1}, func([20]byte, [32]byte) error { return nil })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openLocal(t, "")
			err := s.Raw().Update(func(txn *badger.Txn) error { return txn.Set(tt.key, tt.val) })
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.read(s); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
		})
	}
	// A corrupt entry outside the range is not read.
	s := openLocal(t, "")
	if err := s.Raw().Update(func(txn *badger.Txn) error { return txn.Set(PointerKey(id), nil) }); err != nil {
		t.Fatal(err)
	}
	if err := s.EachPointerInRange(succ(at), pos(-1), func([32]byte, [20]byte) error { return nil }); err != nil {
		t.Fatalf("range without the corrupt entry: %v", err)
	}
}

// The digest is over the key without its prefix, as documented.
func TestDigestDefinition(t *testing.T) {
	s := openLocal(t, "")
	r := testRecord(1)
	p := Pointer{TxID: txID(2), Key: r.Key}
	mustWrite(t, s, Write{Records: []Record{r}, Pointers: []Pointer{p}})
	want := sha256.Sum256(KeyIndexKey(r.Key, r.TxID)[1:])
	h := sha256.Sum256(p.TxID[:])
	for i := range want {
		want[i] ^= h[i]
	}
	if d, err := s.RangeDigest(pos(7), pos(7)); err != nil || d != (Digest{Records: 1, Pointers: 1, Sum: want}) {
		t.Fatalf("RangeDigest = %+v, %v; want sum %x", d, err, want)
	}
}
