package miner

import (
	"context"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Chain is what the miner extends (implemented by the ledger wiring).
type Chain interface {
	// Head returns the block being extended: its hash and its time in Unix nanoseconds.
	Head() (hash [32]byte, timeNs int64)
	// Extend records that attempt nonce on the current head succeeded at t: it builds,
	// signs and stores the block with time t.UnixNano(), after which Head returns it.
	// An error makes the miner retry the same nonce and t on its next tick.
	Extend(ctx context.Context, nonce uint64, t time.Time) error
}

// Backlog is implemented by a Chain that can tell when it has nothing to seal. The miner
// then makes no attempts (an idle node adds no blocks to its disk) and, once something
// arrives, makes at once the attempts the rate allowed meanwhile, so a record waits no
// longer for its seal than on a node that never stopped.
type Backlog interface {
	// HasUnsealed reports whether records wait in the head for the next block's seal.
	HasUnsealed() bool
	// Arrivals delivers a value when records start waiting in a head that had none, so
	// that the miner need not wait for its next tick. It may be nil.
	Arrivals() <-chan struct{}
}

// MaxAttemptsPerTick bounds the attempts one tick makes when it catches up on attempts
// the rate allowed but the miner did not make (while idle, or in ticks the ticker
// dropped): a tick never holds the CPU for long, even on a gateway. The first win on a
// head takes at most about 80 attempts on average in any bucket (of the default
// parameters), so one tick almost always finds it.
const MaxAttemptsPerTick = 1024

// Stats counts what a Miner has done.
type Stats struct {
	Attempts     uint64    // hash attempts made
	Blocks       uint64    // blocks extended
	Skipped      uint64    // ticks without an attempt: the nonce rule did not allow one yet
	Idle         uint64    // ticks without an attempt: nothing to seal (the Chain is a Backlog)
	Wakeups      uint64    // arrivals (Backlog.Arrivals) that made attempts between ticks
	MissedTicks  uint64    // ticks the ticker dropped (a gap of two or more periods); the next tick makes their attempts
	ExtendErrors uint64    // failed Extend calls, each retried on the next tick
	Restarts     uint64    // times the head changed underneath and counting restarted
	LastBlock    time.Time // time of the last block mined (the t given to Extend); zero if none
	LastNonce    uint64    // nonce of that block
}

// Miner makes one hash attempt per tick on its branch's head and extends the chain when one
// succeeds. Its rate is fixed by Params.Rate whatever the CPU, which is the point. While
// its Chain has nothing to seal (Backlog) it makes none, and catches up when records come.
type Miner struct {
	params    Params
	branch    [20]byte
	chain     Chain
	backlog   Backlog // nil: the chain always has something to seal
	newTicker func(d time.Duration) Ticker
	now       func() time.Time
	log       *zap.Logger
	running   atomic.Bool

	mu    sync.Mutex
	stats Stats

	// Loop state, touched only by Run's goroutine.
	diff       *Difficulty
	cur        *round // nil: read the head afresh on the next tick
	lastParent [32]byte
	extended   bool      // a block was extended on lastParent and the head has not been read since
	lastTick   time.Time // to count missed ticks; zero before the first
}

// round is the mining of one block on one head.
type round struct {
	parent     [32]byte
	parentTime int64
	target     uint64
	nonce      uint64    // attempts made on parent so far
	won        bool      // attempt nonce succeeded but Extend has not yet
	wonAt      time.Time // the block's time: that attempt's tick
	failures   uint64    // consecutive Extend failures of this win
}

// New returns a Miner for branch (the node's ID) that extends chain at p.Rate attempts per
// second. newTicker is NewTicker outside tests; now is time.Now outside tests and only
// keeps a block from being stamped later than the moment it is made. Nil newTicker and
// now mean NewTicker and time.Now; a nil log discards.
func New(p Params, branch [20]byte, chain Chain, newTicker func(d time.Duration) Ticker, now func() time.Time, log *zap.Logger) *Miner {
	if newTicker == nil {
		newTicker = NewTicker
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = zap.NewNop()
	}
	backlog, _ := chain.(Backlog)
	return &Miner{
		params:    p,
		branch:    branch,
		chain:     chain,
		backlog:   backlog,
		newTicker: newTicker,
		now:       now,
		log:       log.With(zap.String("branch", hex.EncodeToString(branch[:]))),
	}
}

// Stats returns a snapshot of the miner's counters. It is safe to call at any time.
func (m *Miner) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Run mines until ctx is done, then returns ctx.Err(). Each tick makes the attempts the
// nonce rule allows on the current head: one in steady state, more after dropped ticks
// or an idle spell (at most MaxAttemptsPerTick); the nonce is the count of attempts made
// since that head was taken. On success it calls Extend with the tick's time and starts
// counting again on the new head. A Chain that is a Backlog with nothing to seal gets no
// attempts; its Arrivals make the attempts at once instead of at the next tick. If the
// head changes underneath (a restart, another writer), counting restarts. An Extend error
// is logged and retried on the next tick. Run returns at once if the parameters are
// invalid or another Run is in progress.
func (m *Miner) Run(ctx context.Context) error {
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("miner: Run is already running; call it once per Miner")
	}
	defer m.running.Store(false)
	d, err := m.params.Difficulty()
	if err != nil {
		return err
	}
	m.diff, m.cur, m.extended, m.lastTick = d, nil, false, time.Time{}
	if err := ctx.Err(); err != nil {
		return err
	}

	period := m.params.Period()
	tk := m.newTicker(period)
	defer tk.Stop()
	var arrivals <-chan struct{} // nil: never ready
	if m.backlog != nil {
		arrivals = m.backlog.Arrivals()
	}
	m.log.Info("miner started", zap.Uint64("rate", m.params.Rate), zap.Duration("period", period),
		zap.Duration("meanBlockTime", m.params.MeanBlockTime), zap.Bool("idlesWithoutRecords", m.backlog != nil))
	defer m.log.Info("miner stopped")
	for {
		var err error
		select {
		case <-ctx.Done():
			return ctx.Err()
		case t := <-tk.C():
			err = m.tick(ctx, t)
		case <-arrivals:
			err = m.wake(ctx)
		}
		if err != nil {
			return err
		}
	}
}

