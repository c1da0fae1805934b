package minertest

import (
	"sync"
	"time"

	"github.com/flownode/flownode/miner"
)

// Ticker is a miner.Ticker driven by hand: each Tick hands one time to the miner. Its
// channel is unbuffered, so when Tick returns the miner has taken the tick, and it
// finishes that tick's work before it can take the next one. Use one Ticker per Run.
type Ticker struct {
	c    chan time.Time
	stop chan struct{}
	once sync.Once

	mu     sync.Mutex
	period time.Duration
}

// NewTicker returns a Ticker; pass its New method to miner.New.
func NewTicker() *Ticker {
	return &Ticker{c: make(chan time.Time), stop: make(chan struct{})}
}

// New records the period the miner asked for and returns t. Its signature is the one
// miner.New expects.
func (t *Ticker) New(d time.Duration) miner.Ticker {
	t.mu.Lock()
	t.period = d
	t.mu.Unlock()
	return t
}

// C implements miner.Ticker.
func (t *Ticker) C() <-chan time.Time { return t.c }

// Stop implements miner.Ticker; Tick returns false afterwards.
func (t *Ticker) Stop() { t.once.Do(func() { close(t.stop) }) }

// Tick waits until the miner takes a tick at time at. It returns false, without ticking,
// once the miner has stopped the Ticker.
func (t *Ticker) Tick(at time.Time) bool {
	select {
	case t.c <- at:
		return true
	case <-t.stop:
		return false
	}
}

// Period returns the period the miner asked for (0 before Run starts).
func (t *Ticker) Period() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.period
}

// Stopped reports whether the miner has stopped the Ticker.
func (t *Ticker) Stopped() bool {
	select {
	case <-t.stop:
		return true
	default:
		return false
	}
}
