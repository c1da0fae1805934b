package driver

import (
	"time"

	"github.com/flownode/flownode/chord"
)

// Profile is the timing of a driver: how long a core tick is and how the
// core's tick-counted timers are set for that tick. Chord.Self is left zero;
// New fills it in.
type Profile struct {
	Name string
	// Tick is the period of core ticks.
	Tick time.Duration
	// SendTimeout bounds one outgoing message; a message still unsent then is
	// lost. It is about the core's request timeout (at most one tick more):
	// the core still takes a reply for a while after its request timed out
	// (chord.Config.LateWindow), but a sender should not wait that long.
	SendTimeout time.Duration
	// Senders is the number of send workers; SendQueue how many messages may
	// wait for one before new ones are dropped.
	Senders, SendQueue int
	// Chord tunes the core for this tick length.
	Chord chord.Config
}

// LocalProfile has fast timers, for tests on one machine.
func LocalProfile() Profile {
	c := chord.DefaultConfig(chord.Peer{})
	// A loaded test machine (race detector, dozens of nodes on two
	// cores) can stall a goroutine for a few ticks: timeouts and TTLs
	// are a few ticks long so that a slow node is not a dead one.
	c.RequestTimeout = 4
	c.MaxTTL = 4
	c.CheckEvery = 2
	c.FingersPerTick = 2
	c.LookupTimeout = 60
	return Profile{Name: "local", Tick: 50 * time.Millisecond, SendTimeout: 250 * time.Millisecond,
		Senders: 16, SendQueue: 1024, Chord: c}
}

// LaptopProfile is the default: a driver whose Config.Profile is zero runs
// with it.
func LaptopProfile() Profile {
	c := chord.DefaultConfig(chord.Peer{})
	c.RequestTimeout = 3
	c.MaxTTL = 3
	c.CheckEvery = 2
	return Profile{Name: "laptop", Tick: 300 * time.Millisecond, SendTimeout: 900 * time.Millisecond,
		Senders: 8, SendQueue: 512, Chord: c}
}

// GatewayProfile has slow timers and little traffic, for LinkIt-class
// devices: a gateway on a lossy link with a 580 MHz CPU. It checks every
// other tick and fingers every fourth: maintenance is a few hundred bytes
// per second.
func GatewayProfile() Profile {
	c := chord.DefaultConfig(chord.Peer{})
	c.RequestTimeout = 2
	c.MaxTTL = 3
	c.CheckEvery = 2
	c.FingerEvery = 4
	c.LookupTimeout = 20
	return Profile{Name: "gateway", Tick: 1500 * time.Millisecond, SendTimeout: 3 * time.Second,
		Senders: 4, SendQueue: 256, Chord: c}
}
