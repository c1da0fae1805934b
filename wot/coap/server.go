package coap

import (
	"context"
	"errors"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"go.uber.org/zap"

	"github.com/flownode/flownode/access"
	"github.com/flownode/flownode/wot"
)

// Source is where a request came from: the device's address, and, for a
// request that came over DTLS (the coaps port), the PSK identity its
// session authenticated. The front keeps its state (exchanges, uploads,
// observers) by Source, so a DTLS session's never mixes with plain CoAP
// from the same address, nor with another identity's.
type Source struct {
	Addr     netip.AddrPort
	Identity string // the PSK identity; "" for plain CoAP
	DTLS     bool
}

// Authorizer decides whether a request of src on a Thing may go on: need is
// access.Read for reads (GET, Observe registrations), access.Write for
// /object/{id}/send and any other method. It returns nil, or an error
// wrapping access.ErrNoCredential (answered 4.01 Unauthorized) or
// access.ErrForbidden (4.03 Forbidden); any other error is answered 5.03
// with its message. It runs on the front's workers for every request on a
// Thing (every block of a block-wise one): it must be quick, no I/O.
type Authorizer func(src Source, thing string, need access.Scope) error

// Config configures a Server. Zero values take the defaults.
type Config struct {
	Devices wot.Devices // required
	Log     *zap.Logger
	// Authorize, if set, is asked for every request on a Thing (see
	// Authorizer); nil serves everyone. /.well-known/core and
	// /.well-known/wot are always open.
	Authorize Authorizer

	// MaxBody bounds a request body, reassembled or not (default 64 KiB):
	// larger ones get 4.13 with Size1.
	MaxBody int
	// Workers parse and dispatch datagrams (default GOMAXPROCS, at least
	// 2), each those of its share of the source addresses, in the order
	// they came; Queue bounds the datagrams waiting for them (default 1024,
	// split among them): more are dropped, as a full socket buffer would.
	Workers int
	Queue   int
	// MaxInflight bounds the requests waiting on Devices at once (default
	// 256); more get 5.03 with Max-Age.
	MaxInflight int
	// RequestTimeout bounds one request's wait on Devices (default 30s).
	RequestTimeout time.Duration
	// SeparateAfter is how long a confirmable request may wait on Devices
	// before it is acknowledged with an empty ACK and answered separately
	// (default 500ms, well below the 2 s ACK_TIMEOUT clients retransmit
	// after).
	SeparateAfter time.Duration

	// MaxSources bounds the source addresses state is kept for (default
	// 512); when full, the longest silent one without observers is
	// forgotten. Per source: ExchangesPerSource responses kept for
	// retransmitted requests (default 32) for ExchangeLifetime (default
	// 247 s, RFC 7252's EXCHANGE_LIFETIME).
	MaxSources         int
	ExchangesPerSource int
	ExchangeLifetime   time.Duration

	// Block-wise transfers. MaxUploads bounds the Block1 uploads being
	// reassembled (default 64; 4 per source); one silent for BlockTimeout
	// (default 30s) is dropped. Large responses are kept for BlockTimeout
	// for their Block2 blocks, at most MaxCachedBytes of them (default
	// 4 MiB; 4 per source).
	MaxUploads     int
	BlockTimeout   time.Duration
	MaxCachedBytes int

	// MaxObservers bounds the observers (default 1024; 16 per source). A
	// registration beyond gets a plain response, without Observe.
	MaxObservers int
	// ObserveCheck is how long an observer may go without acknowledging a
	// confirmable notification (default 10m): a quiet Thing's observers
	// then get its last value again, confirmable, so that one that went
	// away is noticed (RFC 7641 §4.5 asks for one a day at least).
	ObserveCheck time.Duration
	// AckTimeout and MaxRetransmit time the confirmable messages this
	// server sends (separate responses, notifications): RFC 7252's
	// defaults, 2s and 4.
	AckTimeout    time.Duration
	MaxRetransmit int
	// PresenceIdle is how long a device counts as present after its last
	// reading (default 60s).
	PresenceIdle time.Duration
}

// Per-source bounds that need no tuning.
const (
	uploadsPerSource   = 4
	cachedPerSource    = 4
	observersPerSource = 16
	presencePerSource  = 8
	maxOutbox          = 4096 // confirmable messages awaiting their ACK
	sweepEvery         = time.Second
)

func (c *Config) defaults() error {
	if c.Devices == nil {
		return errors.New("coap: Config.Devices is required")
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.MaxBody, 64<<10)
	def(&c.Workers, max(2, runtime.GOMAXPROCS(0)))
	def(&c.Queue, 1024)
	def(&c.MaxInflight, 256)
	defd(&c.RequestTimeout, 30*time.Second)
	defd(&c.SeparateAfter, 500*time.Millisecond)
	def(&c.MaxSources, 512)
	def(&c.ExchangesPerSource, 32)
	defd(&c.ExchangeLifetime, 247*time.Second)
	def(&c.MaxUploads, 64)
	defd(&c.BlockTimeout, 30*time.Second)
	def(&c.MaxCachedBytes, 4<<20)
	def(&c.MaxObservers, 1024)
	defd(&c.ObserveCheck, 10*time.Minute)
	defd(&c.AckTimeout, 2*time.Second)
	def(&c.MaxRetransmit, 4)
	defd(&c.PresenceIdle, time.Minute)
	return nil
}

