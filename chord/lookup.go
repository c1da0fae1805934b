package chord

import (
	"math"
	"slices"
)

// Lookups are iterative: the originator asks one node at a time, each answer
// either names the owner or offers closer nodes, and the originator keeps every
// candidate it has heard of, so a node that does not answer is skipped for the
// next best one. A named owner is confirmed by asking it before the lookup
// reports it, so that a lookup right after failures returns a live owner.
// The owner's confirmation also teaches this node the ranges of the run of
// nodes around it (ranges.go), so that a later user lookup for a key in that
// run asks its owner at once: one round trip, still confirmed by the owner.

type purpose int

const (
	purposeUser   purpose = iota // Lookup: reported as LookupDone
	purposeFinger                // fix-fingers: fills a finger, not confirmed
	purposeJoin                  // join: names our successor
	purposeProbe                 // Probe: a successor from another ring?
)

type lookup struct {
	id      uint64
	key     ID
	purpose purpose
	finger  int

	hops    int // answers from nodes on the path (confirmations excluded)
	queries int // FIND_SUCCESSOR requests sent

	cands closerList // nodes to ask, closest before the key first
	// localCands: the closest preceding nodes of this node's own tables
	// are still to be added to cands (startLocal, advanceLookup).
	localCands bool
	entries    []Peer // entry points in the caller's order (join, probe)
	tried      map[ID]bool
	failed     map[ID]bool

	confirming bool
	owner      Peer
	alts       []Peer // successors after owner, in case it is dead

	deadline uint64
	// stalled: nobody is left to ask, but a query that timed out may still
	// answer late; the lookup waits for it until stallUntil (advanceLookup).
	stalled    bool
	stallUntil uint64
}

// found is a node's own answer to "who owns key".
type found struct {
	done  bool
	owner Peer
	succs []Peer // after owner
	next  []Peer // closer nodes to ask, best first
}

// candidatesPerAnswer is how many closer nodes an answer offers, and
// candidatesLocal how many the originator takes from its own tables: enough
// that a lookup started just after many nodes failed still has live ones to
// fall back on.
const (
	candidatesPerAnswer = 6
	candidatesLocal     = 32
)

// Lookup starts finding successor(key). It returns the request id that the
// LookupDone event will carry.
func (n *Node) Lookup(key ID) uint64 {
	l := n.newLookup(key, purposeUser)
	if n.status != StatusLinked && n.status != StatusMember {
		n.finishLookup(l, Peer{}, nil, ErrNotMember)
		return l.id
	}
	n.startLocal(l)
	return l.id
}

// Probe asks p, which may belong to another ring (say after a partition
// healed), for our successor; if p's ring knows a live node closer than our
// successor, we adopt it and the two rings merge through stabilize.
func (n *Node) Probe(p Peer) {
	if n.status != StatusLinked && n.status != StatusMember || p.IsZero() || p.ID == n.self.ID {
		return
	}
	l := n.newLookup(n.self.ID.AddPow2(0), purposeProbe)
	l.entries = []Peer{p}
	n.advanceLookup(l)
}

func (n *Node) newLookup(key ID, p purpose) *lookup {
	id := n.nextReq
	n.nextReq++
	l := &lookup{
		id: id, key: key, purpose: p, cands: closerList{key: key},
		tried:    make(map[ID]bool),
		failed:   make(map[ID]bool),
		deadline: n.now + uint64(n.cfg.LookupTimeout),
	}
	n.lookups[id] = l
	return l
}

// startLocal takes the first step with the node's own tables. The closest
// preceding nodes are kept as candidates even when the owner is known
// locally: if it and every successor after it turn out dead, the lookup
// routes through them instead of giving up; they are only looked for once
// the lookup routes (advanceLookup), since a confirmation mostly ends it. A
// user lookup for a key in a range an owner told this node of asks that
// owner first (ranges.go).
func (n *Node) startLocal(l *lookup) {
	f := n.localFind(l.key)
	if f.done && (f.owner.ID == n.self.ID || l.purpose == purposeFinger) {
		n.finishLookup(l, f.owner, f.succs, nil)
		return
	}
	l.localCands = true
	if f.done {
		n.confirm(l, f.owner, f.succs)
		return
	}
	if l.purpose == purposeUser {
		if o, ok := n.cachedOwner(l.key); ok {
			n.confirm(l, o, nil)
			return
		}
	}
	n.advanceLookup(l)
}

