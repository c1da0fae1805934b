// Package chord is the Chord ring protocol as a pure, deterministic state machine
// (Zave's corrected Chord with Flowchain's TTL churn rule). It takes messages and
// abstract ticks and returns messages to send and events for the application; it
// owns no sockets, goroutines, clocks or randomness. See ../shared/CHORD.md.
package chord
