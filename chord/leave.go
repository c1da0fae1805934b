package chord

// Leave departs gracefully: the predecessor and the successor get NOTIFY_EDGE
// with our predecessor and successor list, so they can close the ring at once
// instead of waiting for TTLs to run out. The application then hands its keys
// to the successor named in the Left event. Afterwards the node ignores
// everything.
func (n *Node) Leave() {
	if n.status == StatusLeft {
		return
	}
	s, ok := n.bestSucc()
	if n.status >= StatusLinked && ok && s.ID != n.self.ID {
		p := Payload{Pred: n.pred, Succs: n.liveSuccs()}
		n.send(s, NotifyEdge, 0, ID{}, p)
		if !n.pred.IsZero() && n.pred.ID != s.ID {
			n.send(n.pred, NotifyEdge, 0, ID{}, p)
		}
	} else {
		s = Peer{}
	}
	n.reset()
	n.status = StatusLeft
	n.emit(Left{Succ: s})
}

// onEdge closes the ring around a leaving node: its predecessor splices in the
// leaver's successor list, its successor takes the leaver's predecessor.
func (n *Node) onEdge(m Message) {
	if n.status != StatusLinked && n.status != StatusMember {
		return
	}
	l := m.From
	if i := n.succIndex(l.ID); i >= 0 {
		rest := append(clonePeers(n.succ[i+1:]), m.Payload.Succs...)
		var list []Peer
		if i > 0 {
			list, _ = n.buildList(n.succ[0], append(clonePeers(n.succ[1:i]), rest...))
		} else {
			for j, p := range rest {
				if p.ID != l.ID && !p.IsZero() {
					list, _ = n.buildList(p, rest[j+1:])
					break
				}
			}
		}
		if len(list) == 0 {
			list = []Peer{n.self} // the leaver was the only other node
		}
		n.setSuccs(list)
	}
	if n.pred.ID == l.ID {
		p := m.Payload.Pred
		if p.IsZero() || p.ID == n.self.ID || p.ID == l.ID || n.isDead(p.ID) {
			p = Peer{}
		}
		n.setPred(p)
	}
	n.markDead(l, true)
}
