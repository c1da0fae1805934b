package miner_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/flownode/flownode/miner"
	"github.com/flownode/flownode/miner/minertest"
)

var (
	genesis = sha256.Sum256([]byte("flownode test genesis"))
	t0      = time.Unix(1_700_000_000, 0)
	branch  = [20]byte{0xaa, 0xbb}
)

// farFuture is a clock that never holds a block back.
func farFuture() time.Time { return time.Unix(1<<40, 0) }

// harness runs one Miner on a fake ticker and an in-memory chain.
type harness struct {
	p      miner.Params
	tk     *minertest.Ticker
	chain  *minertest.Chain
	m      *miner.Miner
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, p miner.Params, chain *minertest.Chain, now func() time.Time) *harness {
	t.Helper()
	h := startOn(t, p, chain, now)
	h.chain = chain
	return h
}

// startOn is start on any Chain; the harness's chain is then nil.
func startOn(t *testing.T, p miner.Params, chain miner.Chain, now func() time.Time) *harness {
	t.Helper()
	h := &harness{p: p, tk: minertest.NewTicker(), done: make(chan error, 1)}
	h.m = miner.New(p, branch, chain, h.tk.New, now, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-h.done })
	return h
}

// tick hands the miner one tick and fails the test if it has stopped.
func (h *harness) tick(t *testing.T, at time.Time) {
	t.Helper()
	if !h.tk.Tick(at) {
		t.Fatalf("the miner stopped before the tick at %v", at)
	}
}

// stop cancels Run and returns its error once every tick's work is done.
func (h *harness) stop(t *testing.T) error {
	t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		h.done <- err // for Cleanup
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
		return nil
	}
}

// firstWin returns the first winning nonce on parent.
func firstWin(p miner.Params, parent [32]byte) uint64 {
	target := p.Target(parent)
	n := uint64(1)
	for miner.ProofHash(parent, branch, n) >= target {
		n++
	}
	return n
}

// checkBlocks re-verifies every block and that each nonce is the first win on its parent,
// which holds only if the miner counted attempts from 1 on each new head and never skipped
// a nonce.
func checkBlocks(t *testing.T, p miner.Params, chain *minertest.Chain) []minertest.Block {
	t.Helper()
	for _, err := range chain.Rejected() {
		t.Errorf("chain refused a mined block: %v", err)
	}
	blocks := chain.Blocks()
	for i, b := range blocks {
		if err := p.Check(b.Parent, b.ParentTime, branch, b.Nonce, b.Time); err != nil {
			t.Errorf("block %d: %v", i, err)
		}
		if want := firstWin(p, b.Parent); b.Nonce != want {
			t.Errorf("block %d has nonce %d, but the first winning attempt on its parent is %d", i, b.Nonce, want)
		}
	}
	return blocks
}

