//go:build race

package chordtest

// RaceSlowdown is how much LocalProfile stretches the local profile's tick
// and send timeout: 4 under the race detector, which makes CoAP's
// per-message work several times slower (with the local profile's 50 ms
// tick, 16 CoAP nodes on two cores answer later than the core's request
// timeout and the ring cannot settle), 1 without it.
const RaceSlowdown = 4