// localFind answers "who owns key" from this node's tables: itself if key is
// in (pred, self], a successor if key falls within the successor list, else
// the closest preceding nodes among fingers and successors.
func (n *Node) localFind(key ID) found {
	if n.alone() {
		return found{done: true, owner: n.self}
	}
	live := n.liveSuccs()
	if !n.pred.IsZero() && BetweenRightIncl(n.pred.ID, key, n.self.ID) {
		return found{done: true, owner: n.self, succs: live}
	}
	prev := n.self.ID
	for i, s := range live {
		if BetweenRightIncl(prev, key, s.ID) {
			return found{done: true, owner: s, succs: clonePeers(live[i+1:])}
		}
		prev = s.ID
	}
	return found{next: n.closestPreceding(key, candidatesPerAnswer)}
}

// closestPreceding returns up to k live nodes from fingers and successors that
// lie in (self, key), the closest to key first.
func (n *Node) closestPreceding(key ID, k int) []Peer {
	best := closerList{key: key, peers: make([]Peer, 0, k+1), dists: make([]ID, 0, k+1)}
	consider := func(p Peer) {
		if p.IsZero() || p.ID == n.self.ID || !Between(n.self.ID, p.ID, key) || n.isDead(p.ID) {
			return
		}
		best.add(p, k)
	}
	for i := Bits - 1; i >= 0; i-- {
		if i == Bits-1 || n.fingers[i].ID != n.fingers[i+1].ID {
			consider(n.fingers[i])
		}
	}
	for _, s := range n.succ {
		consider(s)
	}
	return best.peers
}

// closerList holds peers sorted by their clockwise distance to key, the
// closest first, without duplicates. Each peer's distance is computed once:
// recomputing it for every comparison was a tenth of a lookup's CPU.
type closerList struct {
	key   ID
	peers []Peer
	dists []ID // dists[i] = Distance(peers[i].ID, key)
}

// add inserts p in its place unless it is there already or its place is
// limit or further; the list keeps at most limit peers.
func (c *closerList) add(p Peer, limit int) {
	d := Distance(p.ID, c.key)
	// Distances to one key are equal only for the same ID: found means a
	// duplicate.
	i, found := slices.BinarySearchFunc(c.dists, d, cmpID)
	if found || i >= limit {
		return
	}
	c.peers = slices.Insert(c.peers, i, p)
	c.dists = slices.Insert(c.dists, i, d)
	if len(c.peers) > limit {
		c.peers, c.dists = c.peers[:limit], c.dists[:limit]
	}
}

// pop removes and returns the closest peer.
func (c *closerList) pop() Peer {
	p := c.peers[0]
	c.peers, c.dists = c.peers[1:], c.dists[1:]
	return p
}

// addCands merges offered nodes that lie between the answering node and the
// key, keeping the list sorted by closeness to the key.
func (n *Node) addCands(l *lookup, from ID, offered []Peer) {
	for _, p := range offered {
		if p.IsZero() || p.ID == n.self.ID || l.tried[p.ID] || !Between(from, p.ID, l.key) {
			continue
		}
		l.cands.add(p, math.MaxInt)
	}
}

// advanceLookup asks the best node not asked yet.
func (n *Node) advanceLookup(l *lookup) {
	if l.localCands {
		l.localCands = false
		n.addCands(l, n.self.ID, n.closestPreceding(l.key, candidatesLocal))
	}
	if l.queries >= n.cfg.MaxHops {
		n.finishLookup(l, Peer{}, nil, ErrTooManyHops)
		return
	}
	var next Peer
	for len(l.cands.peers) > 0 && next.IsZero() {
		c := l.cands.pop()
		if !l.tried[c.ID] && !n.isDead(c.ID) {
			next = c
		}
	}
	for len(l.entries) > 0 && next.IsZero() {
		c := l.entries[0]
		l.entries = l.entries[1:]
		if !l.tried[c.ID] {
			next = c
		}
	}
	if next.IsZero() {
		if n.lateQuery(l) {
			// On a slow link every query may time out and answer later:
			// give the late answers one more request timeout before giving
			// up (onLateFound picks the lookup up again).
			l.stalled, l.stallUntil = true, n.now+uint64(n.cfg.RequestTimeout)
			return
		}
		n.finishLookup(l, Peer{}, nil, ErrNoRoute)
		return
	}
	l.stalled = false
	l.tried[next.ID] = true
	l.queries++
	n.request(next, FindSuccessor, l.key, request{kind: reqFind, lookup: l.id})
}

