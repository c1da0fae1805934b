package chord

import (
	"encoding/binary"
	"math"
)

// Stabilize is Zave's corrected stabilize: ask the best successor s for its
// predecessor and list, copy the list ([s] + s.succ), adopt s.pred (or a closer
// node s knows) if it lies between us and s and answers, then notify the first
// successor. Tick calls it every StabilizeEvery ticks.
func (n *Node) Stabilize() {
	if n.status != StatusLinked && n.status != StatusMember {
		return
	}
	s, ok := n.bestSucc()
	if !ok {
		n.strand()
		return
	}
	if s.ID == n.self.ID {
		// Alone: our own predecessor (or anyone who notified us) is the
		// candidate successor, exactly as if we had asked ourselves.
		if c := n.hintFor(n.self.ID); !c.IsZero() {
			n.request(c, NotifyStabilize, ID{}, request{kind: reqAdopt, chain: 1})
		}
		return
	}
	n.request(s, NotifyStabilize, ID{}, request{kind: reqStabilize})
}

// onStabilizeRequest answers NOTIFY_STABILIZE and NOTIFY_JOIN with our
// predecessor, successor list and the closest node we know after the asker.
// A node without a successor list stays silent: it cannot help.
func (n *Node) onStabilizeRequest(m Message) {
	if n.status != StatusLinked && n.status != StatusMember {
		return
	}
	n.send(m.From, NotifyPredecessor, m.ID, ID{}, Payload{
		Pred:  n.pred,
		Succs: n.liveSuccs(),
		Hint:  n.hintFor(m.From.ID),
	})
}

// hintFor returns the closest live node we know in (x, self): our predecessor
// or a recent notifier. All of them had us as successor when they told us, so
// adopting one keeps the ring ordered; the asker checks it is alive first.
func (n *Node) hintFor(x ID) Peer {
	var best Peer
	var bestD ID
	consider := func(p Peer) {
		if p.IsZero() || p.ID == x || p.ID == n.self.ID || n.isDead(p.ID) || !Between(x, p.ID, n.self.ID) {
			return
		}
		if d := Distance(x, p.ID); best.IsZero() || d.Less(bestD) {
			best, bestD = p, d
		}
	}
	consider(n.pred)
	for _, nt := range n.notifiers {
		consider(nt.peer)
	}
	return best
}

// onPredecessorReply handles NOTIFY_PREDECESSOR: the answer of our successor
// (stabilize), of the node our join found, or of a candidate we may adopt.
func (n *Node) onPredecessorReply(m Message, req *request) {
	s := m.From
	switch req.kind {
	case reqStabilize:
		if b, ok := n.bestSucc(); !ok || b.ID != s.ID {
			return // our list moved on since we asked
		}
	case reqJoin:
		if n.status != StatusJoining || n.join == nil {
			return
		}
		n.join = nil
		n.status = StatusLinked
	case reqAdopt:
		// Adopt s only if it is still an improvement on the best successor.
		if b, ok := n.bestSucc(); n.status < StatusLinked || (ok && !Between(n.self.ID, s.ID, b.ID)) {
			return
		}
	}
	// Zave's copy: [s] + s.succ.
	l, wrapped := n.buildList(s, m.Payload.Succs)
	copied := len(l)
	if !wrapped && copied < n.r && hasPrefix(n.succ, l) {
		l = clonePeers(n.succ[:min(len(n.succ), n.r)]) // keep our extension
	}
	n.setSuccs(l)
	n.adaptR(wrapped)
	n.extend(wrapped, copied)
	if m.Payload.Pred.ID == n.self.ID && n.status == StatusLinked {
		n.status = StatusMember
		n.emit(Joined{Succ: s})
	}
	if c := n.closerCandidate(s, m.Payload); !c.IsZero() && req.chain < n.cfg.AdoptChain {
		n.request(c, NotifyStabilize, ID{}, request{kind: reqAdopt, chain: req.chain + 1})
		return
	}
	n.notify(s)
}

// closerCandidate picks, from s's predecessor and hint, the live node closest
// after us that lies strictly between us and s.
func (n *Node) closerCandidate(s Peer, p Payload) Peer {
	var best Peer
	for _, c := range []Peer{p.Pred, p.Hint} {
		if c.IsZero() || c.ID == n.self.ID || n.isDead(c.ID) || !Between(n.self.ID, c.ID, s.ID) {
			continue
		}
		if best.IsZero() || Between(n.self.ID, c.ID, best.ID) {
			best = c
		}
	}
	return best
}

func (n *Node) notify(s Peer) {
	n.send(s, NotifySuccessor, 0, ID{}, Payload{})
}

