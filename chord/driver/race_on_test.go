//go:build race

package driver_test

// raceSlowdown stretches the test profile's tick under the race detector,
// which makes CoAP's per-message work several times slower: with the local
// profile's 50 ms tick, 16 CoAP nodes on two cores answer later than the
// core's request timeout and the ring cannot settle.
const raceSlowdown = 4