func TestRunMinesValidBlocks(t *testing.T) {
	p := miner.DefaultParams()
	chain := minertest.NewChain(p, branch, genesis, t0)
	h := start(t, p, chain, farFuture)
	period := p.Period()
	const ticks = 4000
	for k := 1; k <= ticks; k++ {
		h.tick(t, t0.Add(time.Duration(k)*period))
	}
	if err := h.stop(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if got := h.tk.Period(); got != 50*time.Millisecond {
		t.Errorf("ticker period = %v, want 50ms", got)
	}
	blocks := checkBlocks(t, p, chain)
	if len(blocks) < 100 {
		t.Fatalf("%d blocks in %d ticks, want about %d", len(blocks), ticks, ticks/20)
	}
	var nonces uint64
	for i, b := range blocks {
		nonces += b.Nonce
		// With an exact ticker, attempt n on a parent is made n periods after it.
		if got, want := b.Time-b.ParentTime, int64(b.Nonce)*int64(period); got != want {
			t.Errorf("block %d came %v after its parent, want nonce × period = %v", i, time.Duration(got), time.Duration(want))
		}
	}
	s := h.m.Stats()
	last := blocks[len(blocks)-1]
	if s.Attempts != ticks || s.Skipped != 0 || s.MissedTicks != 0 || s.Blocks != uint64(len(blocks)) || s.ExtendErrors != 0 || s.Restarts != 0 {
		t.Errorf("Stats = %+v, want %d attempts, %d blocks, nothing skipped or failed", s, ticks, len(blocks))
	}
	if s.LastNonce != last.Nonce || s.LastBlock.UnixNano() != last.Time {
		t.Errorf("Stats last block = nonce %d at %v, want %d at %d", s.LastNonce, s.LastBlock, last.Nonce, last.Time)
	}
	// Attempts after the last block are the unfinished round on the last head.
	if rest := s.Attempts - nonces; rest >= firstWin(p, last.Hash) {
		t.Errorf("%d attempts after the last block, but the first win on its head is %d", rest, firstWin(p, last.Hash))
	}
}

// TestRunLateEarlyAndDroppedTicks drives the miner with a ticker that jitters, runs late,
// drops ticks, fires early and even goes backwards: every block must still pass Check.
func TestRunLateEarlyAndDroppedTicks(t *testing.T) {
	p := miner.DefaultParams()
	chain := minertest.NewChain(p, branch, genesis, t0)
	h := start(t, p, chain, farFuture)
	period := p.Period()
	rng := rand.New(rand.NewPCG(1, 2))
	at := t0
	for range 6000 {
		switch r := rng.IntN(100); {
		case r < 60: // on time, with a little jitter either way
			at = at.Add(period + time.Duration(rng.IntN(2001)-1000))
		case r < 80: // early: the next attempt may not be allowed yet
			at = at.Add(period / time.Duration(2+rng.IntN(8)))
		case r < 95: // late or dropped ticks
			at = at.Add(period * time.Duration(2+rng.IntN(10)))
		default: // the clock steps back
			at = at.Add(-period * time.Duration(1+rng.IntN(3)))
		}
		h.tick(t, at)
	}
	h.stop(t)
	blocks := checkBlocks(t, p, chain)
	s := h.m.Stats()
	if len(blocks) < 50 || s.Skipped == 0 || s.MissedTicks == 0 {
		t.Errorf("%d blocks, Stats %+v: want many blocks, some skipped and some missed ticks", len(blocks), s)
	}
	for i, b := range blocks {
		if b.Time <= b.ParentTime {
			t.Errorf("block %d at %d is not after its parent at %d", i, b.Time, b.ParentTime)
		}
	}
}

func TestRunRestartsCountOnHeadChange(t *testing.T) {
	p := miner.DefaultParams()
	// A genesis whose first win is late, so that no block comes before the head changes.
	g := genesis
	for firstWin(p, g) <= 20 {
		g = sha256.Sum256(g[:])
	}
	chain := minertest.NewChain(p, branch, g, t0)
	h := start(t, p, chain, farFuture)
	period := p.Period()
	k := 0
	next := func() time.Time { k++; return t0.Add(time.Duration(k) * period) }
	for range 10 {
		h.tick(t, next())
	}
	// Another writer (or a restart) moves the head; the miner sees it at its next tick.
	other := sha256.Sum256([]byte("a head from elsewhere"))
	otherTime := t0.Add(time.Duration(k) * period)
	chain.SetHead(other, otherTime)
	for chain.Len() < 3 {
		h.tick(t, next())
	}
	h.stop(t)
	blocks := checkBlocks(t, p, chain) // the first block's nonce is the first win on other
	if blocks[0].Parent != other || blocks[0].ParentTime != otherTime.UnixNano() {
		t.Errorf("first block extends %x at %d, want the new head %x", blocks[0].Parent[:4], blocks[0].ParentTime, other[:4])
	}
	if s := h.m.Stats(); s.Restarts != 1 {
		t.Errorf("Stats.Restarts = %d, want 1", s.Restarts)
	}
}

func TestRunRetriesExtendErrors(t *testing.T) {
	p := miner.DefaultParams()
	chain := minertest.NewChain(p, branch, genesis, t0)
	failure := errors.New("disk full")
	chain.FailNext(failure, failure, failure)
	h := start(t, p, chain, farFuture)
	period := p.Period()
	win := firstWin(p, genesis)
	k := 0
	for chain.Len() < 2 {
		k++
		h.tick(t, t0.Add(time.Duration(k)*period))
	}
	h.stop(t)
	blocks := checkBlocks(t, p, chain)
	// The first block is the winning attempt, stamped with its own tick, not a retry's.
	if b := blocks[0]; b.Nonce != win || b.Time != t0.Add(time.Duration(win)*period).UnixNano() {
		t.Errorf("first block: nonce %d at %d, want nonce %d at its winning tick %d", b.Nonce, b.Time, win, t0.Add(time.Duration(win)*period).UnixNano())
	}
	s := h.m.Stats()
	if s.ExtendErrors != 3 || s.Blocks != uint64(len(blocks)) {
		t.Errorf("Stats = %+v, want 3 Extend errors and %d blocks", s, len(blocks))
	}
	// Retry ticks make no attempt, but the tick after the block makes theirs: the rate
	// allowed one per tick, and the block is stamped with its winning tick.
	if want := uint64(k); s.Attempts != want {
		t.Errorf("Stats.Attempts = %d after %d ticks with 3 retries, want %d", s.Attempts, k, want)
	}
}

// TestRunNeverStampsTheFuture gives the miner a clock behind its ticker: blocks are
// stamped with the clock, and attempts wait until the clock allows them.
func TestRunNeverStampsTheFuture(t *testing.T) {
	p := miner.DefaultParams()
	chain := minertest.NewChain(p, branch, genesis, t0)
	limit := t0.Add(30 * time.Second)
	h := start(t, p, chain, func() time.Time { return limit })
	for k := 1; k <= 2000; k++ { // 100 s of ticks
		h.tick(t, t0.Add(time.Duration(k)*p.Period()))
	}
	h.stop(t)
	blocks := checkBlocks(t, p, chain)
	if len(blocks) == 0 {
		t.Fatal("no blocks")
	}
	for i, b := range blocks {
		if b.Time > limit.UnixNano() {
			t.Errorf("block %d stamped %v, after the clock's %v", i, time.Unix(0, b.Time), limit)
		}
	}
	if s := h.m.Stats(); s.Attempts > p.Rate*30+uint64(len(blocks)) {
		t.Errorf("%d attempts in the clock's 30 s at %d/s", s.Attempts, p.Rate)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	before := runtime.NumGoroutine()
	p := miner.DefaultParams()

	// Cancelled before it starts: Run returns at once without a ticker.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := miner.New(p, branch, minertest.NewChain(p, branch, genesis, t0), func(time.Duration) miner.Ticker {
		t.Error("Run made a ticker after its context was cancelled")
		return minertest.NewTicker()
	}, time.Now, nil)
	if err := m.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Run with a cancelled context = %v, want context.Canceled", err)
	}

	// Cancelled while waiting for a tick.
	h := start(t, p, minertest.NewChain(p, branch, genesis, t0), farFuture)
	h.tick(t, t0.Add(p.Period()))
	if err := h.stop(t); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if !h.tk.Stopped() {
		t.Error("Run returned without stopping its ticker")
	}

	// Real ticker, fast rate, cancelled by deadline.
	fast := miner.Params{Rate: 1000, MeanBlockTime: 20 * time.Millisecond, Variance: 0.2}
	// Build the table first: under the race detector on a loaded machine it alone can
	// take longer than a short deadline.
	if _, err := fast.Difficulty(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	m = miner.New(fast, branch, minertest.NewChain(fast, branch, genesis, time.Now()), miner.NewTicker, time.Now, nil)
	if err := m.Run(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run with a real ticker = %v, want context.DeadlineExceeded", err)
	}
	if m.Stats().Attempts == 0 {
		t.Error("no attempts with a real ticker")
	}

	// Cancelled while Extend is running: the chain sees the cancelled context.
	chain := minertest.NewChain(p, branch, genesis, t0)
	h = start(t, p, chain, farFuture)
	chain.OnExtend(func(minertest.Block) { h.cancel() })
	for k := 1; !h.tk.Stopped() && k < 10_000; k++ {
		h.tk.Tick(t0.Add(time.Duration(k) * p.Period()))
	}
	if err := h.stop(t); !errors.Is(err, context.Canceled) {
		t.Errorf("Run cancelled during Extend = %v, want context.Canceled", err)
	}

	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines after the miners stopped, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func TestRunOnlyOnce(t *testing.T) {
	p := miner.DefaultParams()
	h := start(t, p, minertest.NewChain(p, branch, genesis, t0), farFuture)
	h.tick(t, t0.Add(p.Period())) // the first Run is in its loop
	err := h.m.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Run = %v, want an already-running error", err)
	}
	h.stop(t)
}

