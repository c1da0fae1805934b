package ringledger

import (
	"math/big"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/ringledger/placement"
)

// inRange reports whether x lies in the ring range (from, to]; (a, a] is the
// whole ring.
func inRange(from, x, to ledger.Key) bool {
	return chord.BetweenRightIncl(from, x, to)
}

// keyOf is the ring position of a pointer: the first 160 bits of its txID.
func keyOf(txID ledger.Hash) ledger.Key {
	var k ledger.Key
	copy(k[:], txID[:20])
	return k
}

// ownRange is the range (pred, self] this node owns (placement.Own). ok is
// false while the node does not know its predecessor.
func ownRange(st chord.State) (from, to ledger.Key, ok bool) {
	r, ok := placement.Own(st)
	return r.From, r.To, ok
}

// replicaTargets are the k-1 first distinct successors, which hold copies of
// what this node owns (placement.Replicas).
func (d *Ledger) replicaTargets(st chord.State) []chord.Peer { return placement.Replicas(st, d.k) }

// ringSize is 2^160.
var ringSize = new(big.Int).Lsh(big.NewInt(1), 160)

// splitRange cuts (from, to] into n consecutive ranges of about equal size.
func splitRange(from, to ledger.Key, n int) [][2]ledger.Key {
	a := new(big.Int).SetBytes(from[:])
	size := new(big.Int).Sub(new(big.Int).SetBytes(to[:]), a)
	size.Mod(size, ringSize)
	if size.Sign() == 0 {
		size.Set(ringSize)
	}
	step := new(big.Int).Div(size, big.NewInt(int64(n)))
	out := make([][2]ledger.Key, 0, n)
	prev := from
	for i := 1; i <= n; i++ {
		next := to
		if i < n {
			b := new(big.Int).Mul(step, big.NewInt(int64(i)))
			b.Add(b, a).Mod(b, ringSize)
			b.FillBytes(next[:])
		}
		if next != prev || i == n {
			out = append(out, [2]ledger.Key{prev, next})
		}
		prev = next
	}
	return out
}

// prevKey is k-1 on the ring, so that (prevKey(k), to] starts at k.
func prevKey(k ledger.Key) ledger.Key {
	for i := len(k) - 1; i >= 0; i-- {
		k[i]--
		if k[i] != 0xff {
			break
		}
	}
	return k
}
