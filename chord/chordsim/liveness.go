package chordsim

import (
	"fmt"
	"math"
	"slices"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/chord/chordtest"
)

// idealErr reports why the ring is not Ideal (nil if it is): every live node
// a member, its successor list the next r live nodes, its predecessor the
// previous live node (chordtest.IdealErr), and, beyond that, a lone node
// without a predecessor.
func (s *Sim) idealErr() error {
	o := s.oracle()
	views := make([]chordtest.View, len(o))
	for i, id := range o {
		n := s.nodes[id]
		views[i] = chordtest.View{Self: id, Status: n.status().String(), Pred: n.pred().ID, Succs: peerIDs(n.succs()), R: n.r()}
	}
	if err := chordtest.IdealErr(views, s.nameOf); err != nil {
		return err
	}
	if len(o) == 1 {
		if n := s.nodes[o[0]]; !n.pred().IsZero() {
			return fmt.Errorf("lone %s has predecessor %s", n.name, s.nameOf(n.pred().ID))
		}
	}
	return nil
}

// fingersErr reports a finger that is not the true successor of its start
// (chordtest.FingersErr).
func (s *Sim) fingersErr() error {
	o := s.oracle()
	views := make([]chordtest.View, len(o))
	for i, id := range o {
		n := s.nodes[id]
		fs := make([]chord.ID, chord.Bits)
		for j := range fs {
			fs[j] = n.core.Finger(j).ID
		}
		views[i] = chordtest.View{Self: id, Fingers: fs}
	}
	return chordtest.FingersErr(views, s.nameOf)
}

// idealBound is how many stabilize rounds the ring may take to become Ideal
// once churn stops. The successor lists fill one entry per round and the
// failure detector needs MaxTTL rounds, so the bound is c·log2 N with c = 4
// (r is about 2·log2 N) plus a constant for detection, timeouts and, after a
// partition, the probes that find the other ring.
func (s *Sim) idealBound(n int) int {
	lg := math.Ceil(math.Log2(float64(max(n, 2))))
	r := s.cfg.R
	if r == 0 {
		r = int(2 * lg)
	}
	return int(4*lg) + r + 2*s.cfg.MaxTTL + 2*s.opt.ProbeEvery + 10
}

// RoundsToIdeal runs whole rounds until the ring is Ideal, up to limit. It
// returns the rounds taken and whether Ideal was reached.
func (s *Sim) RoundsToIdeal(limit int) (int, bool) {
	for r := 0; ; r++ {
		if s.violation != nil {
			return r, false
		}
		if s.idealErr() == nil {
			return r, true
		}
		if r >= limit {
			return r, false
		}
		s.runUntil(s.now + s.opt.Round)
	}
}

// Converge stops the churn (heals partitions, stops loss, duplication and
// reordering) and checks the liveness properties in turn: Ideal within
// idealBound rounds, then Fingers, then Lookups from every node, then every
// acknowledged key on its owner and k-1 successors.
func (s *Sim) Converge() *Violation {
	if s.violation != nil {
		return s.violation
	}
	s.net.loss, s.net.dup, s.net.reorder = 0, 0, 0
	if s.partitioned {
		s.heal()
	}
	live := s.live()
	if len(live) == 0 {
		return nil
	}
	if s.outside {
		// Let the partition's aftermath play out first: pings lost in it
		// still expire TTLs a few ticks after the heal, so a ring that looks
		// Ideal right at the heal is not yet.
		s.runUntil(max(s.now, s.outsideAt+int64(s.cfg.MaxTTL+2)*s.opt.Round))
	}
	bound := s.idealBound(len(live))
	if r, ok := s.RoundsToIdeal(bound); !ok {
		return s.fail("Ideal", fmt.Sprintf("not reached in %d rounds: %v", r, s.idealErr()))
	} else {
		s.LastIdealRounds = r
	}
	if !s.runUntilOK(s.fingersErr, 2*chord.Bits/max(1, s.cfg.FingersPerTick)+bound) {
		return s.fail("Fingers", s.fingersErr().Error())
	}
	if v := s.checkAllLookups(); v != nil {
		return v
	}
	// Let outstanding writes finish and replicas spread, then check keys.
	s.runUntilOK(func() error {
		if s.pending > 0 {
			return fmt.Errorf("%d client operations pending", s.pending)
		}
		return nil
	}, 4*maxWriteAttempts)
	s.runUntil(s.now + int64(3*s.opt.ReplicateEvery+2)*s.opt.Round)
	if s.violation != nil {
		return s.violation
	}
	if err := s.keysErr(); err != nil {
		return s.fail("Placement", err.Error())
	}
	return nil
}