func TestRunInvalidParams(t *testing.T) {
	p := miner.Params{Rate: 2, MeanBlockTime: time.Second, Variance: 0.2}
	m := miner.New(p, branch, minertest.NewChain(p, branch, genesis, t0), miner.NewTicker, time.Now, nil)
	if err := m.Run(context.Background()); err == nil || err.Error() != p.Validate().Error() {
		t.Errorf("Run with invalid params = %v, want Validate's error %v", err, p.Validate())
	}
}

// TestMinedMeanBlockTime drives the miner through 2000 blocks on an exact ticker and checks
// that the mean block time is the configured one: calibration, period and nonce counting
// together. Deterministic: the chain's hashes fix every draw.
func TestMinedMeanBlockTime(t *testing.T) {
	p := miner.DefaultParams()
	chain := minertest.NewChain(p, branch, genesis, t0)
	h := start(t, p, chain, farFuture)
	const want = 2000
	for k := 1; chain.Len() < want; k++ {
		h.tick(t, t0.Add(time.Duration(k)*p.Period()))
	}
	h.stop(t)
	blocks := chain.Blocks()[:want]
	span := time.Duration(blocks[want-1].Time - t0.UnixNano())
	mean := span / want
	// Four standard errors of the mean: a deterministic run, with room for any change of
	// the chain's hashes to stay a pass unless the miner is actually off.
	tol := 4 * attemptsStdDev(t, p) / p.AttemptsPerBlock() / math.Sqrt(want)
	if rel := float64(mean-p.MeanBlockTime) / float64(p.MeanBlockTime); math.Abs(rel) > tol {
		t.Errorf("mean block time over %d blocks = %v, want %v ± %.1f%%", want, mean, p.MeanBlockTime, 100*tol)
	}
	t.Logf("mean block time over %d blocks: %v (configured %v ± %.1f%%)", want, mean, p.MeanBlockTime, 100*tol)
}

