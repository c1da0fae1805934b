package chord

// Fingers only speed lookups up; correctness never depends on them. Those
// whose start falls within the successor list (or behind us, up to the
// predecessor) are read off locally every finger tick; the others are
// refreshed by lookups, one distinct finger at a time, skipping the run of
// fingers a single answer covers. With N nodes that is about log2(N/r)
// lookups per full refresh.

// FixFingers refreshes fingers. Tick calls it every FingerEvery ticks.
func (n *Node) FixFingers() {
	if n.status != StatusLinked && n.status != StatusMember {
		return
	}
	n.fingersFromList()
	running := 0
	for _, l := range n.lookups {
		if l.purpose == purposeFinger {
			running++
		}
	}
	for ; running < n.cfg.FingersPerTick; running++ {
		i, ok := n.nextFingerToFix()
		if !ok {
			break
		}
		l := n.newLookup(n.fingerStart(i), purposeFinger)
		l.finger = i
		n.startLocal(l)
	}
	if n.selfCheckDue && n.now >= n.lastSelfCheck+uint64(n.cfg.SelfCheckEvery) {
		n.selfCheckDue = false
		n.lastSelfCheck = n.now
		n.selfCheck()
	}
}

// selfCheck looks up our own successor through the farthest finger, once per
// pass over the fingers (at most every SelfCheckEvery ticks). Stabilize only learns of nodes that notify our
// successor; after concurrent joins two nodes can each skip the other (a
// before b, a's successor after b, b's successor after a's) and stay so until
// some lookup from afar names the node in between. The answer is adopted if
// it is closer than our successor (as Probe does).
func (n *Node) selfCheck() {
	in := map[ID]bool{n.self.ID: true}
	for _, s := range n.succ {
		in[s.ID] = true
	}
	for i := Bits - 1; i >= 0; i-- {
		if f := n.fingers[i]; !f.IsZero() && !in[f.ID] && !n.isDead(f.ID) {
			n.Probe(f)
			return
		}
	}
}

func (n *Node) fingerStart(i int) ID { return n.starts[i] }

// fingersFromList fills the fingers the node can read off its own tables.
func (n *Node) fingersFromList() {
	if n.alone() {
		for i := range n.fingers {
			n.fingers[i] = n.self
		}
		return
	}
	live := n.liveSuccs()
	j, prev := 0, n.self.ID
	for i := 0; i < Bits && j < len(live); i++ {
		st := n.fingerStart(i)
		for j < len(live) && !BetweenRightIncl(prev, st, live[j].ID) {
			prev = live[j].ID
			j++
		}
		if j < len(live) {
			n.fingers[i] = live[j]
		}
	}
	if !n.pred.IsZero() {
		for i := Bits - 1; i >= 0 && BetweenRightIncl(n.pred.ID, n.fingerStart(i), n.self.ID); i-- {
			n.fingers[i] = n.self
		}
	}
}

// covered reports whether finger i is known without a lookup, given the last
// live successor.
func (n *Node) covered(i int, last Peer) bool {
	st := n.fingerStart(i)
	if !n.pred.IsZero() && BetweenRightIncl(n.pred.ID, st, n.self.ID) {
		return true
	}
	return !last.IsZero() && BetweenRightIncl(n.self.ID, st, last.ID)
}

// nextFingerToFix returns the next finger that needs a lookup, moving the
// cursor past the fingers its current value covers.
func (n *Node) nextFingerToFix() (int, bool) {
	var last Peer
	if live := n.liveSuccs(); len(live) > 0 {
		last = live[len(live)-1]
	}
	for range Bits {
		i := n.fingerNext
		if i >= Bits {
			i = 0
			n.selfCheckDue = true // a full pass over the fingers
		}
		n.fingerNext = i + 1
		if n.covered(i, last) {
			continue
		}
		if f := n.fingers[i]; !f.IsZero() {
			st := n.fingerStart(i)
			for n.fingerNext < Bits && inClosed(st, n.fingerStart(n.fingerNext), f.ID) {
				n.fingerNext++
			}
		}
		return i, true
	}
	return 0, false
}

// setFinger records owner as successor(start(i)), and for every later finger
// whose start lies in (start(i), owner] too.
func (n *Node) setFinger(i int, owner Peer) {
	if i < 0 || i >= Bits || owner.IsZero() {
		return
	}
	st := n.fingerStart(i)
	n.fingers[i] = owner
	for j := i + 1; j < Bits && inClosed(st, n.fingerStart(j), owner.ID); j++ {
		n.fingers[j] = owner
	}
}

// inClosed reports whether x lies in the clockwise interval [a, b], which is
// just {a} when a == b. (Not (a, b]: that would be the whole ring when a node
// sits exactly on a finger's start.)
func inClosed(a, x, b ID) bool {
	return x == a || x == b || Between(a, x, b) && a != b
}