// tick makes the attempts of one tick at time t. It returns only ctx's error.
func (m *Miner) tick(ctx context.Context, t time.Time) error {
	m.countMissed(t)
	o, err := m.attempt(ctx, t, true)
	switch o {
	case idle:
		m.count(func(s *Stats) { s.Idle++ })
	case notYet:
		m.count(func(s *Stats) { s.Skipped++ })
	}
	return err
}

// wake makes the attempts due now, when records have arrived in an empty head, so that
// they need not wait for the next tick. It returns only ctx's error.
func (m *Miner) wake(ctx context.Context) error {
	o, err := m.attempt(ctx, m.now(), false)
	if o == tried {
		m.count(func(s *Stats) { s.Wakeups++ })
	}
	return err
}

// outcome is what one call of attempt did.
type outcome int

const (
	tried  outcome = iota // made attempts, or retried a win's Extend
	idle                  // nothing to seal: no attempt
	notYet                // the nonce rule allows no attempt yet
)

// attempt makes the attempts due at time t (a tick's, or the clock's on an arrival):
// it retries a win that Extend failed, or makes the attempts due by t (lastAttempt;
// onTick for a tick's), stopping at the first win, which it hands to Extend. It returns
// only ctx's error.
func (m *Miner) attempt(ctx context.Context, t time.Time, onTick bool) (outcome, error) {
	hash, timeNs := m.chain.Head()
	if m.cur == nil || m.cur.parent != hash {
		m.startRound(hash, timeNs)
	}
	r := m.cur
	if r.won {
		return tried, m.extend(ctx, r)
	}
	if m.backlog != nil && !m.backlog.HasUnsealed() {
		return idle, nil
	}
	// A block is never stamped after the moment it is made, whatever the ticker says.
	if now := m.now(); now.Before(t) {
		t = now
	}
	// Count attempts actually made, and make them only as far as the nonce rule already
	// allows: a late, early or dropped tick can then never yield a block Check refuses.
	last := m.lastAttempt(r, t, onTick)
	if last <= r.nonce {
		return notYet, nil
	}
	made := uint64(0)
	for r.nonce < last && !r.won {
		r.nonce++
		made++
		r.won = ProofHash(r.parent, m.branch, r.nonce) < r.target
	}
	m.count(func(s *Stats) { s.Attempts += made })
	if !r.won {
		return tried, nil
	}
	r.wonAt = t
	return tried, m.extend(ctx, r)
}

