package chordsim

import (
	"container/heap"
	"crypto/ed25519"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/flownode/flownode/chord"
)

// Options configure a simulation.
type Options struct {
	Seed uint64
	// Round is the tick period in time units (default 100).
	Round int64
	// Replicas is k, the copies of each key (default 3).
	Replicas int
	// ReplicateEvery and ProbeEvery are the periods, in ticks, of replica
	// pushes and of probing a cached peer for a second ring (defaults 2, 6).
	ReplicateEvery, ProbeEvery int
	// NoSafetyChecks skips the per-step checks (benchmarks on big rings).
	NoSafetyChecks bool
	// TraceLen is how many recent trace lines a failure report shows (64).
	TraceLen int
}

func (o Options) withDefaults() Options {
	if o.Round <= 0 {
		o.Round = 100
	}
	if o.Replicas <= 0 {
		o.Replicas = 3
	}
	if o.ReplicateEvery <= 0 {
		o.ReplicateEvery = 2
	}
	if o.ProbeEvery <= 0 {
		o.ProbeEvery = 6
	}
	if o.TraceLen <= 0 {
		o.TraceLen = 64
	}
	return o
}

// Sim is one simulated network of chord nodes. It is single-threaded.
type Sim struct {
	opt Options
	now int64
	seq uint64
	q   eventQueue

	auto   bool     // ticks and delays run by the scheduler
	manual []packet // messages awaiting an explicit deliver (manual mode)

	netRand, schedRand, clientRand *rand.Rand
	net                            netConfig
	cfg                            chord.Config // template for new nodes

	nodes  map[chord.ID]*simNode
	byName map[string]*simNode
	sorted []*simNode // every node ever created, by ID

	partitioned bool
	// outside: the protocol's assumptions were broken — a partition, or r
	// consecutive failures that left a node without a live successor. Until
	// the ring is Ideal again, with its aftermath over (outsideAt: the heal
	// or the failure), OneLiveSuccessor and OneOrderedRing are not counted:
	// Zave's inductive invariant is gone, lists skip live nodes, two rings
	// may form. OrderedSuccessorLists and Placement still are, and Converge
	// demands Ideal in the end.
	outside     bool
	outsideAt   int64
	wentOutside bool

	steps     int
	crashStep bool // the current step crashed nodes
	violation *Violation
	flags     map[string]int // outside-assumption events, by kind
	tr        []traceEntry
	Stats     Stats

	joinSeq         int  // names of nodes added by joins and burst
	checkLookups    bool // lookups must return the oracle's owner (after convergence)
	LastIdealRounds int  // rounds Converge took to reach Ideal

	keys    map[chord.ID]*keyRecord
	ops     map[uint64]*clientOp
	nextOp  uint64
	pending int // client ops not finished
}

// Stats counts what happened in a run.
type Stats struct {
	Messages       map[chord.MsgType]int
	Dropped, Duped int
	ProtocolErrors int
	Stranded       int
	Lookups        []LookupResult
	Steps          int
}

// LookupResult is one finished client lookup.
type LookupResult struct {
	Hops    int
	Correct bool
	Err     error
}

// New returns an empty simulation.
func New(opt Options) *Sim {
	opt = opt.withDefaults()
	s := &Sim{
		opt:        opt,
		netRand:    rand.New(rand.NewPCG(opt.Seed, 1)),
		schedRand:  rand.New(rand.NewPCG(opt.Seed, 2)),
		clientRand: rand.New(rand.NewPCG(opt.Seed, 3)),
		net:        defaultNet(),
		cfg:        chord.DefaultConfig(chord.Peer{}),
		nodes:      make(map[chord.ID]*simNode),
		byName:     make(map[string]*simNode),
		flags:      make(map[string]int),
		keys:       make(map[chord.ID]*keyRecord),
		ops:        make(map[uint64]*clientOp),
	}
	s.Stats.Messages = make(map[chord.MsgType]int)
	return s
}

// Now returns the simulated time.
func (s *Sim) Now() int64 { return s.now }

// Violation returns the first invariant violation, or nil.
func (s *Sim) Violation() *Violation { return s.violation }

// Flags returns the outside-assumption events seen (not violations).
func (s *Sim) Flags() map[string]int { return s.flags }

// NodeID gives a node name its ring ID: a number 0..255 is a position (the
// top byte), for scripts that need a known order; anything else is the SHA-1
// of an ed25519 key derived from the seed and the name, as real nodes do.
func NodeID(seed uint64, name string) chord.ID {
	if v, err := strconv.Atoi(name); err == nil && v >= 0 && v < 256 {
		var id chord.ID
		id[0] = byte(v)
		return id
	}
	return chord.ID(sha1.Sum(nodeKey(seed, name).Public().(ed25519.PublicKey)))
}

func nodeKey(seed uint64, name string) ed25519.PrivateKey {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seed)
	k := sha256.Sum256(append(b[:], name...))
	return ed25519.NewKeyFromSeed(k[:])
}

