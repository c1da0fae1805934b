package chord

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// fifoNet is the smallest possible network: it delivers every message in
// send order. The simulator in chordsim does the real work; these tests only
// pin the core's own behaviour.
type fifoNet struct {
	nodes  map[ID]*Node
	queue  []Message
	events map[ID][]Event
}

func newFifoNet() *fifoNet {
	return &fifoNet{nodes: map[ID]*Node{}, events: map[ID][]Event{}}
}

func pos(v byte) Peer {
	var id ID
	id[0] = v
	return Peer{ID: id, Addr: fmt.Sprintf("n%d", v)}
}

func (f *fifoNet) add(t testing.TB, p Peer, r int) *Node {
	t.Helper()
	cfg := DefaultConfig(p)
	cfg.R = r
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.nodes[p.ID] = n
	return n
}

func (f *fifoNet) collect() {
	for _, id := range sortedIDs(f.nodes) {
		rd := f.nodes[id].Ready()
		f.queue = append(f.queue, rd.Messages...)
		f.events[id] = append(f.events[id], rd.Events...)
	}
}

func (f *fifoNet) deliver() {
	f.collect()
	for steps := 0; len(f.queue) > 0 && steps < 100000; steps++ {
		m := f.queue[0]
		f.queue = f.queue[1:]
		if n := f.nodes[m.To.ID]; n != nil {
			n.Step(m)
		}
		f.collect()
	}
}

func (f *fifoNet) tickAll(rounds int) {
	for range rounds {
		for _, id := range sortedIDs(f.nodes) {
			f.nodes[id].Tick()
		}
		f.deliver()
	}
}

func ideal(f *fifoNet) error {
	ids := sortedIDs(f.nodes)
	for i, id := range ids {
		n := f.nodes[id]
		want := []ID{}
		for k := 1; k <= min(n.R(), len(ids)-1); k++ {
			want = append(want, ids[(i+k)%len(ids)])
		}
		var got []ID
		for _, s := range n.Successors() {
			got = append(got, s.ID)
		}
		if len(ids) == 1 {
			want = []ID{id}
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("%s: succs %v, want %v", id.Short(), got, want)
		}
		if p := ids[(i+len(ids)-1)%len(ids)]; len(ids) > 1 && n.Pred().ID != p {
			return fmt.Errorf("%s: pred %s, want %s", id.Short(), n.Pred(), p.Short())
		}
	}
	return nil
}

func TestJoinStabilizeSmallRing(t *testing.T) {
	f := newFifoNet()
	a := f.add(t, pos(10), 3)
	a.Create()
	for _, v := range []byte{200, 50, 120, 30} {
		n := f.add(t, pos(v), 3)
		if err := n.Join(pos(10)); err != nil {
			t.Fatal(err)
		}
		f.deliver()
	}
	f.tickAll(8)
	if err := ideal(f); err != nil {
		t.Fatal(err)
	}
	// A lookup from every node for every node's ID returns that node.
	for _, from := range sortedIDs(f.nodes) {
		for _, key := range sortedIDs(f.nodes) {
			req := f.nodes[from].Lookup(key)
			f.deliver()
			var done *LookupDone
			for _, e := range f.events[from] {
				if d, ok := e.(LookupDone); ok && d.ReqID == req {
					done = &d
				}
			}
			if done == nil || done.Err != nil || done.Owner.ID != key {
				t.Fatalf("lookup %s from %s: %+v", key.Short(), from.Short(), done)
			}
		}
	}
}

func TestLeaveClosesRing(t *testing.T) {
	f := newFifoNet()
	f.add(t, pos(10), 3).Create()
	for _, v := range []byte{40, 90, 160} {
		f.add(t, pos(v), 3).Join(pos(10))
		f.deliver()
	}
	f.tickAll(6)
	f.nodes[pos(90).ID].Leave()
	f.deliver()
	delete(f.nodes, pos(90).ID)
	if p := f.nodes[pos(160).ID].Pred(); p.ID != pos(40).ID {
		t.Fatalf("after leave, pred of 160 is %s", p)
	}
	if s := f.nodes[pos(40).ID].Successors(); s[0].ID != pos(160).ID {
		t.Fatalf("after leave, succ of 40 is %v", s)
	}
	f.tickAll(4)
	if err := ideal(f); err != nil {
		t.Fatal(err)
	}
}

