package chordsim

import (
	"fmt"
	"slices"
	"time"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ringledger/placement"
)

// keyStore is the simulated application data of one node: keys held as
// primary (owned), as replicas, or pending (received while the node's range
// was unknown). Only RangeChanged events and transfers move keys between the
// sets, so Placement checks the core's events.
type keyStore struct {
	primary, replica, pending map[chord.ID]bool
	rng                       chord.RangeChanged
}

func newKeyStore() keyStore {
	return keyStore{primary: map[chord.ID]bool{}, replica: map[chord.ID]bool{}, pending: map[chord.ID]bool{}}
}

func (k *keyStore) holds(key chord.ID) bool {
	return k.primary[key] || k.replica[key] || k.pending[key]
}

type appKind int

const (
	appWrite appKind = iota
	appAck
	appNack
	appHandoff
	appReplica
)

func (k appKind) String() string {
	return [...]string{"write", "ack", "nack", "handoff", "replica"}[k]
}

// appMsg is an application transfer between simulated nodes.
type appMsg struct {
	kind appKind
	keys []chord.ID
	op   uint64
	hops int
}

// owns reports whether the node currently owns key.
func (n *simNode) owns(key chord.ID) bool {
	return n.inRing() && n.store.rng.Contains(key)
}

// relabel applies a range change: keys in the range become primary, primary
// keys outside it become replicas and go to the new predecessor.
func (n *simNode) relabel(r chord.RangeChanged) {
	st := &n.store
	st.rng = r
	if !r.Known() {
		return
	}
	var out []chord.ID
	for k := range st.primary {
		if !r.Contains(k) {
			delete(st.primary, k)
			st.replica[k] = true
			out = append(out, k)
		}
	}
	for k := range st.replica {
		if r.Contains(k) {
			delete(st.replica, k)
			st.primary[k] = true
		}
	}
	for k := range st.pending {
		if r.Contains(k) {
			st.primary[k] = true
		} else {
			st.replica[k] = true
			out = append(out, k)
		}
		delete(st.pending, k)
	}
	if len(out) > 0 && r.From.ID != n.peer.ID {
		n.s.sendApp(n, n.s.nodes[r.From.ID], &appMsg{kind: appHandoff, keys: sortKeys(out)})
	}
}

// place stores transferred keys: owned ones as primary, others as replicas
// passed on towards their owner (counter-clockwise, to the predecessor).
func (n *simNode) place(keys []chord.ID, hops int) {
	st := &n.store
	var fwd []chord.ID
	for _, k := range keys {
		switch {
		case st.primary[k]:
		case n.owns(k):
			delete(st.replica, k)
			st.primary[k] = true
		case !st.rng.Known():
			st.pending[k] = true
		default:
			st.replica[k] = true
			fwd = append(fwd, k)
		}
	}
	if len(fwd) > 0 && hops < 2*len(n.s.sorted) && st.rng.From.ID != n.peer.ID {
		n.s.sendApp(n, n.s.nodes[st.rng.From.ID], &appMsg{kind: appHandoff, keys: fwd, hops: hops + 1})
	}
	n.dirty = true
}

func (n *simNode) onApp(from *simNode, a *appMsg) {
	switch a.kind {
	case appWrite:
		k := a.keys[0]
		if n.owns(k) {
			delete(n.store.replica, k)
			n.store.primary[k] = true
			n.dirty = true
			n.s.sendApp(n, from, &appMsg{kind: appAck, keys: a.keys, op: a.op})
		} else {
			n.s.sendApp(n, from, &appMsg{kind: appNack, keys: a.keys, op: a.op})
		}
	case appAck, appNack:
		n.s.writeResult(a.op, a.kind == appAck)
	case appHandoff:
		n.place(a.keys, a.hops)
	case appReplica:
		for _, k := range a.keys {
			if n.owns(k) {
				n.store.primary[k] = true
				delete(n.store.replica, k)
			} else if !n.store.primary[k] {
				n.store.replica[k] = true
			}
		}
		n.dirty = true
	}
}

// replicate pushes the primary keys to the nodes that hold their copies:
// placement.Replicas, the very decision the shipped ledger (ringledger) makes,
// so the Placement invariant checks it.
func (n *simNode) replicate() {
	if len(n.store.primary) == 0 {
		return
	}
	keys := sortKeys(mapKeys(n.store.primary))
	for _, p := range placement.Replicas(n.core.State(), n.s.opt.Replicas) {
		if o := n.s.nodes[p.ID]; o != nil {
			n.s.sendApp(n, o, &appMsg{kind: appReplica, keys: keys})
		}
	}
}

// repair is the anti-entropy that brings keys home after partitions and
// lost transfers: replicas the node does not own go to its predecessor, which
// keeps them if it owns them and passes them on (counter-clockwise) if not.
func (n *simNode) repair() {
	pred := n.core.Pred()
	if len(n.store.replica) == 0 || pred.IsZero() {
		return
	}
	n.s.sendApp(n, n.s.nodes[pred.ID], &appMsg{kind: appHandoff, keys: sortKeys(mapKeys(n.store.replica))})
}

