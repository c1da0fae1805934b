package chord

import (
	"errors"
	"slices"
	"testing"
)

// These tests drive one node by hand: they answer its requests with
// hand-made replies, in time or after the request timed out.

// sentTo returns the last message of type t to p in rd.
func sentTo(t *testing.T, rd Ready, typ MsgType, p Peer) Message {
	t.Helper()
	for i := len(rd.Messages) - 1; i >= 0; i-- {
		if m := rd.Messages[i]; m.Type == typ && m.To.ID == p.ID {
			return m
		}
	}
	t.Fatalf("no %s to %s among %v", typ, p, rd.Messages)
	return Message{}
}

func reply(req Message, typ MsgType, p Payload) Message {
	return Message{Type: typ, ID: req.ID, From: req.To, To: req.From, Key: req.Key, Payload: p}
}

func protocolErrors(rd Ready) []ProtocolError {
	var out []ProtocolError
	for _, e := range rd.Events {
		if pe, ok := e.(ProtocolError); ok {
			out = append(out, pe)
		}
	}
	return out
}

func lookupDone(rd Ready, id uint64) *LookupDone {
	for _, e := range rd.Events {
		if d, ok := e.(LookupDone); ok && d.ReqID == id {
			return &d
		}
	}
	return nil
}

func succIDs(n *Node) []byte {
	var out []byte
	for _, s := range n.Successors() {
		out = append(out, s.ID[0])
	}
	return out
}

// tickN ticks n k times and returns everything it produced.
func tickN(n *Node, k int) Ready {
	var all Ready
	for range k {
		n.Tick()
		rd := n.Ready()
		all.Messages = append(all.Messages, rd.Messages...)
		all.Events = append(all.Events, rd.Events...)
	}
	return all
}

// linkedNode returns node 100, joined through 200 with the list
// [200 250 20] (no predecessor yet), and the request timeout.
func linkedNode(t *testing.T) (*Node, int) {
	t.Helper()
	cfg := DefaultConfig(pos(100))
	cfg.R = 3
	cfg.MaxTTL = 20 // nobody answers the pings: keep the neighbours alive anyway
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Join(pos(200)); err != nil {
		t.Fatal(err)
	}
	find := sentTo(t, n.Ready(), FindSuccessor, pos(200))
	n.Step(reply(find, FoundSuccessor, Payload{Done: true, Owner: pos(200)}))
	join := sentTo(t, n.Ready(), NotifyJoin, pos(200))
	n.Step(reply(join, NotifyPredecessor, Payload{Pred: pos(50), Succs: []Peer{pos(250), pos(20)}}))
	n.Ready()
	if n.Status() != StatusLinked || !slices.Equal(succIDs(n), []byte{200, 250, 20}) {
		t.Fatalf("setup: %s with successors %v", n.Status(), succIDs(n))
	}
	return n, n.cfg.RequestTimeout
}

// TestLateJoinAnswer: the answer to NOTIFY_JOIN comes after the request timed
// out, while the join is still under way: the node takes it and is Linked.
func TestLateJoinAnswer(t *testing.T) {
	n, err := New(DefaultConfig(pos(100)))
	if err != nil {
		t.Fatal(err)
	}
	n.Join(pos(200))
	find := sentTo(t, n.Ready(), FindSuccessor, pos(200))
	n.Step(reply(find, FoundSuccessor, Payload{Done: true, Owner: pos(200)}))
	join := sentTo(t, n.Ready(), NotifyJoin, pos(200))
	tickN(n, n.cfg.RequestTimeout) // timed out: the join retries at the next tick
	if n.Status() != StatusJoining {
		t.Fatalf("status %s after the join request timed out", n.Status())
	}
	n.Step(reply(join, NotifyPredecessor, Payload{Pred: pos(50), Succs: []Peer{pos(250), pos(20)}}))
	rd := n.Ready()
	if pe := protocolErrors(rd); len(pe) > 0 {
		t.Fatalf("late join answer rejected: %v", pe[0].Err)
	}
	if n.Status() != StatusLinked || !slices.Equal(succIDs(n), []byte{200, 250, 20}) {
		t.Fatalf("after the late join answer: %s with successors %v", n.Status(), succIDs(n))
	}
}

