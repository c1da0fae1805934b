package ringledger

import (
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
)

// The cost of a Thing's history, counted on a simulated ideal Chord ring of
// N nodes with correct fingers, routed as chord routes a lookup: from the
// asking node, each step asks the closest finger preceding the key until a
// node whose successor owns it is found. Hops are the remote nodes asked
// (the chordsim benchmarks count the same way); a message is a request or a
// reply.
//
// With the index, a query over B buckets costs per bucket one lookup (h
// hops, 2h messages) and one get (2 messages) per page of 40 KiB (about 40
// records); with open bounds one more lookup and get for the Thing's
// extremes. The range cache skips lookups of owners it knows, so these are
// upper bounds. Without the index, every node is asked once (2N messages,
// plus a ring walk of N steps once per sync interval to know the members).

// idealRing is N nodes at SHA-1 positions, sorted, each with its fingers.
type idealRing struct {
	ids     []chord.ID
	fingers [][]int // fingers[i][b]: index of successor(ids[i] + 2^b)
}

func newIdealRing(n int) *idealRing {
	r := &idealRing{}
	for i := range n {
		r.ids = append(r.ids, chord.ID(sha1.Sum(binary.BigEndian.AppendUint64([]byte("cost-node-"), uint64(i)))))
	}
	slices.SortFunc(r.ids, chord.ID.Cmp)
	two := big.NewInt(2)
	for _, id := range r.ids {
		fs := make([]int, chord.Bits)
		base := new(big.Int).SetBytes(id[:])
		for b := range chord.Bits {
			x := new(big.Int).Add(base, new(big.Int).Exp(two, big.NewInt(int64(b)), nil))
			x.Mod(x, ringSize)
			var k chord.ID
			x.FillBytes(k[:])
			fs[b] = r.successor(k)
		}
		r.fingers = append(r.fingers, fs)
	}
	return r
}

// successor is the index of the node owning key.
func (r *idealRing) successor(key chord.ID) int {
	i, _ := slices.BinarySearchFunc(r.ids, key, chord.ID.Cmp)
	return i % len(r.ids)
}

// lookup routes key from node from and returns the owner and the hops.
func (r *idealRing) lookup(from int, key chord.ID) (owner, hops int) {
	cur := from
	for {
		succ := (cur + 1) % len(r.ids)
		if len(r.ids) == 1 || chord.BetweenRightIncl(r.ids[cur], key, r.ids[succ]) {
			return succ, hops
		}
		if r.ids[cur] == key {
			return cur, hops
		}
		next := cur
		for b := chord.Bits - 1; b >= 0; b-- {
			f := r.fingers[cur][b]
			if f != cur && chord.Between(r.ids[cur], r.ids[f], key) {
				next = f
				break
			}
		}
		if next == cur {
			next = succ
		}
		cur = next
		hops++
	}
}

// historyCost is the cost of one query over buckets with records each.
type historyCost struct {
	hops, messages, roundTrips int
}

// indexCost routes each bucket's lookup from asker and counts the pages.
func (r *idealRing) indexCost(asker int, thing string, first int64, buckets, recordsPerBucket int, openBounds bool) historyCost {
	var c historyCost
	pages := max(1, (recordsPerBucket+39)/40)
	step := func(pos ledger.Key) (hops int) {
		owner, h := r.lookup(asker, pos)
		if owner != r.successor(pos) {
			panic("the simulated lookup found the wrong owner")
		}
		c.hops += h
		c.messages += 2*h + 2*pages
		return h
	}
	if openBounds {
		h := step(extremesPos(thing))
		c.roundTrips += h + 1
	}
	// Buckets are read in windows of 1, 2, 4, then 8 at once: a window
	// costs its slowest bucket's round trips.
	window := 1
	for done := 0; done < buckets; window = min(2*window, historyWindow) {
		w := min(window, buckets-done)
		slowest := 0
		for i := range w {
			slowest = max(slowest, step(bucketPos(thing, first+int64(done+i)))+pages)
		}
		c.roundTrips += slowest
		done += w
	}
	return c
}

