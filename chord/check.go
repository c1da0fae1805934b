package chord

// Check is one check tick of Flowchain's TTL rule: count down the TTL of the
// predecessor and of every successor, declare dead those that reach zero, then
// ping the survivors (CHECK_PREDECESSOR, CHECK_SUCCESSOR). Any message from a
// neighbour, the CHECK_TTL replies included, sets its TTL back to MaxTTL.
func (n *Node) Check() {
	if n.status != StatusLinked && n.status != StatusMember {
		return
	}
	var died []Peer
	counted := make(map[ID]bool, len(n.succ)+1)
	countDown := func(p Peer) {
		if p.IsZero() || p.ID == n.self.ID || counted[p.ID] {
			return // once per tick, even when the predecessor is a successor too
		}
		counted[p.ID] = true
		t, ok := n.ttl[p.ID]
		if !ok {
			t = n.cfg.MaxTTL
		}
		t--
		n.ttl[p.ID] = t
		if t <= 0 {
			died = append(died, p)
		}
	}
	countDown(n.pred)
	for _, s := range n.succ {
		countDown(s)
	}
	for _, p := range died {
		n.markDead(p, false)
	}
	if n.status != StatusLinked && n.status != StatusMember {
		return // stranded by those deaths
	}
	if !n.pred.IsZero() {
		n.request(n.pred, CheckPredecessor, ID{}, request{kind: reqCheck})
	}
	for _, s := range n.succ {
		if s.ID != n.self.ID && s.ID != n.pred.ID {
			n.request(s, CheckSuccessor, ID{}, request{kind: reqCheck})
		}
	}
}

// strand handles a node whose successors are all dead: outside Zave's
// assumptions, so it leaves the ring and rejoins through any peer it still
// knows; the application hears Stranded (and JoinFailed if that fails too).
// A node that knows no live peer at all is the last of its ring: it carries
// on alone (the application's probes merge it with any other ring later).
func (n *Node) strand() {
	cands := n.knownPeers()
	n.emit(Stranded{})
	if len(cands) == 0 {
		n.Create()
		return
	}
	n.reset()
	n.status = StatusJoining
	n.startJoin(cands)
}

// knownPeers lists the live peers the node knows besides its successors, the
// nearest (clockwise) first: rejoin candidates of last resort.
func (n *Node) knownPeers() []Peer {
	seen := map[ID]bool{n.self.ID: true}
	var out []Peer
	add := func(p Peer) {
		if p.IsZero() || seen[p.ID] || n.isDead(p.ID) {
			return
		}
		seen[p.ID] = true
		out = append(out, p)
	}
	add(n.pred)
	for _, f := range n.fingers {
		add(f)
	}
	for _, id := range sortedIDs(n.notifiers) {
		add(n.notifiers[id].peer)
	}
	return out
}
