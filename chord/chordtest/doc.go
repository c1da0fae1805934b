// Package chordtest holds what tests, drills and other packages check Chord
// rings with, the way net/http/httptest serves net/http's tests: the oracle
// (the live node IDs in ring order), THE Ideal check and the finger check of
// docs/chord.md (invariants 5 and 6), and builders of in-process rings of
// chord/driver nodes over the rpc transports (WebSocket, CoAP, both, or an
// in-memory network).
//
// The checks take a neutral View of each node, so that any source can feed
// them: a chord.State (FromState), a simulated node (package chordsim), or
// the JSON of GET /api/v1/node (cmd/flownode's tests, scripts/drills).
//
// It is a helper package: production code must not import it.
package chordtest
