package chord

import "errors"

// Event is something the application should know about. The concrete types
// are below; switch on them.
type Event interface{ isEvent() }

// Joined: the node's successor has accepted it (or it created a ring).
type Joined struct{ Succ Peer }

// JoinFailed: every join attempt failed; call Join again with other candidates
// (the peer cache has them). Err is ErrNoRing when the peers answered but none
// of them is in a ring: then no ring is reachable and the node may Create
// one (Probe merges rings later).
type JoinFailed struct{ Err error }

// Stranded: every successor is dead. The node tries to rejoin through the peers
// it still knows; if that fails it reports JoinFailed.
type Stranded struct{}

// Left: Leave has told the neighbours; hand the keys to Succ.
type Left struct{ Succ Peer }

// RangeChanged: the node now owns the keys in (From, To]. To is the node
// itself. From is the new predecessor; the zero Peer means "unknown" (keep what
// you hold, own nothing new), From == To means the whole ring (a lone node).
// OldFrom is the previous start, for logging.
type RangeChanged struct{ From, OldFrom, To Peer }

// Known reports whether the range is known.
func (e RangeChanged) Known() bool { return !e.From.IsZero() }

// Contains reports whether key k belongs to the node under this range.
func (e RangeChanged) Contains(k ID) bool {
	return e.Known() && BetweenRightIncl(e.From.ID, k, e.To.ID)
}

// SuccessorsChanged: the successor list changed (replicas live there).
type SuccessorsChanged struct{ Succs []Peer }

// PeerDead: a neighbour's TTL ran out, or it left (Left is true).
type PeerDead struct {
	Peer Peer
	Left bool
}

// LookupDone answers Lookup(ReqID). Owner is successor(Key) and Succs the
// successors that follow it (the replica holders); Hops counts the remote
// nodes queried before the owner was known.
type LookupDone struct {
	ReqID uint64
	Key   ID
	Owner Peer
	Succs []Peer
	Hops  int
	Err   error
}

// Delivered hands an AppMessage to the application.
type Delivered struct{ Msg Message }

// ProtocolError reports a message the core ignored (malformed, unexpected,
// a reply nobody waits for). Duplicated or late replies produce these
// normally; they are worth a debug log, not an alarm.
type ProtocolError struct {
	Msg Message
	Err error
}

func (Joined) isEvent()            {}
func (JoinFailed) isEvent()        {}
func (Stranded) isEvent()          {}
func (Left) isEvent()              {}
func (RangeChanged) isEvent()      {}
func (SuccessorsChanged) isEvent() {}
func (PeerDead) isEvent()          {}
func (LookupDone) isEvent()        {}
func (Delivered) isEvent()         {}
func (ProtocolError) isEvent()     {}

// Errors reported in events.
var (
	ErrNotMember     = errors.New("chord: node is not in a ring yet")
	ErrNoRoute       = errors.New("chord: lookup ran out of live nodes to ask")
	ErrTooManyHops   = errors.New("chord: lookup exceeded the hop limit")
	ErrLookupTimeout = errors.New("chord: lookup timed out")
	ErrLeft          = errors.New("chord: node has left the ring")
	ErrNoBootstrap   = errors.New("chord: no usable bootstrap peer; give a live member's address")
	ErrJoinTimeout   = errors.New("chord: join got no answer from the ring")
	ErrNoRing        = errors.New("chord: the peers this node knows are not in a ring (create one, or join through another peer)")
	ErrMalformed     = errors.New("chord: malformed message")
	ErrUnexpected    = errors.New("chord: unexpected message")
)