// attemptsStdDev returns the standard deviation of the attempts a block takes: a geometric
// count whose success probability p_i = Target_i/2^64 is drawn uniformly from the buckets,
// so E[X²] = mean over i of (2−p_i)/p_i².
func attemptsStdDev(t *testing.T, p miner.Params) float64 {
	d, err := p.Difficulty()
	if err != nil {
		t.Fatal(err)
	}
	var m1, m2 float64
	for i := range miner.Buckets {
		q := float64(d.BucketTarget(i)) / (1 << 64)
		m1 += 1 / q
		m2 += (2 - q) / (q * q)
	}
	m1 /= miner.Buckets
	m2 /= miner.Buckets
	return math.Sqrt(m2 - m1*m1)
}

func TestRunCountsMissedTicks(t *testing.T) {
	p := miner.DefaultParams()
	h := start(t, p, minertest.NewChain(p, branch, genesis, t0), farFuture)
	period := p.Period()
	for _, k := range []time.Duration{1, 2, 5, 6, 9} { // ticks 3, 4, 7 and 8 were dropped
		h.tick(t, t0.Add(k*period+k*time.Microsecond)) // with a little lateness
	}
	h.stop(t)
	checkBlocks(t, p, h.chain)
	// The tick after a gap makes the dropped ticks' attempts: more than one per tick taken.
	if s := h.m.Stats(); s.MissedTicks != 4 || s.Skipped != 0 || s.Attempts <= 5 {
		t.Errorf("Stats = %+v, want 4 missed ticks, none skipped and more than 5 attempts", s)
	}
}

// backlogChain is a Chain that says whether it has anything to seal (miner.Backlog).
type backlogChain struct {
	*minertest.Chain
	unsealed atomic.Bool
	asked    atomic.Int64 // HasUnsealed calls
	arrivals chan struct{}
}

func newBacklogChain(p miner.Params) *backlogChain {
	return &backlogChain{Chain: minertest.NewChain(p, branch, genesis, t0), arrivals: make(chan struct{}, 1)}
}

func (c *backlogChain) HasUnsealed() bool         { c.asked.Add(1); return c.unsealed.Load() }
func (c *backlogChain) Arrivals() <-chan struct{} { return c.arrivals }
func (c *backlogChain) arrive()                   { c.unsealed.Store(true); c.arrivals <- struct{}{} }
func (c *backlogChain) Extend(ctx context.Context, nonce uint64, at time.Time) error {
	err := c.Chain.Extend(ctx, nonce, at)
	if err == nil {
		c.unsealed.Store(false) // the block sealed what waited
	}
	return err
}

