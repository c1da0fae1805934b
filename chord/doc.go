// Package chord is the Chord ring protocol as a pure, deterministic state
// machine: Zave's corrected Chord ("Reasoning about Identifier Spaces: How to
// Make Chord Correct", IEEE TSE 2017) with Flowchain's TTL churn rule. It
// takes messages (Step) and abstract ticks (Tick) and returns the messages to
// send and events for the application (Ready); it owns no sockets,
// goroutines, clocks or randomness, so a runtime loop can drive it with real
// transports and timers and a simulator can drive it exhaustively
// (package chordsim). The rules and the invariants the tests check are in
// docs/chord.md.
//
// # Using it
//
//	n, err := chord.New(chord.Config{Self: self})  // defaults for the rest
//	n.Create()                 // or n.Join(bootstrap...)
//	for {
//		select {
//		case m := <-incoming: n.Step(m)
//		case <-ticker.C:      n.Tick()
//		}
//		rd := n.Ready()        // rd.Messages to send, rd.Events to handle
//	}
//
// Events: RangeChanged (the keys this node owns moved: hand data over),
// SuccessorsChanged (replicas live there), LookupDone (answer to Lookup),
// Joined, Left, Stranded, JoinFailed, PeerDead, Delivered (a MESSAGE) and
// ProtocolError (a message the core ignored; it never panics on input).
//
// # The protocol, and where it goes beyond Zave's
//
// Join looks up successor(self) through the bootstrap's fingers and copies
// that node's successor list. Stabilize asks the best successor for its
// predecessor and list, copies the list, adopts a closer live node, and
// notifies; rectify accepts a closer predecessor. Check pings the
// predecessor and every successor; each neighbour's TTL is reset to MaxTTL by
// any message that proves it is in a ring and counted down per check tick;
// at zero it is dead. Leave tells both neighbours (NOTIFY_EDGE).
//
// Additions, each there for a measured reason (see chordsim):
//   - The stabilize answer carries a hint: the closest node the successor
//     has heard a notify from. A burst of joins through one node then
//     converges in O(log N) rounds instead of O(N).
//   - Lookups are iterative and keep every candidate they hear of, so a
//     node that does not answer is skipped for the next best; the owner a
//     lookup names is confirmed by asking it. Lookups started right after
//     half the ring failed still return the live owner. The confirmation
//     also names the run of nodes around the owner (ranges.go); a later
//     lookup for a key in that run asks its owner first, and routes only
//     if that owner does not confirm. On a live 64-node ring that made most
//     lookups one round trip instead of two or three.
//   - r adapts to the estimated ring size (about 2·log2 N, at least 4); a
//     node whose r exceeds what its successor's list can give extends its
//     list from the list's tail.
//   - A join whose lookup cannot get past a hole in the ring (the nodes
//     before it lost every successor) falls back to the closest ring member
//     after it; stabilize walks back from there.
//   - Once per pass over the fingers a node looks its own successor up
//     through its farthest finger (selfCheck): after concurrent joins two
//     nodes can each skip the other, and only a lookup from afar names the
//     node in between.
//   - A list that ends in a node knowing nothing beyond itself (the nodes
//     after it all left the ring) is continued from the first finger past
//     it (bridge), instead of every predecessor in turn copying a shorter
//     list and leaving the ring.
//   - A reply that comes after its request timed out (a slow link, a
//     retransmitted CoAP message) is still used for LateWindow ticks where
//     it still fits: a stabilize answer from the node that is still the
//     first successor, a join answer while the join runs, a lookup answer
//     while the lookup runs (a lookup with nobody left to ask waits one
//     more request timeout for one). On links whose round trip is about
//     the request timeout, rings otherwise never converge.
//   - A node stranded with no live peer it knows carries on as a ring of its
//     own.
//   - Probe asks a remembered peer (the application's peer cache) for our
//     successor, which merges two rings after a partition heals.
//
// # Messages
//
// The message types are Flowchain's: NOTIFY_STABILIZE (stabilize query) and
// NOTIFY_JOIN (join's list copy), both answered by NOTIFY_PREDECESSOR;
// NOTIFY_SUCCESSOR (notify); NOTIFY_EDGE (graceful leave); FIND_SUCCESSOR /
// FOUND_SUCCESSOR (one lookup step); CHECK_PREDECESSOR / CHECK_SUCCESSOR,
// answered by CHECK_TTL; MESSAGE (application data, passed through). The
// envelope is Message; IDs are 40 lowercase hex characters in JSON.
package chord
