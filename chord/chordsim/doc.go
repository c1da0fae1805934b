// Package chordsim is a deterministic simulator for package chord. A seeded
// scheduler (math/rand/v2) delivers the nodes' messages with delay, loss,
// duplication and reordering, crashes and restarts nodes, splits the network
// and heals it, and drives joins, leaves and client writes. After every step
// it checks the safety invariants of docs/chord.md (OneLiveSuccessor,
// OrderedSuccessorLists, OneOrderedRing, Placement); once churn stops it
// checks the liveness properties (Ideal, Fingers, Lookups, every
// acknowledged key on its owner and k-1 successors) against the oracle ring,
// the sorted live IDs.
//
// Time is counted in integer units. A round is Round (100) units: every node
// ticks once per round, so it stabilizes once, runs one check and starts one
// finger lookup. Messages take a few units (1–10 by default), so a request
// and its reply fit well within a round; "rounds to Ideal" are these rounds.
//
// Each simulated node is the chord core plus a small application, as a real
// node would have: a key store driven by RangeChanged events (hand-off to a
// new predecessor, promotion of replicas when the range grows), replication
// to the next k-1 successors, anti-entropy towards the owner, a peer cache
// (package peercache) for rejoining and for probing for a second ring.
// Application transfers are delayed but never lost (they are acknowledged and
// retried in a real node); chord messages may be lost, duplicated, reordered.
//
// When the scenario breaks the protocol's assumptions — a partition, or r
// consecutive failures leaving a node without a live successor — the
// invariants that Zave's proof needs those assumptions for (OneLiveSuccessor,
// OneOrderedRing) are not counted until the ring is Ideal again; the others
// still are, and the ring must still converge. Runs report how often that
// happened.
//
// Scenarios are scripts in a small data-driven format (testdata/*.txt, the
// commands are listed in commands.go) that read like the story they tell.
// The random scenario generator writes the same commands, so a failing seed
// shrinks to a script that can be pasted into testdata.
//
// Running:
//
//	go test -race ./chord/...                          # scripts × seeds + 160 random seeds
//	CHORDSIM_SEEDS=10000 go test ./chord/chordsim -run TestSoak -timeout 60m
//	CHORDSIM_SEED=1000042 go test ./chord/chordsim -run TestSoak -v   # replay one seed
//	go test ./chord/chordsim -run TestScripts -rewrite # regenerate expected outputs
//	go test ./chord/chordsim -run '^$' -bench . -benchtime 1x   # the figures
package chordsim
