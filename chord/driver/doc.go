// Package driver runs one Chord core (package chord) with real time over an
// rpc.Transport.
//
// The core is a deterministic state machine; the Driver is its runtime: a
// mutex guards the core, which is fed ticks from a ticker (the period comes
// from the profile: local, laptop, gateway), incoming envelopes on the
// transport Handler's goroutines, and commands from the application (Lookup,
// State, Leave) on the caller's; the messages the core wants sent go to a
// bounded pool of send workers. A send that fails is a lost message: the core's timeouts and
// TTLs already handle loss, so the driver never retries on its own.
//
// A node joins through transport URLs (ws://host:port, coap://host:port); the
// ID of a bootstrap peer need not be known: the driver asks the address for it
// first (a CHECK_PREDECESSOR sent to rpc.AnyNode, answered by the far driver
// itself). Peers heard from are remembered in a peer cache, which supplies
// rejoin candidates when the node is stranded and its own rejoin fails, and
// peers to Probe now and then, so that a ring split by failures or overload
// merges again.
//
// Walk follows the ring by successors, asking each node for its state with a
// Call that the far driver answers itself (GET /api/v1/ring). The checks of
// a live ring against the oracle (docs/chord.md, invariants 5 and 6) and the
// test rings are in package chord/chordtest.
package driver
