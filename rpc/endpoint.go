package rpc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"
)

// endpoint is what every transport shares: identity, codec, handler, logger,
// counters, call policy and the lifetime of its goroutines.
type endpoint struct {
	self    Peer
	auth    *Auth // nil: an open transport (protocol tests)
	codec   *Codec
	handler Handler
	log     *zap.Logger
	opts    CallOptions
	stats   counters
	ctx     context.Context // ends at Close; handlers get it
	cancel  context.CancelFunc
	tasks   tracker
	sem     chan struct{} // bounds the handlers running at once
	work    chan func()   // hands a job to an idle worker (see dispatch)
}

func newEndpoint(kind string, self Peer, auth *Auth, h Handler, log *zap.Logger, codec *Codec, call CallOptions, maxInflight int) (*endpoint, error) {
	if err := checkHexID("self.id", self.ID); err != nil {
		return nil, fmt.Errorf("rpc: %s transport: %w", kind, err)
	}
	if h == nil {
		return nil, fmt.Errorf("rpc: %s transport: no Handler", kind)
	}
	if auth != nil && (auth.Verify == nil || len(auth.Certificate.Certificate) == 0) {
		return nil, fmt.Errorf("rpc: %s transport: Auth needs a Certificate and a Verify", kind)
	}
	if log == nil {
		log = zap.NewNop()
	}
	if codec == nil {
		codec = NewCodec(FlowchainTypes, DefaultMaxSize)
	}
	if maxInflight <= 0 {
		maxInflight = DefaultMaxInflight
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &endpoint{
		self: self, auth: auth, codec: codec, handler: h, opts: call.withDefaults(),
		log: log.With(zap.String("transport", kind), zap.String("self", self.ID[:8])),
		ctx: ctx, cancel: cancel, sem: make(chan struct{}, maxInflight),
		work: make(chan func()),
	}, nil
}

// Stats returns the transport's counters.
func (e *endpoint) Stats() Stats { return e.stats.snapshot() }

// outcome classifies how an incoming request ended, for transports that
// answer with a status (CoAP response codes).
type outcome int

const (
	outOK       outcome = iota
	outBad              // undecodable or invalid
	outTooLarge         // over the size limit
	outNotHere          // addressed to another node
	outFailed           // the handler's reply could not be sent
)

// serve handles one incoming request frame: decode, check the addressee and
// the sender, run the handler, encode its reply. It returns the bytes to send
// back (nil: nothing). A frame that fails gets an error reply when its id can
// be read, or always when answerAll is set (a CoAP request has a token to
// answer on even without an id). peer is the ID the sender authenticated as
// ("" on an open transport).
func (e *endpoint) serve(ctx context.Context, frame []byte, answerAll bool, peer string) ([]byte, outcome) {
	env, reply, out := e.accept(frame, answerAll, peer)
	if env == nil {
		return reply, out
	}
	return e.respond(withPeer(ctx, peer), env)
}

// accept decodes a request frame and checks that it is for this node and,
// when the transport authenticates peers, that it comes from the peer that
// authenticated (peer). It returns the envelope to handle, or nil and what
// to answer instead (see serve). An error report from a peer is logged and
// needs no handling.
func (e *endpoint) accept(frame []byte, answerAll bool, peer string) (*Envelope, []byte, outcome) {
	env, err := e.codec.Decode(frame)
	if err != nil {
		e.stats.decodeErrors.Add(1)
		id, ok := peekID(frame)
		e.log.Warn("rpc: refused an undecodable request", zap.Error(err),
			zap.Int("bytes", len(frame)), zap.Bool("answered", ok || answerAll))
		out := outBad
		if errors.Is(err, ErrTooLarge) {
			out = outTooLarge
		}
		if !ok && !answerAll {
			return nil, nil, out
		}
		return nil, e.errorReply(id, err), out
	}
	e.stats.received.Add(1)
	if err := e.checkSender(env, peer); err != nil {
		return nil, e.errorReply(env.ID, err), outBad
	}
	if env.To.ID != "" && env.To.ID != e.self.ID {
		err := fmt.Errorf("addressed to node %s, but this is node %s", env.To.ID, e.self.ID)
		e.log.Warn("rpc: refused a request for another node", zap.String("type", env.Type),
			zap.String("from", env.From.Addr), zap.String("to", env.To.ID))
		return nil, e.errorReply(env.ID, err), outNotHere
	}
	if env.Type == TypeError {
		e.log.Warn("rpc: peer reported an error", zap.String("from", env.From.Addr),
			zap.Uint64("id", env.ID), zap.String("error", env.Error))
		return nil, nil, outOK
	}
	return env, nil, outOK
}

// respond runs the handler on an accepted envelope and encodes its reply
// (nil: none).
func (e *endpoint) respond(ctx context.Context, env *Envelope) ([]byte, outcome) {
	reply := e.handle(ctx, env)
	if reply == nil {
		return nil, outOK
	}
	r := *reply // the handler may share its reply; stamp a copy
	r.ID = env.ID
	if r.From.IsZero() {
		r.From = e.self
	}
	b, err := e.codec.Encode(&r)
	if err != nil {
		e.log.Error("rpc: the handler's reply failed to encode", zap.String("type", r.Type), zap.Error(err))
		return e.errorReply(env.ID, fmt.Errorf("the reply failed to encode: %w", err)), outFailed
	}
	return b, outOK
}

// handle runs the handler. A panic is logged with its stack and answered
// with an error reply: one bad message must not take the node down.
func (e *endpoint) handle(ctx context.Context, env *Envelope) (reply *Envelope) {
	defer func() {
		if p := recover(); p != nil {
			e.log.Error("rpc: handler panicked", zap.String("type", env.Type), zap.Any("panic", p), zap.Stack("stack"))
			reply = &Envelope{Type: TypeError, Error: "the handler failed on this message"}
		}
	}()
	return e.handler(ctx, env)
}

// errorReply encodes an error reply to request id.
func (e *endpoint) errorReply(id uint64, err error) []byte {
	msg := err.Error()
	if len(msg) > 512 {
		msg = msg[:509] + "..."
	}
	b, encErr := e.codec.Encode(&Envelope{Type: TypeError, ID: id, From: e.self, Error: msg})
	if encErr != nil {
		e.log.Error("rpc: cannot encode an error reply", zap.Error(encErr))
		return nil
	}
	e.stats.errorReplies.Add(1)
	return b
}

// checkSender refuses, on a transport that authenticates peers, a message
// that did not come over an authenticated connection or whose From.ID is not
// the ID its sender authenticated as.
func (e *endpoint) checkSender(env *Envelope, peer string) error {
	if e.auth == nil {
		return nil
	}
	var err error
	if peer == "" {
		err = fmt.Errorf("%w: message on a connection that did not authenticate", ErrAuth)
	} else {
		err = checkFrom(env, peer)
	}
	if err != nil {
		e.stats.refused.Add(1)
		e.log.Warn("rpc: refused a message", zap.String("type", env.Type), zap.String("peer", peer), zap.Error(err))
	}
	return err
}

// refusedPeer counts and logs a peer refused at the handshake, and tells
// Auth.Refused.
func (e *endpoint) refusedPeer(remote string, err error) {
	e.stats.refused.Add(1)
	e.log.Info("rpc: refused a peer", zap.String("remote", remote), zap.Error(err))
	if e.auth != nil && e.auth.Refused != nil {
		e.auth.Refused(remote, err)
	}
}

// unmatched takes a reply that no Call waits for, from the peer that
// authenticated as peer: an error reply is logged (the peer refused something
// this node sent); anything else goes to the handler.
func (e *endpoint) unmatched(env *Envelope, peer string) {
	if e.checkSender(env, peer) != nil {
		return
	}
	if env.Type == TypeError {
		e.log.Warn("rpc: peer refused a message", zap.String("from", env.From.Addr),
			zap.Uint64("id", env.ID), zap.String("error", env.Error))
		return
	}
	ctx := withPeer(e.ctx, peer)
	e.dispatch(func() { e.handle(ctx, env) })
}

// dispatch runs f on a goroutine of its own: an idle worker if there is
// one, a new worker while fewer than maxInflight run, and inline otherwise,
// which slows the reader that called it: backpressure instead of unbounded
// goroutines. Workers are kept for a while between jobs: a fresh goroutine
// per frame cost its creation and, decoding JSON, the growth of its stack,
// a measurable part of a Chord hop on loopback.
func (e *endpoint) dispatch(f func()) {
	select {
	case e.work <- f:
		return
	default:
	}
	select {
	case e.sem <- struct{}{}:
		if !e.tasks.Go(func() { defer func() { <-e.sem }(); e.worker(f) }) {
			<-e.sem
		}
	default:
		f()
	}
}

// workerIdle is how long a worker waits for its next job before it ends.
const workerIdle = 2 * time.Second

// worker runs f, then the jobs dispatch hands it, until it has been idle for
// workerIdle or the transport closes.
func (e *endpoint) worker(f func()) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(workerIdle)
		select {
		case f = <-e.work:
		case <-idle.C:
			return
		case <-e.ctx.Done():
			return
		}
	}
}