// waitAsked waits until the miner has asked HasUnsealed n times: the tick that asked
// last has then decided whether it is idle.
func (c *backlogChain) waitAsked(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.asked.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the miner asked HasUnsealed %d times, want %d", c.asked.Load(), n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// TestRunIdleMakesNoAttempts: a chain with nothing to seal gets no attempts and no
// blocks however long it waits; the first tick after records arrive makes the attempts
// the rate allowed meanwhile and mines a block that passes Check, with the first win.
func TestRunIdleMakesNoAttempts(t *testing.T) {
	p := miner.DefaultParams()
	chain := newBacklogChain(p)
	h := startOn(t, p, chain, farFuture)
	period := p.Period()
	const idleTicks = 12_000 // ten minutes
	for k := 1; k <= idleTicks; k++ {
		h.tick(t, t0.Add(time.Duration(k)*period))
	}
	if s := h.m.Stats(); s.Attempts != 0 || chain.Len() != 0 {
		t.Fatalf("idle: Stats %+v and %d blocks, want no attempt and no block", s, chain.Len())
	}
	chain.waitAsked(t, idleTicks)
	chain.unsealed.Store(true) // no arrival signal: the next tick must find it
	at := t0.Add((idleTicks + 1) * period)
	h.tick(t, at)
	h.tick(t, at.Add(period)) // taken once the tick at at is done
	h.stop(t)
	blocks := checkBlocks(t, p, chain.Chain)
	if len(blocks) != 1 || blocks[0].Time != at.UnixNano() {
		t.Fatalf("blocks %+v, want one, stamped with the first tick after the arrival (%d)", blocks, at.UnixNano())
	}
	if s := h.m.Stats(); s.Attempts != blocks[0].Nonce || s.Blocks != 1 || s.Idle != idleTicks+1 {
		t.Errorf("Stats %+v, want %d attempts (the first win), one block and %d idle ticks", s, blocks[0].Nonce, idleTicks+1)
	}
}

// TestRunWakesOnArrival: records arriving in an idle chain are sealed at once, stamped
// with the clock, without waiting for a tick; steady load after that mines as before.
func TestRunWakesOnArrival(t *testing.T) {
	p := miner.DefaultParams()
	chain := newBacklogChain(p)
	now := atomic.Int64{}
	now.Store(t0.Add(time.Hour).UnixNano())
	h := startOn(t, p, chain, func() time.Time { return time.Unix(0, now.Load()) })
	h.tick(t, t0.Add(p.Period())) // idle
	chain.waitAsked(t, 1)
	chain.arrive()
	deadline := time.Now().Add(10 * time.Second)
	for chain.Len() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	blocks := checkBlocks(t, p, chain.Chain)
	if len(blocks) != 1 || blocks[0].Time != now.Load() {
		t.Fatalf("blocks %+v after an arrival, want one stamped with the clock %d", blocks, now.Load())
	}
	if s := h.m.Stats(); s.Wakeups != 1 || s.Idle != 1 {
		t.Errorf("Stats %+v, want one wakeup and one idle tick", s)
	}
	h.stop(t)
}

// TestRunCatchUpIsBoundedPerTick: a head whose first win lies beyond MaxAttemptsPerTick
// takes several ticks, each making at most that many attempts (the block is stamped
// with the tick that reached the win), and still yields the first win.
func TestRunCatchUpIsBoundedPerTick(t *testing.T) {
	// About 4000 attempts per block, so that a first win beyond one tick is common.
	p := miner.Params{Rate: 20, MeanBlockTime: 200 * time.Second, Variance: 0.2}
	g := genesis
	for firstWin(p, g) <= miner.MaxAttemptsPerTick+1 {
		g = sha256.Sum256(g[:])
	}
	win := firstWin(p, g)
	chain := minertest.NewChain(p, branch, g, t0)
	h := start(t, p, chain, farFuture)
	late := t0.Add(time.Hour) // the first tick comes an hour after the head
	for k := 0; chain.Len() == 0 && k < 1000; k++ {
		h.tick(t, late.Add(time.Duration(k)*p.Period()))
	}
	h.stop(t)
	blocks := checkBlocks(t, p, chain)
	ticks := (win + miner.MaxAttemptsPerTick - 1) / miner.MaxAttemptsPerTick
	if want := late.Add(time.Duration(ticks-1) * p.Period()).UnixNano(); len(blocks) == 0 || blocks[0].Nonce != win || blocks[0].Time != want {
		t.Errorf("blocks %+v: want the first win %d at tick %d (%d)", blocks, win, ticks, want)
	}
}

// TestRunWakeNeverUsesSlack: an arrival less than a period after the parent makes no
// attempt (only the slack would allow one, and under steady load that would shorten
// every block); the next tick makes it.
func TestRunWakeNeverUsesSlack(t *testing.T) {
	p := miner.DefaultParams()
	chain := newBacklogChain(p)
	h := startOn(t, p, chain, func() time.Time { return t0.Add(p.Period() / 5) })
	chain.arrive()
	chain.waitAsked(t, 1)
	h.tick(t, t0.Add(p.Period()))
	h.tick(t, t0.Add(p.Period())) // taken once the first tick is done
	h.stop(t)
	if s := h.m.Stats(); s.Wakeups != 0 || s.Attempts < 1 || s.Attempts > 2 {
		t.Errorf("Stats %+v, want no wakeup and the ticks' attempts", s)
	}
}
