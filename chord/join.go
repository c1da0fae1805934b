package chord

import "slices"

// joinState tracks a join in progress.
type joinState struct {
	boots   []Peer
	attempt int
	retryAt uint64 // tick of the next attempt; 0 when one is running
	noRing  bool   // some peer answered that it is not in a ring
	ring    bool   // some peer in a ring answered
	// members are the peers that answered as ring members. If the lookup
	// fails (the ring has a hole: the nodes before our position lost all
	// their successors), the closest of them after us is our successor
	// candidate: stabilize then walks back to the true one.
	members []Peer
}

// Join asks the ring, through the given bootstrap peers (tried in order), for
// this node's successor with a real lookup, then copies that successor's list
// (Zave's corrected join). The node is Linked once it has the list and a
// Member once its successor accepts it; the events say when. Join also
// rejoins a node that was stranded or restarted.
func (n *Node) Join(bootstraps ...Peer) error {
	if n.status == StatusLeft {
		return ErrLeft
	}
	var boots []Peer
	for _, b := range bootstraps {
		if !b.IsZero() && b.ID != n.self.ID && !slices.ContainsFunc(boots, func(p Peer) bool { return p.ID == b.ID }) {
			boots = append(boots, b)
		}
	}
	if len(boots) == 0 {
		return ErrNoBootstrap
	}
	n.reset()
	n.status = StatusJoining
	n.startJoin(boots)
	return nil
}

func (n *Node) startJoin(boots []Peer) {
	n.join = &joinState{boots: boots, attempt: 1}
	n.joinLookup()
}

// joinLookup looks up successor(self+1): the same as successor(self) unless an
// earlier incarnation of this node is still in the ring, which must not be
// taken for our own successor.
func (n *Node) joinLookup() {
	l := n.newLookup(n.self.ID.AddPow2(0), purposeJoin)
	l.entries = clonePeers(n.join.boots)
	n.advanceLookup(l)
}

// joinFound continues a join once the lookup has named the successor.
func (n *Node) joinFound(owner Peer) {
	if n.join == nil || n.status != StatusJoining {
		return
	}
	n.request(owner, NotifyJoin, ID{}, request{kind: reqJoin})
}

// joinFallback is used when the join lookup failed: ask the closest member
// (clockwise after us) that answered during the lookup. Its predecessor and
// hints lead stabilize to our true successor.
func (n *Node) joinFallback() bool {
	j := n.join
	if j == nil || len(j.members) == 0 {
		return false
	}
	best := j.members[0]
	for _, p := range j.members[1:] {
		if Distance(n.self.ID, p.ID).Less(Distance(n.self.ID, best.ID)) {
			best = p
		}
	}
	j.members = nil
	n.joinFound(best)
	return true
}

// retryJoin starts the join over at the next tick (so that a ring that is
// not there is not asked in a tight loop), or gives up with JoinFailed.
func (n *Node) retryJoin() {
	j := n.join
	if j == nil || n.status != StatusJoining {
		return
	}
	if j.attempt >= n.cfg.JoinAttempts {
		n.join = nil
		err := ErrJoinTimeout
		if j.noRing && !j.ring {
			err = ErrNoRing
		}
		n.emit(JoinFailed{Err: err})
		return
	}
	j.attempt++
	j.retryAt = n.now + 1
}

// joinDue runs a join attempt whose time has come (from Tick).
func (n *Node) joinDue() {
	if j := n.join; j != nil && n.status == StatusJoining && j.retryAt != 0 && n.now >= j.retryAt {
		j.retryAt = 0
		n.joinLookup()
	}
}