func (s *Sim) fail(inv, detail string) *Violation {
	if s.violation == nil {
		s.violation = &Violation{Invariant: inv, Node: "ring", Detail: detail, Step: s.steps, Time: s.now}
	}
	return s.violation
}

// runUntilOK runs whole rounds until ok() returns nil, up to limit rounds.
func (s *Sim) runUntilOK(ok func() error, limit int) bool {
	for r := 0; r <= limit; r++ {
		if s.violation != nil {
			return false
		}
		if ok() == nil {
			return true
		}
		s.runUntil(s.now + s.opt.Round)
	}
	return ok() == nil
}

// checkAllLookups looks up random keys and every node's ID from every live
// node; each must return the oracle's owner.
func (s *Sim) checkAllLookups() *Violation {
	live := s.live()
	per := max(2, 64/len(live))
	s.checkLookups = true
	defer func() { s.checkLookups = false }()
	for _, n := range live {
		for range per {
			s.startOp(s.newOp(opLookup, n, s.randomKey()))
		}
		target := live[s.clientRand.IntN(len(live))]
		s.startOp(s.newOp(opLookup, n, target.peer.ID))
	}
	pending := func() error {
		for _, op := range s.ops {
			if op.kind == opLookup {
				return fmt.Errorf("lookup of %s from %s never finished", op.key.Short(), op.origin.name)
			}
		}
		return nil
	}
	s.runUntilOK(pending, 60)
	if s.violation != nil {
		return s.violation
	}
	if err := pending(); err != nil {
		return s.fail("Lookups", err.Error())
	}
	return nil
}

func (s *Sim) randomKey() chord.ID {
	var k chord.ID
	for i := range k {
		k[i] = byte(s.clientRand.Uint32())
	}
	return k
}

// keysErr checks every acknowledged key: primary on its owner and nowhere
// else, and held by the next k-1 live nodes. Keys every copy of which died
// with their nodes are excused (the failures exceeded k).
func (s *Sim) keysErr() error {
	o := s.oracle()
	live := s.live()
	for _, k := range sortKeys(mapKeysRec(s.keys)) {
		rec := s.keys[k]
		held := slices.ContainsFunc(live, func(n *simNode) bool { return n.store.holds(k) })
		if !held {
			if rec.excused {
				continue
			}
			return fmt.Errorf("key %s is lost", k.Short())
		}
		owner := s.nodes[o.Successor(k)]
		if !owner.store.primary[k] {
			return fmt.Errorf("key %s is not primary on its owner %s", k.Short(), owner.name)
		}
		for _, n := range live {
			if n != owner && n.store.primary[k] {
				return fmt.Errorf("key %s is primary on %s as well as on its owner %s", k.Short(), n.name, owner.name)
			}
		}
		for _, id := range o.Next(o.Index(owner.peer.ID), s.opt.Replicas-1) {
			if r := s.nodes[id]; !r.store.holds(k) {
				return fmt.Errorf("key %s (owner %s) has no replica on %s", k.Short(), owner.name, r.name)
			}
		}
	}
	return nil
}

// excuseLostKeys marks acknowledged keys of which no live node (nor any
// transfer in flight) holds a copy any more: lost to failures beyond k.
func (s *Sim) excuseLostKeys() {
	held := make(map[chord.ID]bool)
	for _, n := range s.sorted {
		if !n.alive {
			continue
		}
		for _, m := range []map[chord.ID]bool{n.store.primary, n.store.replica, n.store.pending} {
			for k := range m {
				held[k] = true
			}
		}
	}
	for _, e := range s.q {
		if e.kind == evDeliver && e.pkt.app != nil && e.node.alive {
			for _, k := range e.pkt.app.keys {
				held[k] = true
			}
		}
	}
	for k, rec := range s.keys {
		if !rec.excused && !held[k] {
			rec.excused = true
			if s.now-rec.ackedAt <= int64(s.opt.ReplicateEvery+2)*s.opt.Round {
				s.flag("key lost: its owner acknowledged it and crashed before replicating")
			} else {
				s.flag(flagKeyLost)
			}
		}
	}
}

// flagKeyLost counts replicated keys whose every copy failed.
const flagKeyLost = "key lost: every copy failed (beyond k)"

func mapKeysRec(m map[chord.ID]*keyRecord) []chord.ID {
	out := make([]chord.ID, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func peerIDs(ps []chord.Peer) []chord.ID {
	out := make([]chord.ID, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}
