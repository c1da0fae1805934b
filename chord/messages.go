package chord

import "encoding/json"

// MsgType names a message with Flowchain's wire vocabulary.
type MsgType string

// The message types. Requests carry a fresh ID; their reply carries the same ID.
const (
	// NotifyStabilize asks a successor for its predecessor and successor list
	// (stabilize, and the liveness query before adopting a closer successor).
	// Reply: NotifyPredecessor.
	NotifyStabilize MsgType = "NOTIFY_STABILIZE"
	// NotifyPredecessor answers NotifyStabilize and NotifyJoin with Payload.Pred,
	// Payload.Succs and Payload.Hint (the closest node the sender knows between
	// the requester and itself).
	NotifyPredecessor MsgType = "NOTIFY_PREDECESSOR"
	// NotifySuccessor is Chord's notify: "I think I am your predecessor". The
	// receiver rectifies. One-way.
	NotifySuccessor MsgType = "NOTIFY_SUCCESSOR"
	// NotifyJoin is sent by a joining node to the successor its lookup found, to
	// copy that node's successor list. Reply: NotifyPredecessor.
	NotifyJoin MsgType = "NOTIFY_JOIN"
	// NotifyEdge announces a graceful leave to the leaver's predecessor and
	// successor, with the leaver's Payload.Pred and Payload.Succs so that they
	// can close the ring around it. One-way.
	NotifyEdge MsgType = "NOTIFY_EDGE"
	// FindSuccessor asks for successor(Key). Reply: FoundSuccessor.
	FindSuccessor MsgType = "FIND_SUCCESSOR"
	// FoundSuccessor answers FindSuccessor: either Payload.Done with the owner
	// (and the successors after it), or Payload.Next, closer nodes to ask.
	FoundSuccessor MsgType = "FOUND_SUCCESSOR"
	// CheckPredecessor and CheckSuccessor are the liveness pings of a check
	// tick. Reply: CheckTTL.
	CheckPredecessor MsgType = "CHECK_PREDECESSOR"
	CheckSuccessor   MsgType = "CHECK_SUCCESSOR"
	// CheckTTL answers a check ping; like any message, it refreshes the
	// sender's TTL.
	CheckTTL MsgType = "CHECK_TTL"
	// AppMessage carries application data (Payload.Data); the core only hands it
	// over as a Delivered event.
	AppMessage MsgType = "MESSAGE"
)

// Message is the envelope every transport carries:
// {type, id, from{id, addr}, to, key?, payload}.
type Message struct {
	Type MsgType `json:"type"`
	// ID correlates a reply with its request. It is a string in JSON because
	// request ids may exceed 2^53.
	ID   uint64 `json:"id,string"`
	From Peer   `json:"from"`
	// To is the intended receiver; the transport delivers to To.Addr.
	To      Peer    `json:"to,omitzero"`
	Key     ID      `json:"key,omitzero"`
	Payload Payload `json:"payload,omitzero"`
}

// Payload holds the fields some message types use; the others stay empty.
type Payload struct {
	Pred  Peer            `json:"pred,omitzero"`
	Succs []Peer          `json:"succs,omitempty"`
	Hint  Peer            `json:"hint,omitzero"`
	Done  bool            `json:"done,omitempty"`
	Owner Peer            `json:"owner,omitzero"`
	Next  []Peer          `json:"next,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// maxListLen bounds the peer lists a message may carry; longer ones are malformed.
const maxListLen = 256

func (t MsgType) known() bool {
	switch t {
	case NotifyStabilize, NotifyPredecessor, NotifySuccessor, NotifyJoin, NotifyEdge,
		FindSuccessor, FoundSuccessor, CheckPredecessor, CheckSuccessor, CheckTTL, AppMessage:
		return true
	}
	return false
}

// isReply reports whether t answers a request (and so must match a pending one).
func (t MsgType) isReply() bool {
	return t == NotifyPredecessor || t == FoundSuccessor || t == CheckTTL
}
