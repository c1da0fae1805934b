package chord

import "testing"

// TestLookupFallbackToSelf pins the fallback of a lookup whose named owner
// did not confirm: the successors after it are tried in turn, and when that
// lands on this node it answers only for keys in its own (pred, self] range.
func TestLookupFallbackToSelf(t *testing.T) {
	// 20 names a dead owner, with this node (100) after it.
	run := func(t *testing.T, key byte, deadOwner Peer, predFirst bool) (*Node, uint64, Ready) {
		n, timeout := linkedNode(t)
		if predFirst {
			n.Step(Message{Type: NotifySuccessor, From: pos(50), To: pos(100)})
		}
		var k ID
		k[0] = key
		id := n.Lookup(k)
		path := sentTo(t, n.Ready(), FindSuccessor, pos(20))
		if !predFirst {
			// The predecessor arrives while the lookup runs.
			n.Step(Message{Type: NotifySuccessor, From: pos(50), To: pos(100)})
		}
		if n.Pred().ID != pos(50).ID {
			t.Fatalf("pred %s, want 50", n.Pred())
		}
		n.Step(reply(path, FoundSuccessor, Payload{Done: true, Owner: deadOwner, Succs: []Peer{pos(100), pos(200)}}))
		sentTo(t, n.Ready(), FindSuccessor, deadOwner)
		rd := tickN(n, timeout) // the named owner does not answer
		return n, id, rd
	}

	t.Run("own range", func(t *testing.T) {
		// Key 80 is in (50, 100]: this node answers for it.
		_, id, rd := run(t, 80, pos(90), false)
		if d := lookupDone(rd, id); d == nil || d.Err != nil || d.Owner.ID != pos(100).ID {
			t.Fatalf("key in own range: %+v, want this node", d)
		}
	})

	t.Run("outside", func(t *testing.T) {
		// Key 30 is not in (50, 100]: the owner is a node this one does not
		// know (40, say). The lookup goes on with others and never names
		// this node.
		n, id, rd := run(t, 30, pos(40), true)
		for _, m := range rd.Messages {
			if m.Type == FindSuccessor && m.To.ID == pos(200).ID {
				t.Fatalf("fell back to 200, which lies after this node: %v", m)
			}
		}
		if d := lookupDone(rd, id); d != nil {
			t.Fatalf("key outside own range answered at the fallback: %+v", d)
		}
		var q Message
		for _, m := range rd.Messages {
			if m.Type == FindSuccessor {
				q = m
			}
		}
		if q.To.ID != pos(250).ID {
			t.Fatalf("lookup did not go on with the next candidate (250): %v", rd.Messages)
		}
		// Nobody answers any more: the lookup ends in an error, not in self.
		var done *LookupDone
		for i := 0; i < 100 && done == nil; i++ {
			done = lookupDone(tickN(n, 1), id)
		}
		if done == nil || done.Err == nil || done.Owner.ID == pos(100).ID {
			t.Fatalf("key outside own range: %+v, want an error", done)
		}
	})
}
