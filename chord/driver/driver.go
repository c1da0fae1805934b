package driver

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/chord/peercache"
	"github.com/flownode/flownode/rpc"
)

// ErrClosed is returned by calls on a closed driver.
var ErrClosed = errors.New("driver: closed")

// Driver runs one Chord core. Its methods are safe for concurrent use.
type Driver struct {
	cfg  Config
	prof Profile
	log  *zap.Logger
	self chord.Peer

	tr    rpc.Transport
	cache *peercache.Cache
	sendq chan chord.Message

	// mu guards the core and the state below. Whoever has something for
	// the core (the ticker loop, a transport handler with a message, an
	// application call) takes mu and steps the core on its own goroutine:
	// handing every message to one loop goroutine cost two goroutine
	// wake-ups per message, a large part of a lookup's latency on loopback.
	mu        sync.Mutex
	stopped   bool        // the loop has ended: the core takes nothing more
	core      *chord.Node // under mu
	waiters   map[uint64]chan chord.LookupDone
	joinWait  []chan error
	lastBoots []chord.Peer
	rejoinAt  uint64 // core tick of the next rejoin attempt; 0: none due
	probeNext int    // which cache entry the next probe asks
	// remembered: when each peer last went into the cache (remember).
	remembered map[chord.ID]rememberedPeer
	// (end of the state under mu)

	status  atomic.Int32 // chord.Status, for Ready checks without the loop
	dropped atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	loopWG sync.WaitGroup
	sendWG sync.WaitGroup
	once   sync.Once
	last   atomic.Pointer[chord.State] // the state when the loop stopped
}

// New builds the core and the transport and starts the loop; the node is idle
// until Start or Join.
func New(cfg Config) (*Driver, error) {
	if cfg.Transport == nil {
		return nil, errors.New("driver: Config.Transport is required")
	}
	prof := cfg.Profile
	if prof.Tick <= 0 {
		prof = LaptopProfile()
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	d := &Driver{
		cfg: cfg, prof: prof, log: log, self: cfg.Self,
		sendq:      make(chan chord.Message, max(prof.SendQueue, 1)),
		waiters:    make(map[uint64]chan chord.LookupDone),
		remembered: make(map[chord.ID]rememberedPeer),
	}
	tr, err := cfg.Transport(d.handle)
	if err != nil {
		return nil, fmt.Errorf("driver: transport: %w", err)
	}
	d.tr = tr
	if d.self.Addr == "" {
		if a, ok := tr.(interface{ Addr() string }); ok {
			d.self.Addr = a.Addr()
		}
	}
	cc := prof.Chord
	cc.Self = d.self
	// A restarted node must not match late replies to its previous life.
	cc.RequestIDBase = uint64(time.Now().UnixNano())
	if d.core, err = chord.New(cc); err != nil {
		tr.Close()
		return nil, fmt.Errorf("driver: %w", err)
	}
	if d.cache, err = peercache.New(cacheKey(d.self.ID), 0); err != nil {
		tr.Close()
		return nil, fmt.Errorf("driver: %w", err)
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	ticks := cfg.Ticks
	var ticker *time.Ticker
	if ticks == nil {
		ticker = time.NewTicker(prof.Tick)
		ticks = ticker.C
	}
	for range max(prof.Senders, 1) {
		d.sendWG.Add(1)
		go d.sender()
	}
	d.loopWG.Add(1)
	go d.loop(ticks, ticker)
	return d, nil
}

// cacheKey stands in for a peer's ed25519 public key in the peer cache: Chord
// messages carry IDs, not keys, and the cache only needs 32 stable bytes per
// peer to place it in its buckets.
func cacheKey(id chord.ID) []byte {
	k := sha256.Sum256(id[:])
	return k[:]
}

// Self returns this node (its address as advertised).
func (d *Driver) Self() chord.Peer { return d.self }

// Profile returns the driver's profile.
func (d *Driver) Profile() Profile { return d.prof }

// Transport returns the transport the driver sends with.
func (d *Driver) Transport() rpc.Transport { return d.tr }

// Status returns where the node stands in the ring.
func (d *Driver) Status() chord.Status { return chord.Status(d.status.Load()) }

// Dropped counts messages lost in the driver itself (a full queue or a
// failed send).
func (d *Driver) Dropped() uint64 { return d.dropped.Load() }

// loop feeds the core its ticks until Close, then stops it for good.
func (d *Driver) loop(ticks <-chan time.Time, ticker *time.Ticker) {
	defer d.loopWG.Done()
	if ticker != nil {
		defer ticker.Stop()
	}
	defer func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.stopped = true
		st := d.core.State()
		d.last.Store(&st)
		for id, w := range d.waiters {
			w <- chord.LookupDone{ReqID: id, Err: ErrClosed}
		}
		for _, w := range d.joinWait {
			w <- ErrClosed
		}
	}()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-ticks:
			d.do(d.ctx, func() {
				d.core.Tick()
				d.rejoinDue()
				d.probeDue()
			})
		}
	}
}