// onFindSuccessor answers a lookup step. A node outside any ring answers with
// nothing, so that the asker moves on at once.
func (n *Node) onFindSuccessor(m Message) {
	var p Payload
	if n.status == StatusLinked || n.status == StatusMember {
		f := n.localFind(m.Key)
		p = Payload{Done: f.done, Owner: f.owner, Succs: f.succs, Next: f.next, Pred: n.pred}
	}
	n.send(m.From, FoundSuccessor, m.ID, m.Key, p)
}

func (n *Node) onFoundSuccessor(m Message, req *request) {
	l := n.lookups[req.lookup]
	if l == nil {
		return // finished (or timed out) already
	}
	p := m.Payload
	if j := n.join; l.purpose == purposeJoin && j != nil {
		if p.Done || len(p.Next) > 0 {
			j.ring = true
			j.members = append(j.members, m.From)
		} else {
			j.noRing = true
		}
	}
	if p.Done && p.Owner.ID == m.From.ID {
		n.learnRanges(m.From, p.Pred, p.Succs)
	} else if l.confirming {
		// The node asked to confirm does not own the key: what the cache
		// says of it is stale, if anything.
		n.forgetRange(m.From.ID)
	}
	if l.confirming {
		switch {
		case p.Done && p.Owner.ID == m.From.ID:
			n.finishLookup(l, m.From, p.Succs, nil)
			return
		case !p.Done && len(p.Next) == 0 && p.Pred.IsZero():
			n.confirmNext(l, Peer{}) // not in a ring: try the next owner
			return
		case !p.Done && (p.Pred.IsZero() || l.failed[p.Pred.ID]):
			// The named owner is alive and knows no live node between the
			// key and itself (its predecessor is unknown, or did not answer
			// this lookup): it is the owner.
			n.finishLookup(l, m.From, nil, nil)
			return
		case !p.Done && BetweenLeftIncl(l.key, p.Pred.ID, m.From.ID):
			// A node joined just before the named owner and took the key:
			// confirm that one, with the named owner as fallback.
			l.alts = []Peer{m.From}
			n.confirmNext(l, p.Pred)
			return
		}
		l.confirming = false
	} else {
		l.hops++
	}
	if p.Done && !p.Owner.IsZero() {
		o := p.Owner
		switch {
		case o.ID == n.self.ID && l.purpose == purposeJoin:
			// An earlier incarnation of us; the next node is our successor.
			if len(p.Succs) > 0 {
				n.finishLookup(l, p.Succs[0], p.Succs[1:], nil)
			} else {
				n.finishLookup(l, m.From, nil, nil)
			}
		case o.ID == n.self.ID, o.ID == m.From.ID, l.purpose == purposeFinger, l.purpose == purposeJoin:
			n.finishLookup(l, o, p.Succs, nil)
		default:
			n.confirm(l, o, p.Succs)
		}
		return
	}
	n.addCands(l, m.From.ID, p.Next)
	n.advanceLookup(l)
}

// confirm asks the named owner itself; if it is dead, the successors after it
// are the next owners in turn.
func (n *Node) confirm(l *lookup, owner Peer, alts []Peer) {
	l.confirming = true
	l.alts = clonePeers(alts)
	n.confirmNext(l, owner)
}

