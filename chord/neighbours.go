package chord

// Neighbours: the predecessor, the successor list, their TTLs, and the
// memory of dead peers.

// provesMembership reports whether m shows that its sender is alive and in a
// ring. A joining node (or a restarted one, under its old ID) also sends
// lookups and join requests, and answers lookups with nothing; those must not
// keep it in anyone's successor list, or a neighbour that is no longer in the
// ring would never be declared dead.
func provesMembership(m Message) bool {
	switch m.Type {
	case FindSuccessor, NotifyJoin:
		return false
	case FoundSuccessor:
		return m.Payload.Done || len(m.Payload.Next) > 0
	}
	return true
}

// heard applies the TTL rule: any message from a ring member proves it alive.
func (n *Node) heard(p Peer) {
	if _, ok := n.ttl[p.ID]; ok {
		n.ttl[p.ID] = n.cfg.MaxTTL
	}
	delete(n.dead, p.ID)
}

func (n *Node) isDead(id ID) bool {
	_, ok := n.dead[id]
	return ok
}

// markDead records that p is gone and removes it from every table.
func (n *Node) markDead(p Peer, left bool) {
	if p.ID == n.self.ID {
		return
	}
	n.dead[p.ID] = n.now
	delete(n.notifiers, p.ID)
	n.forgetRange(p.ID)
	for i := range n.fingers {
		if n.fingers[i].ID == p.ID {
			n.fingers[i] = Peer{}
		}
	}
	if n.pred.ID == p.ID {
		n.setPred(Peer{})
	}
	if i := n.succIndex(p.ID); i >= 0 {
		l := append(clonePeers(n.succ[:i]), n.succ[i+1:]...)
		n.setSuccs(l)
	}
	n.emit(PeerDead{Peer: p, Left: left})
}

func (n *Node) succIndex(id ID) int {
	for i, s := range n.succ {
		if s.ID == id {
			return i
		}
	}
	return -1
}

// alone reports whether the node is a ring of its own.
func (n *Node) alone() bool { return len(n.succ) == 1 && n.succ[0].ID == n.self.ID }

// bestSucc is the first successor not known to be dead.
func (n *Node) bestSucc() (Peer, bool) {
	for _, s := range n.succ {
		if !n.isDead(s.ID) {
			return s, true
		}
	}
	return Peer{}, false
}

// setPred changes the predecessor and tells the application its range moved.
func (n *Node) setPred(p Peer) {
	if p.ID == n.pred.ID {
		return
	}
	old := n.pred
	n.pred = p
	if !p.IsZero() {
		n.ttl[p.ID] = n.cfg.MaxTTL
	}
	from := p
	if p.IsZero() && n.alone() {
		from = n.self // a lone node owns the whole ring
	}
	n.emitRange(old, from)
	n.pruneTTL()
}

func (n *Node) emitRange(old, from Peer) {
	n.emit(RangeChanged{From: from, OldFrom: old, To: n.self})
}

// setSuccs installs a new successor list and starts TTLs for new entries.
func (n *Node) setSuccs(l []Peer) {
	if samePeers(l, n.succ) {
		return
	}
	n.succ = l
	for _, s := range l {
		if _, ok := n.ttl[s.ID]; !ok && s.ID != n.self.ID {
			n.ttl[s.ID] = n.cfg.MaxTTL
		}
	}
	n.pruneTTL()
	n.emit(SuccessorsChanged{Succs: clonePeers(l)})
	if len(l) == 0 && n.status >= StatusLinked {
		n.strand()
	}
}

// pruneTTL forgets TTLs of peers that are no longer neighbours.
func (n *Node) pruneTTL() {
	for id := range n.ttl {
		if id != n.pred.ID && n.succIndex(id) < 0 {
			delete(n.ttl, id)
		}
	}
}

// buildList is Zave's successor-list copy: [first] + rest, cut at this node
// (the list went round the ring), without duplicates, dead or zero entries or
// anything out of clockwise order, at most r long. It is the only way a list
// is built, so every list is ordered whatever peers send. wrapped reports
// that the copy reached this node, i.e. the list holds every other node.
func (n *Node) buildList(first Peer, rest []Peer) (list []Peer, wrapped bool) {
	if first.IsZero() || first.ID == n.self.ID {
		return nil, false
	}
	out := make([]Peer, 0, n.r)
	out = append(out, first)
	last := first.ID
	for _, p := range rest {
		if len(out) >= n.r {
			break
		}
		if p.ID == n.self.ID {
			wrapped = true
			break
		}
		if p.IsZero() || n.isDead(p.ID) || !Between(last, p.ID, n.self.ID) {
			continue
		}
		out = append(out, p)
		last = p.ID
	}
	return out, wrapped
}

// liveSuccs returns a copy of the successor list without peers known dead.
func (n *Node) liveSuccs() []Peer {
	out := make([]Peer, 0, len(n.succ))
	for _, s := range n.succ {
		if !n.isDead(s.ID) {
			out = append(out, s)
		}
	}
	return out
}
