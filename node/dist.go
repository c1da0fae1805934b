package node

import (
	"context"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
)

// The distributed ledger (docs/architecture.md, a reading's way in; docs/chord.md, data).
//
// Placement. Three kinds of entries live on the ring, each at a ring position:
// a record at its data key; a txID pointer (txID → data key) at txID[:20], so
// that any node finds a record from its txID in two routed steps; and the
// blocks of a branch travel with the records that need them. The owner of a
// position is successor(position); it holds the entry as primary and its next
// k-1 successors hold replicas.
//
// Write: the entry node stamps the reading (time, salt), computes H_DATA,
// finds the owner and sends it a put MESSAGE; the owner checks the key is in
// its range, signs the records into its head block, stores them, writes their
// txID pointers at the pointers' owners, starts replication and answers once
// the records are durable on it (and on the replicas when asked to wait).
//
// Repair: every SyncInterval the owner reconciles its range (pred, self] with
// each of its k-1 first successors, both ways (range digests, then lists of
// the sub-ranges that differ). That one mechanism is the handoff on join (the
// new node pulls its range from its successor, which held it), the
// re-replication after a failure (the successor's range grew; it pushes it to
// its own successors) and anti-entropy after a partition or a crash. A
// graceful leave runs it once towards the successor before leaving.

// DefaultReplicas is k, the number of copies of each entry (owner included).
const DefaultReplicas = 3

// maxPayload bounds the data of one MESSAGE: the rpc codec refuses envelopes
// over 64 KiB, and CoAP carries smaller ones better.
const maxPayload = 40 << 10

// dist is the node's share of the distributed ledger.
type dist struct {
	n       *Node
	k       int
	ranges  rangeCache
	repl    replicator
	ptrs    pointerWriter
	leaving atomic.Bool
	log     *zap.Logger

	// hadReplicas is set once the node has seen k-1 successors to
	// replicate to. From then on a successor list shorter than that means
	// failures or a partition, not a ring smaller than k (see
	// ownerPutReadings).
	hadReplicas atomic.Bool

	// cur caches the ring state briefly: a put looks at the node's range
	// once per key, and the driver answers State on its loop goroutine.
	cur struct {
		sync.Mutex
		at time.Time
		st chord.State
	}

	members struct {
		sync.Mutex
		at    time.Time
		peers []chord.Peer
	}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	stats distCounters
}

// distCounters are the distributed ledger's counters (see DistStats).
type distCounters struct {
	forwarded, owned, replicasIn, replicasOut, pointerFails atomic.Uint64
	rejected, syncRounds, pulled, pushed, blocksIn          atomic.Uint64
	replPending, ptrPending                                 atomic.Int64
}

// DistStats are counters of the node's part in the distributed ledger.
type DistStats struct {
	Replicas      int    `json:"replicas"`      // k
	Forwarded     uint64 `json:"forwarded"`     // readings this node sent on to their owner
	Owned         uint64 `json:"owned"`         // readings this node signed as their owner
	ReplicasIn    uint64 `json:"replicasIn"`    // records stored as a replica
	ReplicasOut   uint64 `json:"replicasOut"`   // records acknowledged by replicas
	ReplPending   int64  `json:"replPending"`   // records waiting to reach a replica
	PtrPending    int64  `json:"ptrPending"`    // txID pointers waiting to reach their owner
	PointerFails  uint64 `json:"pointerFails"`  // txID pointers that could not be written
	Rejected      uint64 `json:"rejected"`      // peer messages refused as bad input
	SyncRounds    uint64 `json:"syncRounds"`    // anti-entropy rounds
	Pulled        uint64 `json:"pulled"`        // entries taken from peers by anti-entropy or handoff
	Pushed        uint64 `json:"pushed"`        // entries given to peers by anti-entropy or handoff
	BlocksFetched uint64 `json:"blocksFetched"` // foreign blocks stored
}

// DistStats returns the distributed ledger's counters.
func (n *Node) DistStats() DistStats {
	c := &n.dist.stats
	return DistStats{Replicas: n.dist.k, Forwarded: c.forwarded.Load(), Owned: c.owned.Load(),
		ReplicasIn: c.replicasIn.Load(), ReplicasOut: c.replicasOut.Load(), ReplPending: c.replPending.Load(), PtrPending: c.ptrPending.Load(),
		PointerFails: c.pointerFails.Load(), Rejected: c.rejected.Load(), SyncRounds: c.syncRounds.Load(),
		Pulled: c.pulled.Load(), Pushed: c.pushed.Load(), BlocksFetched: c.blocksIn.Load()}
}

func (d *dist) init(n *Node, k int) {
	d.n, d.k, d.log = n, k, n.log.Named("dist")
	if d.k <= 0 {
		d.k = DefaultReplicas
	}
	d.repl.d = d
	d.ptrs.d = d
	d.ctx, d.cancel = context.WithCancel(context.Background())
}

// start runs the anti-entropy loop once the node has a ring.
func (d *dist) start() {
	d.wg.Add(1)
	go d.syncLoop()
}

// stop ends the background work and waits for it.
func (d *dist) stop() {
	d.cancel()
	d.wg.Wait()
	d.repl.wait()
}

// inRange reports whether x lies in the ring range (from, to]; (a, a] is the
// whole ring.
func inRange(from, x, to ledger.Key) bool {
	return chord.BetweenRightIncl(chord.ID(from), chord.ID(x), chord.ID(to))
}