// do runs f with the core, then hands out what the core produced. It fails
// with ErrClosed once the driver is closed.
func (d *Driver) do(ctx context.Context, f func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	if d.stopped || d.ctx.Err() != nil {
		d.mu.Unlock()
		return ErrClosed
	}
	f()
	replies := d.flush()
	d.mu.Unlock()
	for _, m := range replies {
		d.sendLogged(m)
	}
	return nil
}

// flush hands out what the core produced: events to the driver's own
// bookkeeping and to the application, requests to the senders, and replies
// back to the caller (do), which sends them itself once it has let go of mu.
// A reply goes to a node that has just sent us its request, so the send
// hardly ever waits for a dial or a dead peer, and sending it on the
// goroutine that handled the request saves a hand-off to a sender per hop.
// Under mu.
func (d *Driver) flush() (replies []chord.Message) {
	for d.core.HasReady() {
		rd := d.core.Ready()
		for _, m := range rd.Messages {
			if isReply(m.Type) {
				replies = append(replies, m)
				continue
			}
			select {
			case d.sendq <- m:
			default:
				d.dropped.Add(1)
			}
		}
		for _, e := range rd.Events {
			d.onEvent(e)
		}
	}
	d.status.Store(int32(d.core.Status()))
	return replies
}

func isReply(t chord.MsgType) bool {
	return t == chord.FoundSuccessor || t == chord.NotifyPredecessor || t == chord.CheckTTL
}

func (d *Driver) sender() {
	defer d.sendWG.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case m := <-d.sendq:
			d.sendLogged(m)
		}
	}
}

// sendLogged sends m; a failure is a lost message, counted and logged.
func (d *Driver) sendLogged(m chord.Message) {
	if err := d.send(d.ctx, m); err != nil {
		d.dropped.Add(1)
		d.log.Debug("chord message lost", zap.String("type", string(m.Type)), zap.String("to", m.To.Addr), zap.Error(err))
	}
}

func (d *Driver) send(ctx context.Context, m chord.Message) error {
	env, err := toEnvelope(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, d.prof.SendTimeout)
	defer cancel()
	return d.tr.Send(ctx, m.To.Addr, env)
}

// handle is the transport's Handler: a bootstrap's ID query is answered here,
// so is a state query (see query.go); everything else is stepped into the
// core on the handler's goroutine. Core replies travel as messages of their
// own, so the handler never replies to them.
func (d *Driver) handle(ctx context.Context, env *rpc.Envelope) *rpc.Envelope {
	if env.To.ID == "" && env.Type == rpc.TypeCheckPredecessor {
		return &rpc.Envelope{Type: rpc.TypeCheckTTL} // the transport stamps From: us
	}
	if isStateQuery(env) {
		return d.answerState(ctx)
	}
	if env.Type == rpc.TypeMessage && d.cfg.Messages != nil {
		if env.To.ID == "" {
			// A reply to an application Call that came too late to be
			// matched (the caller gave up): requests always name their
			// target, replies never do.
			return nil
		}
		return d.answerMessage(ctx, env)
	}
	m, err := fromEnvelope(env)
	if err != nil {
		d.log.Debug("dropped an envelope the core cannot read", zap.String("type", env.Type), zap.Error(err))
		return nil
	}
	if err := d.do(ctx, func() {
		d.remember(m.From)
		d.core.Step(m)
	}); err != nil {
		d.dropped.Add(1)
	}
	return nil
}

// State returns a snapshot of the core; after Close, the last one.
func (d *Driver) State() chord.State {
	var st chord.State
	if err := d.do(context.Background(), func() { st = d.core.State() }); err != nil {
		if p := d.last.Load(); p != nil {
			return *p
		}
		d.loopWG.Wait()
		return *d.last.Load()
	}
	return st
}

// Close stops the loop and the senders and closes the transport, without
// telling anyone (use Leave first for a graceful exit). It is idempotent.
func (d *Driver) Close() error {
	var err error
	d.once.Do(func() {
		d.cancel()
		d.loopWG.Wait()
		d.sendWG.Wait()
		err = d.tr.Close()
		d.cache.Close()
	})
	return err
}
