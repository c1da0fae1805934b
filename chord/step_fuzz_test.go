package chord

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// memberOfRing returns node 10 of a settled ring of four, its Ready drained.
func memberOfRing(t testing.TB) *Node {
	f := newFifoNet()
	f.add(t, pos(10), 3).Create()
	for _, v := range []byte{70, 140, 210} {
		f.add(t, pos(v), 3).Join(pos(10))
		f.deliver()
	}
	f.tickAll(5)
	n := f.nodes[pos(10).ID]
	n.Ready()
	return n
}

// TestStepSurvivesRandomMessages throws random messages — any type, any
// sender, reply ids that may or may not match, peers with zero IDs, lists
// out of order — at nodes in every state. Nothing may panic, and a member's
// successor list must stay strictly ordered.
func TestStepSurvivesRandomMessages(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	types := []MsgType{NotifyStabilize, NotifyPredecessor, NotifySuccessor, NotifyJoin, NotifyEdge,
		FindSuccessor, FoundSuccessor, CheckPredecessor, CheckSuccessor, CheckTTL, AppMessage, "BOGUS"}
	peer := func() Peer {
		if r.IntN(8) == 0 {
			return Peer{}
		}
		return pos(byte(r.IntN(256)))
	}
	peers := func() []Peer {
		ps := make([]Peer, r.IntN(6))
		for i := range ps {
			ps[i] = peer()
		}
		return ps
	}
	for round := range 200 {
		n := memberOfRing(t)
		switch round % 4 {
		case 1:
			n.Leave()
		case 2:
			fresh, _ := New(DefaultConfig(pos(33)))
			n = fresh // idle
		case 3:
			n.Join(pos(70)) // joining
		}
		for range 200 {
			m := Message{
				Type: types[r.IntN(len(types))], ID: uint64(r.IntN(40)), From: peer(), To: peer(),
				Key: pos(byte(r.IntN(256))).ID,
				Payload: Payload{Pred: peer(), Succs: peers(), Hint: peer(), Done: r.IntN(2) == 0,
					Owner: peer(), Next: peers()},
			}
			if r.IntN(3) == 0 {
				m.To = n.Self()
			}
			n.Step(m)
			if r.IntN(10) == 0 {
				n.Tick()
			}
			n.Ready()
			if l := n.Successors(); n.Status() >= StatusLinked && !(len(l) == 1 && l[0].ID == n.Self().ID) {
				for i := range l {
					if l[i].IsZero() || l[i].ID == n.Self().ID || i > 0 && !Between(l[i-1].ID, l[i].ID, n.Self().ID) {
						t.Fatalf("list %v of %s is not ordered after %+v", l, n.Self(), m)
					}
				}
			}
		}
	}
}

// FuzzStepJSON feeds arbitrary bytes, decoded as the rpc layer would, to a
// ring member. Run longer with: go test ./chord -fuzz FuzzStepJSON
func FuzzStepJSON(f *testing.F) {
	f.Add([]byte(`{"type":"FIND_SUCCESSOR","id":"1","from":{"id":"0500000000000000000000000000000000000000","addr":"x"},"key":"0600000000000000000000000000000000000000"}`))
	f.Add([]byte(`{"type":"NOTIFY_PREDECESSOR","id":"7","from":{"id":"4600000000000000000000000000000000000000","addr":"x"},"payload":{"pred":{"id":"0a00000000000000000000000000000000000000"},"succs":[{"id":"0000000000000000000000000000000000000000"}]}}`))
	f.Add([]byte(`{"type":"NOTIFY_EDGE","id":"0","from":{"id":"4600000000000000000000000000000000000000","addr":"x"},"payload":{"succs":[{"id":"d200000000000000000000000000000000000000"},{"id":"8c00000000000000000000000000000000000000"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Message
		if json.Unmarshal(data, &m) != nil {
			return
		}
		n := memberOfRing(t)
		n.Step(m)
		n.Tick()
		n.Ready()
	})
}
