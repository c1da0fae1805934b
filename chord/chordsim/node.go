package chordsim

import (
	"crypto/ed25519"
	"errors"
	"slices"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/chord/peercache"
)

// simNode is one simulated process: the chord core plus the little
// application around it that a real node would have — a key store driven by
// range changes, replication, a peer cache for rejoining, and probes for a
// second ring.
type simNode struct {
	s    *Sim
	name string
	peer chord.Peer
	pub  ed25519.PublicKey
	core *chord.Node

	alive   bool
	left    bool
	inc     int // incarnation: bumped by crash and restart
	ticking int // incarnation whose tick chain is scheduled (0: none)
	ticks   int
	side    int // partition side

	// flagged: its successors all died at once (outside the protocol's
	// assumptions); OneLiveSuccessor does not count it until it recovers.
	flagged bool
	dirty   bool     // its list, status or store changed in this step
	noRing  int      // consecutive joins that found no ring
	leftTo  *simNode // after a graceful leave: its successor then
	fake    *fakeState

	cache   *peercache.Cache
	cached  map[chord.ID]bool
	suspect map[chord.ID]bool

	store   keyStore
	lookups map[uint64]uint64 // core request id → client op
}

func newSimNode(s *Sim, name string, p chord.Peer, pub ed25519.PublicKey) *simNode {
	c, err := peercache.New(pub, 0)
	if err != nil {
		panic(err) // our own generated key: cannot happen
	}
	return &simNode{
		s: s, name: name, peer: p, pub: pub, cache: c,
		cached:  make(map[chord.ID]bool),
		suspect: make(map[chord.ID]bool),
		store:   newKeyStore(),
		lookups: make(map[uint64]uint64),
	}
}

// start runs a fresh process (first start or restart).
func (n *simNode) start() {
	n.inc++
	cfg := n.s.cfg
	cfg.Self = n.peer
	cfg.RequestIDBase = uint64(n.inc)<<40 + 1
	core, err := chord.New(cfg)
	if err != nil {
		panic(err)
	}
	n.core = core
	n.alive, n.left, n.flagged = true, false, false
	n.store.rng = chord.RangeChanged{}
	clear(n.lookups)
	n.s.startTicks(n)
}

func (n *simNode) inRing() bool {
	if n.core == nil {
		return false
	}
	st := n.status()
	return st == chord.StatusLinked || st == chord.StatusMember
}

// The checker reads a node through these, so that its own tests can feed it
// broken states the protocol would never produce (see checker_test.go).
type fakeState struct {
	succs  []chord.Peer
	pred   chord.Peer
	status chord.Status
	r      int
}

func (n *simNode) succs() []chord.Peer {
	if n.fake != nil {
		return n.fake.succs
	}
	return n.core.Successors()
}

func (n *simNode) pred() chord.Peer {
	if n.fake != nil {
		return n.fake.pred
	}
	return n.core.Pred()
}

func (n *simNode) status() chord.Status {
	if n.fake != nil {
		return n.fake.status
	}
	return n.core.Status()
}

func (n *simNode) r() int {
	if n.fake != nil {
		return n.fake.r
	}
	return n.core.R()
}

// tick is a scheduled tick: the core's, then the application's chores.
func (n *simNode) tick() {
	n.core.Tick()
	n.ticks++
	if n.inRing() {
		if n.ticks%n.s.opt.ReplicateEvery == 0 {
			n.replicate()
		}
		if n.ticks%(2*n.s.opt.ReplicateEvery) == 0 {
			n.repair()
		}
		if n.ticks%n.s.opt.ProbeEvery == 0 {
			n.probe()
		}
	}
	n.drain()
}

// drain sends what the core produced and handles its events (which may
// produce more).
func (n *simNode) drain() {
	for n.alive && n.core.HasReady() {
		rd := n.core.Ready()
		for _, m := range rd.Messages {
			n.s.send(n, m)
		}
		for _, e := range rd.Events {
			n.onEvent(e)
		}
	}
}

func (n *simNode) onEvent(e chord.Event) {
	s := n.s
	switch e := e.(type) {
	case chord.RangeChanged:
		n.relabel(e)
		if e.Known() {
			n.remember([]chord.Peer{e.From})
		}
		n.dirty = true
	case chord.SuccessorsChanged:
		n.remember(e.Succs)
		n.dirty = true
	case chord.Joined:
		n.dirty = true
	case chord.PeerDead:
		n.suspect[e.Peer.ID] = true
	case chord.LookupDone:
		s.lookupDone(n, e)
	case chord.Stranded:
		s.Stats.Stranded++
		s.crashStep = true // others lose a ring member; as a crash would
		n.dirty = true
	case chord.JoinFailed:
		n.dirty = true
		if errors.Is(e.Err, chord.ErrNoRing) {
			n.noRing++
		} else {
			n.noRing = 0
		}
		if n.noRing >= 3 {
			// Nobody it knows has been in a ring for three attempts: start
			// a ring; probes merge it with any other ring later. Two rings
			// are then expected until the ring is Ideal again.
			s.flag("no ring reachable: a node created its own")
			n.noRing = 0
			s.outside, s.outsideAt = true, s.now
			n.core.Create()
			return
		}
		n.rejoin()
	case chord.Left:
		n.leftTo = n.handOver(e.Succ)
		n.alive, n.left = false, true
		s.crashStep = true
		n.dirty = true
	case chord.ProtocolError:
		s.Stats.ProtocolErrors++
	}
}

// remember puts peers in the peer cache with the latency this node sees.
func (n *simNode) remember(ps []chord.Peer) {
	for _, p := range ps {
		delete(n.suspect, p.ID)
		if p.ID == n.peer.ID || n.cached[p.ID] {
			continue
		}
		if o := n.s.nodes[p.ID]; o != nil {
			n.cached[p.ID] = true
			n.cache.Add(o.pub, p, durationOf(n.s.latency(n, o)))
		}
	}
}

// rejoin joins through the peer cache, low latency first, skipping peers
// seen dead when others remain.
func (n *simNode) rejoin() {
	skip := func(id chord.ID) bool { return id == n.peer.ID || n.suspect[id] }
	cands := n.cache.Candidates(16, skip)
	if len(cands) == 0 {
		cands = n.cache.Candidates(16, func(id chord.ID) bool { return id == n.peer.ID })
	}
	if !slices.ContainsFunc(cands, func(p chord.Peer) bool { o := n.s.nodes[p.ID]; return o.alive && o.inRing() }) {
		// No peer it knows is alive in a ring (its only bootstrap died, say).
		// An operator would give it another address; the simulation does.
		if mem := n.s.members(); len(mem) > 0 {
			n.s.flag("isolated node given a new bootstrap")
			b := mem[n.s.clientRand.IntN(len(mem))]
			n.remember([]chord.Peer{b.peer})
			cands = append([]chord.Peer{b.peer}, cands...)
		}
	}
	if len(cands) == 0 {
		return
	}
	n.core.Join(cands...)
}

// probe asks a random cached peer that is not among our successors for our
// successor, which merges a second ring once a partition heals.
func (n *simNode) probe() {
	in := map[chord.ID]bool{n.peer.ID: true}
	for _, p := range n.core.Successors() {
		in[p.ID] = true
	}
	var cands []chord.Peer
	for _, e := range n.cache.Entries() {
		if !in[e.Peer.ID] {
			cands = append(cands, e.Peer)
		}
	}
	if len(cands) > 0 {
		n.core.Probe(cands[n.s.schedRand.IntN(len(cands))])
	}
}