// TestLateStabilizeAnswer: the successor's answer to NOTIFY_STABILIZE comes
// after the timeout; it is still the first successor, so its list is copied,
// its predecessor (us) makes us a member, and we notify it.
func TestLateStabilizeAnswer(t *testing.T) {
	n, timeout := linkedNode(t)
	n.Tick()
	stab := sentTo(t, n.Ready(), NotifyStabilize, pos(200))
	tickN(n, timeout)
	n.Step(reply(stab, NotifyPredecessor, Payload{Pred: pos(100), Succs: []Peer{pos(230), pos(250)}}))
	rd := n.Ready()
	if pe := protocolErrors(rd); len(pe) > 0 {
		t.Fatalf("late stabilize answer rejected: %v", pe[0].Err)
	}
	if !slices.Equal(succIDs(n), []byte{200, 230, 250}) {
		t.Fatalf("late stabilize answer not copied: successors %v", succIDs(n))
	}
	if n.Status() != StatusMember {
		t.Fatalf("status %s, want member: the late answer names us as predecessor", n.Status())
	}
	sentTo(t, rd, NotifySuccessor, pos(200))

	// A late answer from a node that is no longer the first successor is
	// not copied (it is still no protocol error: only late).
	n.Tick()
	stab = sentTo(t, n.Ready(), NotifyStabilize, pos(200))
	tickN(n, timeout)
	n.Step(Message{Type: NotifyPredecessor, ID: 999, From: pos(230), To: pos(100)}) // unrelated: an error
	if len(protocolErrors(n.Ready())) != 1 {
		t.Fatal("a reply matching no request was not reported")
	}
	n.markDead(pos(200), true) // 200 left meanwhile
	n.Ready()
	n.Step(reply(stab, NotifyPredecessor, Payload{Pred: pos(100), Succs: []Peer{pos(210), pos(250)}}))
	rd = n.Ready()
	if pe := protocolErrors(rd); len(pe) > 0 {
		t.Fatalf("late answer reported as an error: %v", pe[0].Err)
	}
	if slices.Contains(succIDs(n), 210) {
		t.Fatalf("late answer of a former successor copied: %v", succIDs(n))
	}
}

// TestLateLookupAnswers: a confirmation that comes late still ends the
// lookup; a path answer that comes late moves the lookup on, and the query
// sent instead of it becomes late in turn.
func TestLateLookupAnswers(t *testing.T) {
	n, timeout := linkedNode(t)
	// Key 240 lies in (200, 250]: 250 is asked to confirm.
	var key ID
	key[0] = 240
	id := n.Lookup(key)
	conf := sentTo(t, n.Ready(), FindSuccessor, pos(250))
	rd := tickN(n, timeout) // 250 timed out; the lookup asks the next successor, 20
	sentTo(t, rd, FindSuccessor, pos(20))
	n.Step(reply(conf, FoundSuccessor, Payload{Done: true, Owner: pos(250)}))
	rd = n.Ready()
	if d := lookupDone(rd, id); d == nil || d.Err != nil || d.Owner.ID != pos(250).ID {
		t.Fatalf("late confirmation: %+v (events %v)", d, rd.Events)
	}

	// Key 60 lies past the list: 20 is asked first.
	key[0] = 60
	id = n.Lookup(key)
	path := sentTo(t, n.Ready(), FindSuccessor, pos(20))
	rd = tickN(n, timeout)
	instead := sentTo(t, rd, FindSuccessor, pos(250))
	n.Step(reply(path, FoundSuccessor, Payload{Done: true, Owner: pos(70), Succs: []Peer{pos(90)}}))
	conf = sentTo(t, n.Ready(), FindSuccessor, pos(70))
	// 250's answer now comes after the lookup moved on: late, not an error.
	n.Step(reply(instead, FoundSuccessor, Payload{Next: []Peer{pos(20)}}))
	if pe := protocolErrors(n.Ready()); len(pe) > 0 {
		t.Fatalf("superseded query's answer: %v", pe[0].Err)
	}
	n.Step(reply(conf, FoundSuccessor, Payload{Done: true, Owner: pos(70)}))
	rd = n.Ready()
	if d := lookupDone(rd, id); d == nil || d.Err != nil || d.Owner.ID != pos(70).ID || d.Hops != 1 {
		t.Fatalf("lookup after a late path answer: %+v", d)
	}
}

// TestLateWindow: a reply after LateWindow is an unexpected message again.
func TestLateWindow(t *testing.T) {
	n, timeout := linkedNode(t)
	n.Tick()
	stab := sentTo(t, n.Ready(), NotifyStabilize, pos(200))
	tickN(n, timeout+n.cfg.LateWindow)
	n.Step(reply(stab, NotifyPredecessor, Payload{Pred: pos(100)}))
	if pe := protocolErrors(n.Ready()); len(pe) != 1 || !errors.Is(pe[0].Err, ErrUnexpected) {
		t.Fatalf("a reply after the late window: %v", pe)
	}
}