// TestStepIgnoresGarbage feeds messages no handler should accept; each must be
// ignored with a ProtocolError event and no panic.
func TestStepIgnoresGarbage(t *testing.T) {
	f := newFifoNet()
	n := f.add(t, pos(10), 3)
	n.Create()
	n.Ready()
	other := pos(20)
	cases := []Message{
		{Type: "NO_SUCH_TYPE", From: other},
		{Type: FindSuccessor, From: Peer{}},
		{Type: CheckTTL, ID: 99, From: other},
		{Type: FoundSuccessor, ID: 7, From: other, Payload: Payload{Done: true, Owner: other}},
		{Type: NotifyPredecessor, ID: 1, From: other},
		{Type: NotifySuccessor, From: pos(10)},
		{Type: FindSuccessor, From: other, To: pos(30)},
		{Type: NotifyEdge, From: other, Payload: Payload{Succs: make([]Peer, maxListLen+1)}},
	}
	for _, m := range cases {
		n.Step(m)
		rd := n.Ready()
		var perr *ProtocolError
		for _, e := range rd.Events {
			if pe, ok := e.(ProtocolError); ok {
				perr = &pe
			}
		}
		if perr == nil {
			t.Errorf("%s from %s: no ProtocolError (events %v)", m.Type, m.From, rd.Events)
			continue
		}
		if !errors.Is(perr.Err, ErrMalformed) && !errors.Is(perr.Err, ErrUnexpected) {
			t.Errorf("%s: error %v", m.Type, perr.Err)
		}
	}
	// Peers with zero IDs inside payloads are skipped, not adopted.
	n.Step(Message{Type: NotifySuccessor, From: other})
	n.Ready()
	if n.Pred().ID != other.ID {
		t.Fatalf("notify from %s not accepted", other)
	}
	if s := n.Successors(); len(s) != 1 || s[0].ID != n.Self().ID {
		t.Fatalf("lone node's list changed: %v", s)
	}
}

func TestMessageJSON(t *testing.T) {
	m := Message{Type: NotifyPredecessor, ID: 1 << 60, From: pos(1), To: pos(2), Key: HashKey([]byte("k")),
		Payload: Payload{Pred: pos(3), Succs: []Peer{pos(4), pos(5)}}}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back Message
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.ID != m.ID || back.Key != m.Key || back.Payload.Pred != m.Payload.Pred || len(back.Payload.Succs) != 2 {
		t.Fatalf("round trip: %s → %+v", b, back)
	}
	var probe map[string]any
	json.Unmarshal(b, &probe)
	if probe["id"] != "1152921504606846976" || probe["key"] != m.Key.Hex() {
		t.Fatalf("wire form: %s", b)
	}
	empty, _ := json.Marshal(Message{Type: CheckTTL, ID: 3, From: pos(1)})
	if string(empty) != `{"type":"CHECK_TTL","id":"3","from":{"id":"0100000000000000000000000000000000000000","addr":"n1"}}` {
		t.Fatalf("empty fields not omitted: %s", empty)
	}
}

// TestTTLRule pins Flowchain's churn rule: a neighbour's TTL is MaxTTL after
// any message from it, counts down once per check tick, and the neighbour is
// dead when it reaches zero — not a tick earlier.
func TestTTLRule(t *testing.T) {
	f := newFifoNet()
	a := f.add(t, pos(10), 2)
	a.Create()
	f.add(t, pos(100), 2).Join(pos(10))
	f.deliver()
	f.tickAll(3)
	if s := a.Successors(); len(s) != 1 || s[0].ID != pos(100).ID {
		t.Fatalf("ring of two not formed: %v", s)
	}
	// With replies delivered, 20 check ticks kill no one.
	f.tickAll(20)
	if a.Successors()[0].ID != pos(100).ID || a.Pred().ID != pos(100).ID {
		t.Fatalf("a live neighbour was declared dead")
	}
	// 100 stops answering. MaxTTL-1 ticks: still a neighbour; MaxTTL: dead.
	delete(f.nodes, pos(100).ID)
	maxTTL := DefaultConfig(Peer{}).MaxTTL
	dead := func() bool {
		for _, e := range a.Ready().Events {
			if d, ok := e.(PeerDead); ok && d.Peer.ID == pos(100).ID {
				return true
			}
		}
		return false
	}
	for i := 1; i < maxTTL; i++ {
		a.Tick()
		if dead() {
			t.Fatalf("declared dead after %d check ticks, MaxTTL is %d", i, maxTTL)
		}
	}
	a.Tick()
	if !dead() {
		t.Fatalf("not declared dead after MaxTTL=%d check ticks", maxTTL)
	}
	if s := a.Successors(); len(s) != 1 || s[0].ID != a.Self().ID || !a.Pred().IsZero() {
		t.Fatalf("after its only neighbour died: succs %v pred %v", s, a.Pred())
	}
}

// TestRestartedNodeRejoinsUnderItsOldID: the ring still lists the node's old
// incarnation; the new one must not take itself for its own successor.
func TestRestartedNodeRejoinsUnderItsOldID(t *testing.T) {
	f := newFifoNet()
	f.add(t, pos(10), 3).Create()
	for _, v := range []byte{60, 120, 200} {
		f.add(t, pos(v), 3).Join(pos(10))
		f.deliver()
	}
	f.tickAll(6)
	// 120 restarts at once: same ID, fresh state.
	n := f.add(t, pos(120), 3)
	n.Join(pos(10))
	f.deliver()
	if s := n.Successors(); len(s) == 0 || s[0].ID != pos(200).ID {
		t.Fatalf("restarted 120 has successors %v, want 200 first", s)
	}
	f.tickAll(6)
	if err := ideal(f); err != nil {
		t.Fatal(err)
	}
}
