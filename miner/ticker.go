package miner

import "time"

// Ticker delivers the miner's attempt ticks. It is injected so that tests drive the miner
// tick by tick; NewTicker returns the real one.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// NewTicker returns a Ticker backed by time.NewTicker. It has the signature New expects.
func NewTicker(d time.Duration) Ticker {
	return realTicker{time.NewTicker(d)}
}

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }
