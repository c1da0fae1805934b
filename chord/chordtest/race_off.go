//go:build !race

package chordtest

// RaceSlowdown is how much LocalProfile stretches the local profile's tick
// and send timeout: 4 under the race detector, 1 without it (see race_on.go).
const RaceSlowdown = 1