// confirmNext asks o, or the next alternative if o is zero or failed. Only
// nodes that failed to answer this very lookup are skipped: the node's memory
// of dead peers may be stale (a peer that rejoined), and skipping a live
// owner would return the wrong one.
func (n *Node) confirmNext(l *lookup, o Peer) {
	for {
		if !o.IsZero() && !l.failed[o.ID] {
			if o.ID == n.self.ID {
				// A fallback that lands on this node is only an answer if the key is
				// in this node's own range; otherwise the owner is someone this node
				// does not know yet, and a wrong owner would misplace data.
				if n.pred.IsZero() || BetweenRightIncl(n.pred.ID, l.key, n.self.ID) {
					n.finishLookup(l, o, nil, nil)
					return
				}
				// The alternatives left lie after this node, and so cannot
				// own a key before it either: route on instead of asking them.
				l.failed[o.ID] = true
				l.alts = nil
				continue
			}
			l.owner = o
			l.queries++
			n.request(o, FindSuccessor, l.key, request{kind: reqFind, lookup: l.id, confirm: true})
			return
		}
		if len(l.alts) == 0 {
			l.confirming = false
			n.advanceLookup(l)
			return
		}
		o, l.alts = l.alts[0], l.alts[1:]
	}
}

// onLateFound uses a lookup answer that came after its request timed out,
// if the lookup still runs:
//   - the owner we asked to confirm says it owns the key: that is the answer
//     an answer in time would have given, so the lookup ends with it;
//   - a step on the path, while the lookup is not confirming an owner (or
//     has nobody left to ask): the answer is taken as the current step's,
//     as if in time (the sender is no longer counted as failed), and the
//     query the lookup sent instead becomes late in turn. The lookup still
//     has one query in flight, and MaxHops and LookupTimeout still bound it;
//   - anything else only adds the closer nodes it offers as candidates.
func (n *Node) onLateFound(m Message, req *request) {
	l := n.lookups[req.lookup]
	if l == nil {
		return
	}
	p := m.Payload
	switch {
	case req.confirm:
		if p.Done && p.Owner.ID == m.From.ID {
			n.learnRanges(m.From, p.Pred, p.Succs)
			n.finishLookup(l, m.From, p.Succs, nil)
		}
	case !l.confirming || l.stalled:
		l.confirming = false // a stalled lookup has given up confirming
		for _, id := range sortedKeys(n.pending) {
			if r := n.pending[id]; r.kind == reqFind && r.lookup == l.id {
				delete(n.pending, id)
				n.rememberLate(id, r)
			}
		}
		delete(l.failed, m.From.ID)
		n.onFoundSuccessor(m, req)
	default:
		n.addCands(l, m.From.ID, p.Next)
	}
}

// lateQuery reports whether a query of l timed out but may still answer.
func (n *Node) lateQuery(l *lookup) bool {
	for _, lr := range n.late {
		if lr.req.kind == reqFind && lr.req.lookup == l.id {
			return true
		}
	}
	return false
}

// lookupTimeout skips a node that did not answer.
func (n *Node) lookupTimeout(l *lookup, to Peer) {
	l.failed[to.ID] = true
	n.forgetRange(to.ID)
	for i := range n.fingers {
		if n.fingers[i].ID == to.ID {
			n.fingers[i] = Peer{} // refreshed by fix-fingers
		}
	}
	if l.confirming && to.ID == l.owner.ID {
		n.confirmNext(l, Peer{})
		return
	}
	n.advanceLookup(l)
}

// finishLookup ends a lookup and acts on its result.
func (n *Node) finishLookup(l *lookup, owner Peer, succs []Peer, err error) {
	if n.lookups[l.id] != l {
		return
	}
	delete(n.lookups, l.id)
	for id, req := range n.pending {
		if req.kind == reqFind && req.lookup == l.id {
			delete(n.pending, id)
		}
	}
	switch l.purpose {
	case purposeUser:
		n.emit(LookupDone{ReqID: l.id, Key: l.key, Owner: owner, Succs: clonePeers(succs), Hops: l.hops, Err: err})
	case purposeFinger:
		if err == nil {
			n.setFinger(l.finger, owner)
		}
	case purposeJoin:
		if err != nil {
			if !n.joinFallback() {
				n.retryJoin()
			}
		} else {
			n.joinFound(owner)
		}
	case purposeProbe:
		if err == nil {
			n.considerProbe(owner)
		}
	}
}

// considerProbe adopts a probe's answer if it is closer than our successor.
func (n *Node) considerProbe(o Peer) {
	b, ok := n.bestSucc()
	if !ok || o.IsZero() || o.ID == n.self.ID || o.ID == b.ID || !Between(n.self.ID, o.ID, b.ID) {
		return
	}
	n.request(o, NotifyStabilize, ID{}, request{kind: reqAdopt, chain: 1})
}
