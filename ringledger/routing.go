package ringledger

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/ringledger/placement"
)

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

// learnRange caches the range owner claimed in an answer, only when it agrees
// with this node's view of the ring (placement.Agrees): a peer that claims
// more than its range would be sent others' readings.
func (d *Ledger) learnRange(owner chord.Peer, r wireRange) {
	if !placement.Agrees(d.state(), owner.ID, placement.Range{From: r.From, To: r.To}) {
		d.stats.badAnswers.Add(1)
		d.log.Warn("a peer claimed a range this node's view of the ring contradicts; not cached",
			zap.String("peer", owner.Addr), zap.Stringer("from", r.From), zap.Stringer("to", r.To))
		return
	}
	d.ranges.learn(r.From, r.To, owner, d.now())
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

// stateMaxAge bounds how old the cached ring state may be. The cache is
// dropped at once on every ring event (RingEvent), so this only bounds the
// cost of a missed one: the state is read again at least this often.
const stateMaxAge = time.Second

// state returns the ring state: the one cached since the last ring event, at
// most stateMaxAge old.
func (d *Ledger) state() chord.State {
	d.cur.Lock()
	defer d.cur.Unlock()
	// Clear the flag before reading: an event that lands while the driver
	// answers sets it again, and the next call reads again.
	if d.stale.Swap(false) || d.now().Sub(d.cur.at) >= stateMaxAge {
		d.cur.st, d.cur.at = d.ring.State(), d.now()
		d.noteReplicas(d.cur.st)
	}
	return d.cur.st
}

// RingEvent tells the ledger of an event of the ring's core (the driver's
// Config.OnEvent). It never blocks: it drops the cached ring state and, when
// the node's range, successors or membership changed, wakes the repair loop.
func (d *Ledger) RingEvent(e chord.Event) {
	switch e.(type) {
	case chord.LookupDone, chord.Delivered, chord.ProtocolError:
		return
	}
	d.stale.Store(true)
	d.changedAt.Store(d.now().UnixNano())
	select {
	case d.changed <- struct{}{}:
	default:
	}
}

// noteReplicas remembers when this node has seen its k-1 replicas (see
// hadReplicas). Every state the node acts on passes here: puts, reads and
// each sync round, which runs on every change of the successors.
func (d *Ledger) noteReplicas(st chord.State) {
	if len(d.replicaTargets(st)) >= d.k-1 {
		d.hadReplicas.Store(true)
	}
}

// owner finds successor(key): this node when the key is in its own range, a
// cached range, or a Chord lookup.
func (d *Ledger) owner(ctx context.Context, key ledger.Key) (chord.Peer, error) {
	st := d.state()
	if from, to, ok := ownRange(st); ok && inRange(from, key, to) {
		return st.Self, nil
	}
	if p, ok := d.ranges.find(key, d.now()); ok {
		return p, nil
	}
	p, _, err := d.ring.Lookup(ctx, key)
	return p, err
}

// members lists the ring's nodes, walked at most once per sync interval.
func (d *Ledger) memberList(ctx context.Context) ([]chord.Peer, error) {
	d.members.Lock()
	defer d.members.Unlock()
	fresh := max(d.cfg.SyncInterval, time.Second)
	if d.members.peers != nil && d.now().Sub(d.members.at) < fresh {
		return d.members.peers, nil
	}
	ps, err := d.ring.Walk(ctx, maxWalk)
	if len(ps) == 0 {
		return nil, err
	}
	// A walk broken by a failed node still names the nodes before the break;
	// keep what it found but do not cache a partial list for long.
	d.members.peers, d.members.at = ps, d.now()
	if err != nil {
		d.members.at = d.now().Add(-fresh + time.Second)
	}
	return ps, nil
}

// maxWalk bounds a ring walk: the walk asks every node in turn.
const maxWalk = 1024

// knownPeer names the node with this ID with the address this node knows it
// by (its neighbours and fingers), or with no address.
func knownPeer(st chord.State, id ledger.Key) Peer {
	for _, p := range append(append([]chord.Peer{st.Pred}, st.Succs...), st.Fingers...) {
		if p.ID == id && !p.IsZero() {
			return p
		}
	}
	return Peer{ID: id}
}