// keyOf is the ring position of a pointer: the first 160 bits of its txID.
func keyOf(txID ledger.Hash) ledger.Key {
	var k ledger.Key
	copy(k[:], txID[:20])
	return k
}

// ownRange is the range (pred, self] this node owns. ok is false while the
// node does not know its predecessor. A node alone owns the whole ring.
func ownRange(st chord.State) (from, to ledger.Key, ok bool) {
	self := ledger.Key(st.Self.ID)
	if alone(st) {
		return self, self, true
	}
	if st.Pred.IsZero() {
		return ledger.Key{}, ledger.Key{}, false
	}
	return ledger.Key(st.Pred.ID), self, true
}

// alone: the node is a ring of one.
func alone(st chord.State) bool {
	for _, s := range st.Succs {
		if s.ID != st.Self.ID {
			return false
		}
	}
	return true
}

// replicaTargets are the k-1 first distinct successors, which hold copies of
// what this node owns.
func (d *dist) replicaTargets(st chord.State) []chord.Peer {
	out := make([]chord.Peer, 0, d.k-1)
	seen := map[chord.ID]bool{st.Self.ID: true}
	for _, s := range st.Succs {
		if len(out) == d.k-1 {
			break
		}
		if !seen[s.ID] && !s.IsZero() {
			seen[s.ID] = true
			out = append(out, s)
		}
	}
	return out
}

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

// rangeCache remembers which node owned which range when it last said so, so
// that a batch of readings does not need one Chord lookup each. An owner
// checks every key it is sent, so a stale entry costs a refused call and a
// fresh lookup, never a misplaced record.
type rangeCache struct {
	mu      sync.Mutex
	entries []ownerRange
}

type ownerRange struct {
	from, to ledger.Key
	owner    chord.Peer
	at       time.Time
}

// rangeTTL bounds how long a learned range is trusted without a refusal.
const rangeTTL = 30 * time.Second

func (c *rangeCache) find(key ledger.Key, now time.Time) (chord.Peer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if now.Sub(e.at) < rangeTTL && inRange(e.from, key, e.to) {
			return e.owner, true
		}
	}
	return chord.Peer{}, false
}

// learn records that owner owns (from, to], dropping entries it overlaps.
func (c *rangeCache) learn(from, to ledger.Key, owner chord.Peer, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.entries[:0]
	for _, e := range c.entries {
		overlap := inRange(from, e.to, to) || inRange(e.from, to, e.to)
		if e.owner.ID != owner.ID && !overlap && now.Sub(e.at) < rangeTTL {
			kept = append(kept, e)
		}
	}
	c.entries = append(kept, ownerRange{from: from, to: to, owner: owner, at: now})
}

// forget drops what the cache believes of owner.
func (c *rangeCache) forget(owner chord.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.entries[:0]
	for _, e := range c.entries {
		if e.owner.ID != owner {
			kept = append(kept, e)
		}
	}
	c.entries = kept
}

// stateFresh bounds how old the cached ring state may be. Ring changes take
// whole ticks (50 ms at the fastest); an owner refusing a key with a state this
// old costs the entry node a retry, never a misplaced record.
const stateFresh = 10 * time.Millisecond

// state returns the ring state, at most stateFresh old.
func (d *dist) state() chord.State {
	d.cur.Lock()
	defer d.cur.Unlock()
	if time.Since(d.cur.at) >= stateFresh {
		d.cur.st, d.cur.at = d.n.ring.State(), time.Now()
		d.noteReplicas(d.cur.st)
	}
	return d.cur.st
}

// noteReplicas remembers when this node has seen its k-1 replicas (see
// hadReplicas). Every state the node acts on passes here: puts, reads and
// each sync round, which runs on every change of the successors.
func (d *dist) noteReplicas(st chord.State) {
	if len(d.replicaTargets(st)) >= d.k-1 {
		d.hadReplicas.Store(true)
	}
}

// self is this node's ring ID.
func (d *dist) self() chord.ID { return chord.ID(d.n.ID()) }

// owner finds successor(key): this node when the key is in its own range, a
// cached range, or a Chord lookup.
func (d *dist) owner(ctx context.Context, key ledger.Key) (chord.Peer, error) {
	st := d.state()
	if from, to, ok := ownRange(st); ok && inRange(from, key, to) {
		return st.Self, nil
	}
	if p, ok := d.ranges.find(key, time.Now()); ok {
		return p, nil
	}
	p, _, err := d.n.ring.Lookup(ctx, chord.ID(key))
	return p, err
}

// members lists the ring's nodes, walked at most once per sync interval.
func (d *dist) memberList(ctx context.Context) ([]chord.Peer, error) {
	d.members.Lock()
	defer d.members.Unlock()
	fresh := max(d.n.cfg.Profile.SyncInterval, time.Second)
	if d.members.peers != nil && time.Since(d.members.at) < fresh {
		return d.members.peers, nil
	}
	ps, err := d.n.ring.Walk(ctx, maxWalk)
	if len(ps) == 0 {
		return nil, err
	}
	// A walk broken by a failed node still names the nodes before the break;
	// keep what it found but do not cache a partial list for long.
	d.members.peers, d.members.at = ps, time.Now()
	if err != nil {
		d.members.at = time.Now().Add(-fresh + time.Second)
	}
	return ps, nil
}
