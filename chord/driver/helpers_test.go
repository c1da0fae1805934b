package driver_test

import (
	"testing"
	"time"

	"github.com/flownode/flownode/chord/chordtest"
	"github.com/flownode/flownode/chord/driver"
)

// events counts the events of every test ring, for a failing WaitIdeal to
// log.
var events chordtest.Events

// startRing starts n nodes of kind k (chordtest.StartRing): the first
// creates the ring, the others join through it all at once.
func startRing(tb testing.TB, k chordtest.Kind, n int, seed uint64, prof driver.Profile) []*chordtest.Node {
	tb.Helper()
	return startRingTicks(tb, k, n, seed, prof, nil)
}

// startRingTicks is startRing with injected ticks (nil: the profile's ticker).
func startRingTicks(tb testing.TB, k chordtest.Kind, n int, seed uint64, prof driver.Profile, ticks []chan time.Time) []*chordtest.Node {
	tb.Helper()
	return chordtest.StartRing(tb, chordtest.RingConfig{Kind: k, N: n, Seed: seed, Profile: prof, Ticks: ticks, Events: &events})
}