// lastAttempt is the nonce the attempts made at t may reach on r: the attempts the rate
// gave since the parent, floor(Rate × elapsed), so that a miner that was idle or missed
// ticks makes them now; and, onTick, the one attempt of this tick when only NonceSlack
// allows it (a tick stamped a hair early), as a miner that never idles makes it. An
// arrival between ticks never uses the slack: under steady load the attempts stay one
// per period and the mean block time the calibrated one. Never more than
// MaxAttemptsPerTick beyond r.nonce, never beyond what Check allows.
func (m *Miner) lastAttempt(r *round, t time.Time, onTick bool) uint64 {
	allowed := allowedNonce(m.params.Rate, r.parentTime, t.UnixNano())
	if allowed <= r.nonce {
		return r.nonce
	}
	due := allowed - min(allowed, NonceSlack) // the attempts rate × elapsed gave
	if onTick {
		due = max(due, r.nonce+1) // and this tick's one
	}
	if due <= r.nonce {
		return r.nonce
	}
	if due-r.nonce > MaxAttemptsPerTick {
		due = r.nonce + MaxAttemptsPerTick
	}
	return due
}

// countMissed counts the ticks dropped before the one at t: a ticker drops ticks that its
// receiver was too busy to take, and each one is an attempt lost.
func (m *Miner) countMissed(t time.Time) {
	period := m.params.Period()
	if !m.lastTick.IsZero() && t.After(m.lastTick) {
		if missed := (t.Sub(m.lastTick)+period/2)/period - 1; missed > 0 {
			m.count(func(s *Stats) { s.MissedTicks += uint64(missed) })
		}
	}
	m.lastTick = t
}

// startRound starts counting attempts on a new head.
func (m *Miner) startRound(hash [32]byte, timeNs int64) {
	switch {
	case m.extended && hash == m.lastParent:
		m.log.Error("chain head did not advance after Extend; mining on the old head again",
			zap.String("head", hex.EncodeToString(hash[:])))
	case m.cur != nil && !m.extended:
		m.count(func(s *Stats) { s.Restarts++ })
		m.log.Info("head changed underneath; restarting the attempt count",
			zap.String("head", hex.EncodeToString(hash[:])), zap.Uint64("abandonedAttempts", m.cur.nonce))
	}
	m.extended = false
	m.cur = &round{parent: hash, parentTime: timeNs, target: m.diff.Target(hash)}
}

// extend hands the winning attempt of r to the chain.
func (m *Miner) extend(ctx context.Context, r *round) error {
	if err := m.chain.Extend(ctx, r.nonce, r.wonAt); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.failures++
		m.count(func(s *Stats) { s.ExtendErrors++ })
		if r.failures&(r.failures-1) == 0 { // 1, 2, 4, 8…: a persistent fault must not flood the log
			m.log.Warn("extend failed; retrying on the next tick", zap.Error(err),
				zap.Uint64("nonce", r.nonce), zap.Uint64("failures", r.failures))
		}
		return nil
	}
	m.count(func(s *Stats) {
		s.Blocks++
		s.LastBlock, s.LastNonce = r.wonAt, r.nonce
	})
	m.log.Debug("mined block", zap.Uint64("nonce", r.nonce), zap.Int("bucket", Bucket(r.parent)),
		zap.Duration("sinceParent", time.Duration(elapsed(r.parentTime, r.wonAt.UnixNano()))))
	m.lastParent, m.extended, m.cur = r.parent, true, nil
	return nil
}

func (m *Miner) count(f func(*Stats)) {
	m.mu.Lock()
	f(&m.stats)
	m.mu.Unlock()
}
