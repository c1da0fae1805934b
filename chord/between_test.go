package chord

import (
	"math/big"
	"math/rand/v2"
	"testing"
)

// The small ring: points 0..m-1 compared as numbers, exactly as IDs are. The
// same generic betweenOpen runs on it, so checking every triple checks the
// wrap-around logic the 160-bit ring uses.
const smallRing = 64

func cmpSmall(a, b uint8) int { return int(a) - int(b) }

// refOpen is the arithmetic definition: x ∈ (a, b) iff 0 < x-a < b-a (mod m),
// where b-a is taken as m when a == b (the whole ring).
func refOpen(a, x, b, m int) bool {
	dx := ((x-a)%m + m) % m
	db := ((b-a)%m + m) % m
	if db == 0 {
		db = m
	}
	return dx > 0 && dx < db
}

func TestBetweenExhaustiveSmallRing(t *testing.T) {
	for a := range smallRing {
		for x := range smallRing {
			for b := range smallRing {
				A, X, B := uint8(a), uint8(x), uint8(b)
				open := refOpen(a, x, b, smallRing)
				if got := betweenOpen(cmpSmall, A, X, B); got != open {
					t.Fatalf("(%d,%d) ∋ %d: got %v want %v", a, b, x, got, open)
				}
				right := open || x == b
				if got := betweenRightIncl(cmpSmall, A, X, B); got != right {
					t.Fatalf("(%d,%d] ∋ %d: got %v want %v", a, b, x, got, right)
				}
				left := open || x == a
				if got := betweenLeftIncl(cmpSmall, A, X, B); got != left {
					t.Fatalf("[%d,%d) ∋ %d: got %v want %v", a, b, x, got, left)
				}
			}
		}
	}
}

// TestBetweenExhaustiveIDs runs every triple of a 32-point ring embedded in
// real IDs three ways: in the top byte, in the bottom byte (so the compare
// must look past 19 equal bytes) and straddling a byte boundary.
func TestBetweenExhaustiveIDs(t *testing.T) {
	const m = 32
	embed := []func(v int) ID{
		func(v int) ID { var id ID; id[0] = byte(v * 8); return id },
		func(v int) ID { var id ID; id[19] = byte(v); return id },
		func(v int) ID { var id ID; id[18] = byte(v >> 3); id[19] = byte(v << 5); return id },
	}
	for ei, f := range embed {
		for a := range m {
			for x := range m {
				for b := range m {
					open := refOpen(a, x, b, m)
					// The bottom-byte embedding is not the whole ring: points
					// above 31 exist, but the triples only use 0..31, whose
					// order and wrap (a > b) behave the same.
					if got := Between(f(a), f(x), f(b)); got != open {
						t.Fatalf("embed %d: (%d,%d) ∋ %d: got %v want %v", ei, a, b, x, got, open)
					}
					if got := BetweenRightIncl(f(a), f(x), f(b)); got != (open || x == b) {
						t.Fatalf("embed %d: (%d,%d] ∋ %d: got %v", ei, a, b, x, got)
					}
				}
			}
		}
	}
}

var ringSize = new(big.Int).Lsh(big.NewInt(1), Bits)

func refOpenBig(a, x, b ID) bool {
	dx := new(big.Int).Sub(x.Big(), a.Big())
	dx.Mod(dx, ringSize)
	db := new(big.Int).Sub(b.Big(), a.Big())
	db.Mod(db, ringSize)
	if db.Sign() == 0 {
		db.Set(ringSize)
	}
	return dx.Sign() > 0 && dx.Cmp(db) < 0
}

func randID(r *rand.Rand) ID {
	var id ID
	for i := range id {
		id[i] = byte(r.Uint32())
	}
	return id
}

// edgeIDs are the points where off-by-one and wrap bugs live.
func edgeIDs(r *rand.Rand) []ID {
	var zero, max, one ID
	for i := range max {
		max[i] = 0xff
	}
	one[19] = 1
	x := randID(r)
	return []ID{zero, one, max, x, x.AddPow2(0), Distance(one, x), x.AddPow2(159)}
}

func TestBetweenProperties160(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	check := func(a, x, b ID) {
		t.Helper()
		want := refOpenBig(a, x, b)
		if got := Between(a, x, b); got != want {
			t.Fatalf("Between(%s, %s, %s) = %v, want %v", a, x, b, got, want)
		}
		if got := BetweenRightIncl(a, x, b); got != (want || x == b) {
			t.Fatalf("BetweenRightIncl(%s, %s, %s) = %v", a, x, b, got)
		}
		if got := BetweenLeftIncl(a, x, b); got != (want || x == a) {
			t.Fatalf("BetweenLeftIncl(%s, %s, %s) = %v", a, x, b, got)
		}
		// Every point but a and b is in exactly one of (a,b) and (b,a).
		if a != b && x != a && x != b && Between(a, x, b) == Between(b, x, a) {
			t.Fatalf("%s is in both or neither of (%s,%s) and its complement", x, a, b)
		}
	}
	for range 20000 {
		check(randID(r), randID(r), randID(r))
	}
	for range 50 {
		e := edgeIDs(r)
		for _, a := range e {
			for _, x := range e {
				for _, b := range e {
					check(a, x, b)
				}
			}
		}
	}
}

func TestAddPow2AndDistance(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		id := randID(r)
		i := r.IntN(Bits)
		want := new(big.Int).Add(id.Big(), new(big.Int).Lsh(big.NewInt(1), uint(i)))
		want.Mod(want, ringSize)
		if got := id.AddPow2(i).Big(); got.Cmp(want) != 0 {
			t.Fatalf("%s + 2^%d = %x, want %x", id, i, got, want)
		}
		b := randID(r)
		d := new(big.Int).Sub(b.Big(), id.Big())
		d.Mod(d, ringSize)
		if got := Distance(id, b).Big(); got.Cmp(d) != 0 {
			t.Fatalf("Distance(%s, %s) = %x, want %x", id, b, got, d)
		}
	}
}

func TestParseIDRoundTrip(t *testing.T) {
	id := HashKey([]byte("flownode"))
	got, err := ParseID(id.Hex())
	if err != nil || got != id {
		t.Fatalf("ParseID(%s) = %s, %v", id.Hex(), got, err)
	}
	for _, bad := range []string{"", "abc", id.Hex()[:39] + "g", id.Hex() + "00"} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
}
