package chord

import "fmt"

// Config tunes a node. Durations are counted in ticks: the runtime decides how
// long a tick is (the profiles in the runtime do), the core only counts them.
// Zero fields take the defaults of DefaultConfig.
type Config struct {
	// Self is this node. Required.
	Self Peer
	// R is the successor list length. 0 adapts it to the estimated ring size:
	// about 2·log2 N, clamped to [MinR, MaxR].
	R, MinR, MaxR int
	// MaxTTL is Flowchain's churn rule: a neighbour's TTL is set to MaxTTL by any
	// message from it and counted down on each check tick; at zero it is dead.
	MaxTTL int
	// StabilizeEvery, CheckEvery and FingerEvery are the periods, in ticks, of
	// stabilize, check and fix-fingers.
	StabilizeEvery, CheckEvery, FingerEvery int
	// FingersPerTick is how many finger lookups may run at once.
	FingersPerTick int
	// SelfCheckEvery is the least number of ticks between two lookups of
	// our own successor through a far finger (see selfCheck).
	SelfCheckEvery int
	// RequestTimeout is how many ticks a request waits for its reply.
	RequestTimeout int
	// LateWindow is how many ticks after its timeout a request is still
	// remembered, so that a late reply (a slow link, a retransmitted CoAP
	// message) can still be used where it is meaningful; see onLateReply.
	// 0 means four request timeouts.
	LateWindow int
	// LookupTimeout bounds a whole lookup, in ticks; MaxHops bounds its queries.
	LookupTimeout, MaxHops int
	// JoinAttempts is how many times a join retries before JoinFailed.
	JoinAttempts int
	// NotifierCap and NotifierTTL bound the memory of recent notifiers, which a
	// node offers as hints to nodes stabilizing with it (this is what lets a
	// burst of joins through one node converge in O(log N) rounds).
	NotifierCap, NotifierTTL int
	// AdoptChain bounds how many closer successors one stabilize may adopt.
	AdoptChain int
	// DeadMemory is how many ticks a dead peer is remembered (and skipped).
	DeadMemory int
	// RangeTTL is how many ticks a range learned from an owner's answer is
	// used to ask that owner first (see ranges.go). A stale range costs a
	// lookup a round trip, never a wrong answer.
	RangeTTL int
	// RequestIDBase is the first request id. A restarted node should pick a new
	// base (the runtime uses the clock, the simulator the incarnation) so that
	// late replies to the previous incarnation cannot match new requests.
	RequestIDBase uint64
}

// DefaultConfig returns the defaults for self.
func DefaultConfig(self Peer) Config {
	return Config{
		Self:           self,
		MinR:           4,
		MaxR:           32,
		MaxTTL:         3,
		StabilizeEvery: 1,
		CheckEvery:     1,
		FingerEvery:    1,
		FingersPerTick: 1,
		SelfCheckEvery: 4,
		RequestTimeout: 2,
		LookupTimeout:  40,
		MaxHops:        48,
		JoinAttempts:   3,
		NotifierCap:    1024,
		NotifierTTL:    10,
		AdoptChain:     3,
		DeadMemory:     12,
		RangeTTL:       40,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig(c.Self)
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&c.MinR, d.MinR)
	set(&c.MaxR, d.MaxR)
	set(&c.MaxTTL, d.MaxTTL)
	set(&c.StabilizeEvery, d.StabilizeEvery)
	set(&c.CheckEvery, d.CheckEvery)
	set(&c.FingerEvery, d.FingerEvery)
	set(&c.FingersPerTick, d.FingersPerTick)
	set(&c.SelfCheckEvery, d.SelfCheckEvery)
	set(&c.RequestTimeout, d.RequestTimeout)
	set(&c.LookupTimeout, d.LookupTimeout)
	set(&c.MaxHops, d.MaxHops)
	set(&c.JoinAttempts, d.JoinAttempts)
	set(&c.NotifierCap, d.NotifierCap)
	set(&c.NotifierTTL, d.NotifierTTL)
	set(&c.AdoptChain, d.AdoptChain)
	set(&c.DeadMemory, d.DeadMemory)
	set(&c.RangeTTL, d.RangeTTL)
	if c.LateWindow <= 0 {
		c.LateWindow = 4 * c.RequestTimeout
	}
	if c.MaxR < c.MinR {
		c.MaxR = c.MinR
	}
	if c.RequestIDBase == 0 {
		c.RequestIDBase = 1
	}
	return c
}

func (c Config) validate() error {
	if c.Self.IsZero() {
		return fmt.Errorf("chord config: Self has the zero ID; give the node its ID")
	}
	if c.R < 0 || c.R > maxListLen {
		return fmt.Errorf("chord config: R=%d; use 0 (adaptive) or 1..%d", c.R, maxListLen)
	}
	return nil
}