// TestThingIndexCostAt1000 prints, for rings of 5, 100 and 1,000 nodes and
// queries over 1, 24 and 168 hour buckets (a bounded range, 40 records or
// fewer per bucket), the mean lookup hops and messages of a query with the
// history index against the 2N messages of asking every node, from 200
// queries of random Things from random nodes each. It checks that every
// simulated lookup finds the true owner and that the hops stay within
// ½·log2 N + 1 on average.
func TestThingIndexCostAt1000(t *testing.T) {
	var out strings.Builder
	fmt.Fprintf(&out, "\n%6s %4s | %12s %14s %13s %11s | %12s %10s\n", "N", "B", "hops/bucket", "index msgs", "index RTTs", "open +msgs", "every-node", "ratio")
	const queries = 200
	for _, n := range []int{5, 100, 1000} {
		r := newIdealRing(n)
		for _, b := range []int{1, 24, 168} {
			var sum, open historyCost
			for q := range queries {
				asker := (q * 7919) % n
				thing := fmt.Sprintf("thing-%d", q)
				first := int64(490_000 + q)
				c := r.indexCost(asker, thing, first, b, 40, false)
				sum.hops += c.hops
				sum.messages += c.messages
				sum.roundTrips += c.roundTrips
				o := r.indexCost(asker, thing, first, b, 40, true)
				open.messages += o.messages - c.messages
			}
			hops := float64(sum.hops) / float64(queries*b)
			msgs := float64(sum.messages) / queries
			every := 2 * n
			fmt.Fprintf(&out, "%6d %4d | %12.2f %14.1f %13.1f %11.1f | %12d %9.2fx\n",
				n, b, hops, msgs, float64(sum.roundTrips)/queries, float64(open.messages)/queries, every, msgs/float64(every))
			if bound := 0.5*math.Log2(float64(n)) + 1; hops > bound {
				t.Errorf("N=%d B=%d: %.2f hops per lookup, more than ½·log2 N + 1 = %.1f", n, b, hops, bound)
			}
		}
	}
	t.Log(out.String())
	t.Log("hops/bucket: Chord lookup hops per bucket; index msgs: requests and replies of a bounded query " +
		"(2·hops + 2 per bucket, one page each); index RTTs: round trips on the critical path (windows of 1, 2, 4, 8 buckets); " +
		"open +msgs: what an open bound adds (the extremes' lookup and get); every-node: 2N messages of the query without the index, " +
		"in one parallel round, plus a walk of the ring once per sync interval. Records moved: the index moves each record once; " +
		"asking every node moves it from each of its k holders (k = 3: three times), and every node scans its store. " +
		"The index asks fewer nodes than every node while B·(hops+1) < N; a limit stops its walk early")
}

// TestHistoryPositionVectors holds the positions of docs/ledger-format.md's
// history vectors to the code: the document is the oracle.
func TestHistoryPositionVectors(t *testing.T) {
	raw, err := os.ReadFile("../docs/ledger-format.md")
	if err != nil {
		t.Fatal(err)
	}
	v := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if name, val, ok := strings.Cut(line, " = "); ok && strings.HasPrefix(name, "history.") {
			v[name] = strings.TrimSpace(val)
		}
	}
	tm, err := time.Parse(time.RFC3339, v["history.time"])
	if err != nil {
		t.Fatalf("history.time: %v", err)
	}
	b := historyBucketOf(tm.UnixNano())
	for name, got := range map[string]string{
		"history.bucket":           fmt.Sprint(b),
		"history.bucketPosition":   bucketPos(v["history.thing"], b).String(),
		"history.extremesPosition": extremesPos(v["history.thing"]).String(),
	} {
		if v[name] != got {
			t.Errorf("%s: doc %q, code %q", name, v[name], got)
		}
	}
	if historyBucketOf(-1) != -1 || historyBucketOf(0) != 0 || historyBucketOf(int64(HistoryBucket)-1) != 0 {
		t.Error("buckets do not round down")
	}
}