// node returns the node called name, creating it (idle) if needed.
func (s *Sim) node(name string) *simNode {
	if n := s.byName[name]; n != nil {
		return n
	}
	pub := nodeKey(s.opt.Seed, name).Public().(ed25519.PublicKey)
	id := NodeID(s.opt.Seed, name)
	if other := s.nodes[id]; other != nil {
		return other // two names for one ID: keep the first
	}
	n := newSimNode(s, name, chord.Peer{ID: id, Addr: "sim://" + name}, pub)
	s.nodes[id] = n
	s.byName[name] = n
	i, _ := slices.BinarySearchFunc(s.sorted, id, func(a *simNode, id chord.ID) int { return a.peer.ID.Cmp(id) })
	s.sorted = slices.Insert(s.sorted, i, n)
	return n
}

// live returns the live nodes (running, not left) in ID order.
func (s *Sim) live() []*simNode {
	var out []*simNode
	for _, n := range s.sorted {
		if n.alive {
			out = append(out, n)
		}
	}
	return out
}

// members returns live nodes that are in a ring (have a successor list).
func (s *Sim) members() []*simNode {
	var out []*simNode
	for _, n := range s.sorted {
		if n.alive && n.inRing() {
			out = append(out, n)
		}
	}
	return out
}

// action records a scenario action in the trace.
func (s *Sim) action(format string, args ...any) {
	s.pushTrace(traceEntry{at: s.now, kind: traceAction, info: fmt.Sprintf(format, args...)})
}

func (s *Sim) flag(kind string) { s.flags[kind]++ }

// WentOutside reports whether the run ever left the protocol's assumptions
// (see Sim.outside), during which some safety checks were not counted.
func (s *Sim) WentOutside() bool { return s.wentOutside }

// ---- the event loop ----

type evKind int

const (
	evDeliver evKind = iota
	evTick
	evTimer
)

type event struct {
	at   int64
	seq  uint64
	kind evKind
	node *simNode
	inc  int // the node's incarnation when scheduled
	pkt  packet
	fn   func() // evTimer
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

func (s *Sim) schedule(e *event) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.q, e)
}

func (s *Sim) after(d int64, fn func()) {
	s.schedule(&event{at: s.now + d, kind: evTimer, fn: fn})
}

// runUntil processes events up to time t (inclusive), stopping early at a
// violation. It switches the simulation to automatic mode.
func (s *Sim) runUntil(t int64) {
	s.startAuto()
	for s.violation == nil && s.q.Len() > 0 && s.q[0].at <= t {
		e := heap.Pop(&s.q).(*event)
		if e.at/s.opt.Round != s.now/s.opt.Round {
			// Pings lost in a partition still expire TTLs a few ticks after
			// the heal, so the ring must be Ideal after those.
			if s.outside && !s.partitioned && s.now >= s.outsideAt+int64(s.cfg.MaxTTL+2)*s.opt.Round && s.idealErr() == nil {
				s.outside = false // recovered: back under the assumptions
			}
			if s.outside {
				s.wentOutside = true
			}
		}
		s.now = e.at
		s.process(e)
	}
	if s.violation == nil && s.now < t {
		s.now = t
	}
}

func (s *Sim) process(e *event) {
	switch e.kind {
	case evTimer:
		e.fn()
		s.afterStep(nil)
	case evTick:
		n := e.node
		if !n.alive || n.inc != e.inc {
			return
		}
		n.tick()
		s.afterStep(n)
		s.schedule(&event{at: s.now + s.opt.Round, kind: evTick, node: n, inc: n.inc})
	case evDeliver:
		n := e.node
		if n.left && e.pkt.app != nil && n.leftTo != nil && n.leftTo != n {
			// A transfer to a node that left meanwhile: the leaver's
			// handoff is acknowledged only by its successor, so it passes
			// late transfers on there (the simulation takes that for
			// granted, as it does retries).
			p := e.pkt
			p.from, p.to, p.inc = n, n.leftTo, n.leftTo.inc
			s.transmit(p)
			return
		}
		if !n.alive || n.inc != e.inc {
			return
		}
		s.deliver(n, e.pkt)
		s.afterStep(n)
	}
}

// startAuto schedules the ticks of every live node that has none running.
func (s *Sim) startAuto() {
	if !s.auto {
		s.auto = true
		for _, p := range s.manual {
			s.transmit(p)
		}
		s.manual = nil
	}
	for _, n := range s.sorted {
		s.startTicks(n)
	}
}

func (s *Sim) startTicks(n *simNode) {
	if !s.auto || !n.alive || n.ticking == n.inc {
		return
	}
	n.ticking = n.inc
	s.schedule(&event{at: s.now + 1 + s.schedRand.Int64N(s.opt.Round), kind: evTick, node: n, inc: n.inc})
}

// afterStep runs the safety checks after one step.
func (s *Sim) afterStep(n *simNode) {
	s.steps++
	s.Stats.Steps++
	if !s.opt.NoSafetyChecks && s.violation == nil {
		if v := s.checkSafety(n); v != nil {
			v.Step, v.Time = s.steps, s.now
			s.violation = v
		}
	}
	s.crashStep = false
}