// onNotify is Zave's rectify: accept the notifier as predecessor if we have
// none or it lies between the current one and us. Notifiers are remembered
// for a few ticks to serve as hints.
func (n *Node) onNotify(m Message) {
	if n.status != StatusLinked && n.status != StatusMember {
		return
	}
	p := m.From
	if _, ok := n.notifiers[p.ID]; ok || len(n.notifiers) < n.cfg.NotifierCap {
		n.notifiers[p.ID] = notifier{peer: p, expires: n.now + uint64(n.cfg.NotifierTTL)}
	}
	if n.pred.IsZero() || Between(n.pred.ID, p.ID, n.self.ID) {
		n.setPred(p)
	}
}

// adaptR re-estimates the ring size from how much of the ring the successor
// list spans, and sets r to about 2·log2 N. It moves r only when the estimate
// is off by two or more, so that r does not flap. Neighbours' estimates may
// differ; a list longer than the successor's can hold is filled by extend.
//
// wrapped says the list was cut because it went round the ring: then the
// node sees everyone and the estimate is exact.
func (n *Node) adaptR(wrapped bool) {
	if n.cfg.R != 0 || len(n.succ) == 0 || n.alone() {
		return
	}
	est, ok := n.estimateN(wrapped)
	if !ok {
		return
	}
	want := int(math.Ceil(2 * math.Log2(math.Max(est, 2))))
	want = min(max(want, n.cfg.MinR), n.cfg.MaxR)
	if want-n.r >= 2 || n.r-want >= 2 {
		n.r = want
		if len(n.succ) > n.r {
			n.setSuccs(clonePeers(n.succ[:n.r]))
		}
	}
}

// extend lengthens a list that is shorter than r although it does not go
// round the ring (our r is longer than our successor's, or the successor just
// lost entries): the list of its last copied entry continues it. The
// extension is asked for again at every stabilize, so it stays fresh.
func (n *Node) extend(wrapped bool, copied int) {
	if wrapped || copied == 0 || copied >= n.r || copied > len(n.succ) || n.alone() {
		return
	}
	tail := n.succ[copied-1]
	n.request(tail, NotifyStabilize, ID{}, request{kind: reqExtend, at: copied, tail: tail.ID})
}

// onExtendReply puts the list of the entry at-1 (or of the node bridging
// past it) after the first at entries.
func (n *Node) onExtendReply(m Message, req *request) {
	at := req.at
	if n.status != StatusLinked && n.status != StatusMember || at < 1 || at > len(n.succ) || n.succ[at-1].ID != req.tail {
		return // the list moved on
	}
	rest := clonePeers(n.succ[1:at])
	if req.bridge {
		rest = append(rest, m.From)
	}
	l, wrapped := n.buildList(n.succ[0], append(rest, m.Payload.Succs...))
	n.setSuccs(l)
	if !wrapped && !req.bridge && len(l) <= at && len(l) < n.r {
		n.bridge(at)
	}
}

// bridge is for a list that ends in a node that knows nothing beyond itself:
// the nodes after it have all left the ring (outside the assumptions, say
// after a partition). Left alone, each predecessor would copy ever shorter
// lists and leave the ring in turn, a wave running backwards round the ring.
// Instead the first finger past the tail, a live member further on, is asked
// for its list, and the list skips the hole.
func (n *Node) bridge(at int) {
	tail := n.succ[at-1]
	var best Peer
	for _, f := range n.fingers {
		if f.IsZero() || f.ID == n.self.ID || f.ID == tail.ID || n.isDead(f.ID) || !Between(tail.ID, f.ID, n.self.ID) {
			continue
		}
		if best.IsZero() || Distance(tail.ID, f.ID).Less(Distance(tail.ID, best.ID)) {
			best = f
		}
	}
	if !best.IsZero() {
		n.request(best, NotifyStabilize, ID{}, request{kind: reqExtend, at: at, tail: tail.ID, bridge: true})
	}
}

func hasPrefix(l, prefix []Peer) bool {
	return len(l) >= len(prefix) && samePeers(l[:len(prefix)], prefix)
}

// estimateN estimates the ring size: list length over the fraction of the
// ring the list spans.
func (n *Node) estimateN(wrapped bool) (float64, bool) {
	if wrapped {
		return float64(len(n.succ) + 1), true
	}
	if len(n.succ) < 2 {
		return 0, false
	}
	d := Distance(n.self.ID, n.succ[len(n.succ)-1].ID)
	frac := float64(binary.BigEndian.Uint64(d[:8])) / math.Ldexp(1, 64)
	if frac <= 0 {
		return 0, false
	}
	return float64(len(n.succ)) / frac, true
}