// Server is the CoAP device front. Datagram is its input (an
// rpc.PlainCoAP); it answers on the reply function each datagram comes
// with.
type Server struct {
	cfg      Config
	dev      wot.Devices
	log      *zap.Logger
	queues   []chan datagram // a worker's, by hash of the source address
	inflight chan struct{}   // a slot per request waiting on Devices
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mid      atomic.Uint32 // message IDs of the messages this server originates
	stopped  atomic.Bool   // Close was called: Datagram drops
	stats    Stats

	mu      sync.Mutex
	closed  bool
	sources map[Source]*source
	uploads int // Block1 uploads in progress, all sources
	cached  int // bytes of responses kept for Block2, all sources
	nobs    int // observers, all sources
	outbox  map[outKey]*outgoing
}

// Stats counts what the front did; read with Snapshot.
type Stats struct {
	Received, Dropped, Malformed, Duplicates, Requests, Busy atomic.Uint64
	// Refused counts requests Authorize refused.
	Refused atomic.Uint64
}

type datagram struct {
	b     []byte
	from  Source
	reply func([]byte) error
}

// New starts a Server's workers and sweeper; Close stops them.
func New(cfg Config) (*Server, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, dev: cfg.Devices, log: cfg.Log,
		inflight: make(chan struct{}, cfg.MaxInflight),
		sources:  map[Source]*source{}, outbox: map[outKey]*outgoing{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mid.Store(uint32(message.RandMID()))
	for range cfg.Workers {
		q := make(chan datagram, max(1, cfg.Queue/cfg.Workers))
		s.queues = append(s.queues, q)
		s.wg.Add(1)
		go s.work(q)
	}
	s.wg.Add(1)
	go s.sweepLoop()
	return s, nil
}

// Datagram queues a plain CoAP datagram from a device, or drops it when the
// queue is full; it never blocks. It is an rpc.PlainCoAP. A source's
// datagrams all go to one worker, so that they are handled in the order
// they came (the blocks of a non-confirmable upload, say).
func (s *Server) Datagram(dgram []byte, from netip.AddrPort, reply func([]byte) error) {
	s.enqueue(dgram, Source{Addr: from}, reply)
}

// SecureDatagram queues a datagram that came decrypted from a DTLS session
// whose PSK identity is identity, as Datagram does; reply encrypts on that
// session. It is a coaps.Handler.
func (s *Server) SecureDatagram(dgram []byte, from netip.AddrPort, identity string, reply func([]byte) error) {
	s.enqueue(dgram, Source{Addr: from, Identity: identity, DTLS: true}, reply)
}

func (s *Server) enqueue(dgram []byte, from Source, reply func([]byte) error) {
	s.stats.Received.Add(1)
	if s.stopped.Load() {
		s.stats.Dropped.Add(1)
		return
	}
	select {
	case s.queues[workerOf(from.Addr, len(s.queues))] <- datagram{b: dgram, from: from, reply: reply}:
	default:
		s.stats.Dropped.Add(1)
	}
}

// Stats returns the front's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Close stops the workers, ends the observations and releases the
// devices' presence. Datagrams that come after are dropped.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.stopped.Store(true)
	var after []func()
	for addr, src := range s.sources {
		after = append(after, s.forgetLocked(addr, src)...)
	}
	for k, o := range s.outbox {
		o.timer.Stop()
		delete(s.outbox, k)
	}
	s.mu.Unlock()
	s.cancel()
	for _, f := range after {
		f()
	}
	s.wg.Wait()
}

// workerOf spreads the source addresses over n workers (FNV-1a).
func workerOf(from netip.AddrPort, n int) int {
	h := uint32(2166136261)
	for _, b := range from.Addr().As16() {
		h = (h ^ uint32(b)) * 16777619
	}
	p := from.Port()
	h = (h ^ uint32(p&0xff)) * 16777619
	h = (h ^ uint32(p>>8)) * 16777619
	return int(h % uint32(n))
}

func (s *Server) work(q chan datagram) {
	defer s.wg.Done()
	for {
		select {
		case d := <-q:
			s.handle(d)
		case <-s.ctx.Done():
			return
		}
	}
}

func (s *Server) sweepLoop() {
	defer s.wg.Done()
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			s.sweep(now)
		case <-s.ctx.Done():
			return
		}
	}
}

// nextMID returns a message ID for a message this server originates.
func (s *Server) nextMID() uint16 { return uint16(s.mid.Add(1)) }

// send writes a datagram, logging a failure.
func (s *Server) send(reply func([]byte) error, b []byte) {
	if err := reply(b); err != nil {
		s.log.Debug("coap: cannot send", zap.Error(err))
	}
}