// handOver gives everything a leaving node holds to its successor: what it
// owns, and its replicas too, which may be the last copies.
func (n *simNode) handOver(succ chord.Peer) *simNode {
	keys := append(mapKeys(n.store.primary), mapKeys(n.store.pending)...)
	keys = append(keys, mapKeys(n.store.replica)...)
	if succ.IsZero() {
		// Not in a ring (stranded) as it leaves: the closest peer after it
		// that it remembers takes the keys and passes them on.
		best := chord.ID{}
		for _, e := range n.cache.Entries() {
			if best.IsZero() || chord.Distance(n.peer.ID, e.Peer.ID).Less(chord.Distance(n.peer.ID, best)) {
				best, succ = e.Peer.ID, e.Peer
			}
		}
	}
	if succ.IsZero() {
		return nil
	}
	if len(keys) > 0 {
		n.s.sendApp(n, n.s.nodes[succ.ID], &appMsg{kind: appHandoff, keys: sortKeys(keys)})
	}
	return n.s.nodes[succ.ID]
}

func mapKeys(m map[chord.ID]bool) []chord.ID {
	out := make([]chord.ID, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sortKeys(ks []chord.ID) []chord.ID {
	slices.SortFunc(ks, func(a, b chord.ID) int { return a.Cmp(b) })
	return ks
}

func durationOf(units int64) time.Duration { return time.Duration(units) * time.Millisecond }

// ---- client operations: writes and lookups issued by the simulation ----

type opKind int

const (
	opWrite opKind = iota
	opLookup
)

type clientOp struct {
	id       uint64
	kind     opKind
	key      chord.ID
	origin   *simNode
	attempts int
}

// keyRecord is an acknowledged write.
type keyRecord struct {
	ackedAt int64
	excused bool // every copy died with nodes (beyond k failures)
}

const maxWriteAttempts = 12

func (s *Sim) newOp(kind opKind, origin *simNode, key chord.ID) *clientOp {
	s.nextOp++
	op := &clientOp{id: s.nextOp, kind: kind, key: key, origin: origin}
	s.ops[op.id] = op
	s.pending++
	return op
}

func sortedOps(m map[uint64]*clientOp) []uint64 {
	ids := make([]uint64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (s *Sim) endOp(op *clientOp) {
	if s.ops[op.id] != nil {
		delete(s.ops, op.id)
		s.pending--
	}
}

// startOp starts (or retries) an operation with a lookup at its origin.
func (s *Sim) startOp(op *clientOp) {
	n := op.origin
	if !n.alive || s.ops[op.id] == nil {
		s.endOp(op)
		return
	}
	req := n.core.Lookup(op.key)
	n.lookups[req] = op.id
	n.drain()
}

func (s *Sim) lookupDone(n *simNode, e chord.LookupDone) {
	id, ok := n.lookups[e.ReqID]
	if !ok {
		return
	}
	delete(n.lookups, e.ReqID)
	op := s.ops[id]
	if op == nil {
		return
	}
	switch op.kind {
	case opLookup:
		want := s.oracle().Successor(op.key)
		s.Stats.Lookups = append(s.Stats.Lookups, LookupResult{Hops: e.Hops, Err: e.Err, Correct: e.Err == nil && e.Owner.ID == want})
		if s.checkLookups && (e.Err != nil || e.Owner.ID != want) && s.violation == nil {
			s.violation = &Violation{Invariant: "Lookups", Node: n.name, Step: s.steps, Time: s.now,
				Detail: fmt.Sprintf("lookup of %s returned %s (err %v), oracle says %s", op.key.Short(), s.nameOf(e.Owner.ID), e.Err, s.nameOf(want))}
		}
		s.endOp(op)
	case opWrite:
		if e.Err != nil {
			s.retryWrite(op)
			return
		}
		s.sendApp(n, s.nodes[e.Owner.ID], &appMsg{kind: appWrite, keys: []chord.ID{op.key}, op: op.id})
		// The owner may be dead by now: no answer means try again.
		attempt := op.attempts
		s.after(3*s.opt.Round, func() {
			if s.ops[op.id] != nil && op.attempts == attempt {
				s.retryWrite(op)
			}
		})
	}
}

func (s *Sim) writeResult(opID uint64, ok bool) {
	op := s.ops[opID]
	if op == nil {
		return
	}
	if ok {
		if s.keys[op.key] == nil {
			rec := &keyRecord{ackedAt: s.now}
			if !slices.ContainsFunc(s.live(), func(n *simNode) bool { return n.store.holds(op.key) }) {
				// The owner stored it, acknowledged, and crashed before it
				// replicated: the only copy died with it.
				rec.excused = true
				s.flag("key lost: its owner acknowledged it and crashed before replicating")
			}
			s.keys[op.key] = rec
		}
		s.endOp(op)
		return
	}
	s.retryWrite(op)
}

func (s *Sim) retryWrite(op *clientOp) {
	op.attempts++
	if op.attempts >= maxWriteAttempts {
		s.flag("write gave up after retries")
		s.endOp(op)
		return
	}
	s.after(s.opt.Round, func() { s.startOp(op) })
}