// badReply reports a reply that failed to decode.
func (e *endpoint) badReply(from string, err error) error {
	e.stats.decodeErrors.Add(1)
	e.log.Warn("rpc: dropped an undecodable reply", zap.String("from", from), zap.Error(err))
	return fmt.Errorf("reply from %s: %w", from, err)
}

// retry runs attempt until it succeeds, fails for good, or the retries run
// out. Only connection errors and timed-out attempts are retried.
func (e *endpoint) retry(ctx context.Context, isCall bool, attempt func(context.Context) (*Envelope, error)) (*Envelope, error) {
	if isCall {
		e.stats.calls.Add(1)
	}
	for n := 0; ; n++ {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if _, ok := ctx.Deadline(); !ok {
			actx, cancel = context.WithTimeout(ctx, e.opts.Timeout)
		}
		r, err := attempt(actx)
		cancel()
		if err == nil {
			return r, nil
		}
		timedOut := errors.Is(err, context.DeadlineExceeded)
		if timedOut && isCall {
			e.stats.callTimeouts.Add(1)
		}
		retryable := timedOut || errors.Is(err, ErrUnreachable) || errors.Is(err, ErrConnLost)
		if !retryable || n >= e.opts.Retries || ctx.Err() != nil || !retriesAllowed(ctx) {
			return nil, err
		}
		e.stats.retries.Add(1)
		wait := min(e.opts.Backoff<<n, maxBackoff)
		wait = wait/2 + rand.N(wait/2+1) // jitter, so callers that failed together retry apart
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		}
	}
}

// tracker starts goroutines until it is closed, then waits for them.
type tracker struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// Go runs f on a new goroutine, or reports false once the tracker is closed.
func (t *tracker) Go(f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
	return true
}

// close refuses new goroutines; it reports whether this call closed it.
func (t *tracker) close() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	was := t.closed
	t.closed = true
	return !was
}

func (t *tracker) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

func (t *tracker) wait() { t.wg.Wait() }
