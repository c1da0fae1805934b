package chord

import "fmt"

// Status is where a node stands in the ring.
type Status int

const (
	// StatusIdle: created, neither Create nor Join called yet.
	StatusIdle Status = iota
	// StatusJoining: looking for its successor; no successor list yet.
	StatusJoining
	// StatusLinked: has a successor list but its successor has not accepted it
	// yet (an "appendage" in Zave's terms).
	StatusLinked
	// StatusMember: its successor has accepted it as predecessor.
	StatusMember
	// StatusLeft: Leave was called; the node ignores everything.
	StatusLeft
)

func (s Status) String() string {
	switch s {
	case StatusIdle:
		return "idle"
	case StatusJoining:
		return "joining"
	case StatusLinked:
		return "linked"
	case StatusMember:
		return "member"
	case StatusLeft:
		return "left"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// Node is one Chord node as a deterministic state machine. It is not safe for
// concurrent use: the runtime loop owns it, feeds it with Step and Tick, and
// sends what Ready returns.
type Node struct {
	cfg    Config
	self   Peer
	status Status
	now    uint64 // ticks since New
	r      int    // current successor list length

	pred    Peer
	succ    []Peer
	fingers [Bits]Peer
	starts  [Bits]ID // finger starts: self + 2^i

	ttl       map[ID]int      // neighbours (pred, successors) → TTL
	dead      map[ID]uint64   // peers known dead → tick marked
	notifiers map[ID]notifier // recent NOTIFY_SUCCESSOR senders

	nextReq   uint64
	pending   map[uint64]*request
	late      map[uint64]lateReq // timed out, reply still welcome (requests.go)
	lateOrder []uint64           // ids in late, oldest first
	lookups   map[uint64]*lookup
	ranges    knownRanges // owners' ranges, to ask them first (ranges.go)

	fingerNext    int  // next finger index fix-fingers looks at
	selfCheckDue  bool // a pass over the fingers ended: time for selfCheck
	lastSelfCheck uint64
	join          *joinState

	out Ready
}

type notifier struct {
	peer    Peer
	expires uint64
}

// Ready is what the node wants done: messages to send and events for the
// application, in order.
type Ready struct {
	Messages []Message
	Events   []Event
}

// New returns an idle node; call Create or Join next.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := &Node{
		cfg:       cfg,
		self:      cfg.Self,
		ttl:       make(map[ID]int),
		dead:      make(map[ID]uint64),
		notifiers: make(map[ID]notifier),
		pending:   make(map[uint64]*request),
		late:      make(map[uint64]lateReq),
		lookups:   make(map[uint64]*lookup),
		nextReq:   cfg.RequestIDBase,
	}
	for i := range n.starts {
		n.starts[i] = n.self.ID.AddPow2(i)
	}
	n.r = cfg.R
	if n.r == 0 {
		n.r = cfg.MinR
	}
	return n, nil
}

// Ready returns and clears what the node has produced since the last call.
func (n *Node) Ready() Ready {
	rd := n.out
	n.out = Ready{}
	return rd
}

// HasReady reports whether Ready would return anything.
func (n *Node) HasReady() bool { return len(n.out.Messages) > 0 || len(n.out.Events) > 0 }

// Tick advances the node's clock by one tick and runs whatever is due:
// timeouts, check, stabilize, fix-fingers.
func (n *Node) Tick() {
	if n.status == StatusIdle || n.status == StatusLeft {
		return
	}
	n.now++
	n.expire()
	n.joinDue()
	if n.now%uint64(n.cfg.CheckEvery) == 0 {
		n.Check()
	}
	if n.now%uint64(n.cfg.StabilizeEvery) == 0 {
		n.Stabilize()
	}
	if n.now%uint64(n.cfg.FingerEvery) == 0 {
		n.FixFingers()
	}
}

// Create makes the node a ring of its own.
func (n *Node) Create() {
	if n.status == StatusLeft {
		return
	}
	n.reset()
	n.status = StatusMember
	n.setSuccs([]Peer{n.self})
	n.emit(Joined{Succ: n.self})
	n.emitRange(Peer{}, n.self)
}

// Step processes one incoming message. A message the node cannot use is
// ignored and reported as a ProtocolError event; Step never panics on input.
func (n *Node) Step(m Message) {
	if n.status == StatusLeft {
		return
	}
	if err := n.validate(m); err != nil {
		n.emit(ProtocolError{Msg: m, Err: err})
		return
	}
	if provesMembership(m) {
		n.heard(m.From)
	}
	if m.Type.isReply() {
		matches := func(req *request) bool {
			return req != nil && req.to.ID == m.From.ID && req.replyType() == m.Type
		}
		if req := n.pending[m.ID]; matches(req) {
			delete(n.pending, m.ID)
			n.onReply(m, req)
			return
		}
		if l, ok := n.late[m.ID]; ok && matches(l.req) {
			delete(n.late, m.ID) // lateOrder drops the id in expireLate
			n.onLateReply(m, l.req)
			return
		}
		n.emit(ProtocolError{Msg: m, Err: fmt.Errorf("%w: %s %d from %s matches no request", ErrUnexpected, m.Type, m.ID, m.From)})
		return
	}
	switch m.Type {
	case FindSuccessor:
		n.onFindSuccessor(m)
	case NotifyStabilize, NotifyJoin:
		n.onStabilizeRequest(m)
	case NotifySuccessor:
		n.onNotify(m)
	case NotifyEdge:
		n.onEdge(m)
	case CheckPredecessor, CheckSuccessor:
		if n.status >= StatusLinked {
			n.send(m.From, CheckTTL, m.ID, ID{}, Payload{})
		}
	case AppMessage:
		n.emit(Delivered{Msg: m})
	}
}

func (n *Node) onReply(m Message, req *request) {
	switch req.kind {
	case reqStabilize, reqJoin, reqAdopt:
		n.onPredecessorReply(m, req)
	case reqExtend:
		n.onExtendReply(m, req)
	case reqFind:
		n.onFoundSuccessor(m, req)
	case reqCheck:
		// heard() already refreshed the TTL; nothing else to do.
	}
}

// validate rejects what no handler can use. Peers inside payloads are
// sanitized by the handlers themselves.
func (n *Node) validate(m Message) error {
	switch {
	case !m.Type.known():
		return fmt.Errorf("%w: unknown type %q", ErrMalformed, m.Type)
	case m.From.IsZero():
		return fmt.Errorf("%w: %s from the zero ID", ErrMalformed, m.Type)
	case m.From.ID == n.self.ID:
		return fmt.Errorf("%w: %s claims to come from this node", ErrMalformed, m.Type)
	case !m.To.IsZero() && m.To.ID != n.self.ID:
		return fmt.Errorf("%w: %s addressed to %s", ErrUnexpected, m.Type, m.To)
	case len(m.Payload.Succs) > maxListLen || len(m.Payload.Next) > maxListLen:
		return fmt.Errorf("%w: %s carries too many peers", ErrMalformed, m.Type)
	case n.status == StatusIdle:
		return fmt.Errorf("%w: %s before Create or Join", ErrUnexpected, m.Type)
	}
	return nil
}

func (n *Node) emit(e Event) { n.out.Events = append(n.out.Events, e) }

func (n *Node) send(to Peer, t MsgType, id uint64, key ID, p Payload) {
	n.out.Messages = append(n.out.Messages, Message{Type: t, ID: id, From: n.self, To: to, Key: key, Payload: p})
}

// reset forgets the ring (before Create or Join) but keeps the clock and the
// request counter, so late replies cannot match new requests.
func (n *Node) reset() {
	for _, id := range sortedKeys(n.lookups) {
		if l := n.lookups[id]; l.purpose == purposeUser {
			n.emit(LookupDone{ReqID: l.id, Key: l.key, Err: ErrNotMember})
		}
		delete(n.lookups, id)
	}
	clear(n.pending)
	clear(n.late) // a late answer about the old ring must not shape the new one
	n.lateOrder = nil
	n.succ = nil
	if !n.pred.IsZero() {
		n.setPred(Peer{})
	}
	n.fingers = [Bits]Peer{}
	n.ranges = nil
	clear(n.ttl)
	n.join = nil
}

// expire runs the timeouts due at this tick.
func (n *Node) expire() {
	// Timeouts fire in request-id order: map order would make the node's
	// output depend on Go's map randomisation.
	for _, id := range sortedKeys(n.pending) {
		if req := n.pending[id]; req != nil && n.now >= req.deadline {
			delete(n.pending, id)
			n.onTimeout(id, req)
		}
	}
	n.expireLate()
	for _, id := range sortedKeys(n.lookups) {
		if l := n.lookups[id]; l != nil && n.now >= l.deadline {
			n.finishLookup(l, Peer{}, nil, ErrLookupTimeout)
		} else if l != nil && l.stalled && n.now >= l.stallUntil {
			n.finishLookup(l, Peer{}, nil, ErrNoRoute)
		}
	}
	for id, nt := range n.notifiers {
		if n.now >= nt.expires {
			delete(n.notifiers, id)
		}
	}
	for id, t := range n.dead {
		if n.now >= t+uint64(n.cfg.DeadMemory) {
			delete(n.dead, id)
		}
	}
}
