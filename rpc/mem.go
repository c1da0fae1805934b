package rpc

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// MemNetwork connects in-memory transports, for tests. Frames go through the
// codec as on a real wire, and every frame (requests and replies alike) can
// be dropped, delayed or duplicated, or cut by a partition. The faults come
// from one seeded generator, drawn in a fixed order per frame, so a test
// that sends in a fixed order sees the same faults on every run.
type MemNetwork struct {
	mu     sync.Mutex
	rng    *rand.Rand
	faults Faults
	cut    map[[2]string]bool
	nodes  map[string]*MemTransport

	codec *Codec
	log   *zap.Logger
	call  CallOptions

	dropped, duplicated atomic.Uint64
}

// Faults are what a MemNetwork does to each frame.
type Faults struct {
	Drop      float64       // probability that a frame is lost
	Duplicate float64       // probability that a frame arrives twice
	Delay     time.Duration // added to every frame's trip
	Jitter    time.Duration // plus a random extra in [0, Jitter)
}

// MemOption configures a MemNetwork.
type MemOption func(*MemNetwork)

// MemSeed seeds the fault generator (default 1).
func MemSeed(seed uint64) MemOption {
	return func(n *MemNetwork) { n.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// MemLogger sets the logger of the network's transports.
func MemLogger(l *zap.Logger) MemOption { return func(n *MemNetwork) { n.log = l } }

// MemCodec sets the codec of the network's transports.
func MemCodec(c *Codec) MemOption { return func(n *MemNetwork) { n.codec = c } }

// MemCall sets the call options of the network's transports.
func MemCall(o CallOptions) MemOption { return func(n *MemNetwork) { n.call = o } }

// NewMemNetwork returns an empty network without faults.
func NewMemNetwork(opts ...MemOption) *MemNetwork {
	n := &MemNetwork{cut: map[[2]string]bool{}, nodes: map[string]*MemTransport{}}
	MemSeed(1)(n)
	for _, o := range opts {
		o(n)
	}
	return n
}

// SetFaults replaces the faults applied to frames sent from now on.
func (n *MemNetwork) SetFaults(f Faults) {
	n.mu.Lock()
	n.faults = f
	n.mu.Unlock()
}

// Partition cuts the link between addresses a and b, both ways.
func (n *MemNetwork) Partition(a, b string) {
	n.mu.Lock()
	n.cut[link(a, b)] = true
	n.mu.Unlock()
}

// Heal restores the link between a and b.
func (n *MemNetwork) Heal(a, b string) {
	n.mu.Lock()
	delete(n.cut, link(a, b))
	n.mu.Unlock()
}

// HealAll restores every link.
func (n *MemNetwork) HealAll() {
	n.mu.Lock()
	clear(n.cut)
	n.mu.Unlock()
}

// Dropped counts the frames lost to faults, partitions or closed nodes.
func (n *MemNetwork) Dropped() uint64 { return n.dropped.Load() }

// Duplicated counts the frames delivered twice.
func (n *MemNetwork) Duplicated() uint64 { return n.duplicated.Load() }

func link(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// MemTransport is a node's transport on a MemNetwork. Like WS, Send returns
// before delivery; a frame lost to a fault is not reported.
type MemTransport struct {
	*endpoint
	net   *MemNetwork
	addr  string
	calls pending
}

// Transport attaches a node to the network at self.Addr ("mem://name").
func (n *MemNetwork) Transport(self Peer, h Handler) (*MemTransport, error) {
	if _, err := destination(self.Addr, SchemeMem); err != nil {
		return nil, fmt.Errorf("rpc: mem transport: %w", err)
	}
	e, err := newEndpoint("mem", self, nil, h, n.log, n.codec, n.call, 0)
	if err != nil {
		return nil, err
	}
	t := &MemTransport{endpoint: e, net: n, addr: self.Addr}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodes[self.Addr] != nil {
		e.cancel()
		return nil, fmt.Errorf("rpc: mem transport: %s is taken", self.Addr)
	}
	n.nodes[self.Addr] = t
	return t, nil
}

// Addr returns the transport's address.
func (t *MemTransport) Addr() string { return t.addr }

// Send implements Transport.
func (t *MemTransport) Send(ctx context.Context, addr string, env *Envelope) error {
	b, err := t.prepare(addr, env)
	if err != nil {
		return opErr("send", env, addr, err)
	}
	_, err = t.retry(ctx, false, func(context.Context) (*Envelope, error) {
		return nil, t.net.route(t, addr, b, false)
	})
	if err != nil {
		return opErr("send", env, addr, err)
	}
	return nil
}

// Call implements Transport.
func (t *MemTransport) Call(ctx context.Context, addr string, env *Envelope) (*Envelope, error) {
	b, err := t.prepare(addr, env)
	if err != nil {
		return nil, opErr("call", env, addr, err)
	}
	r, err := t.retry(ctx, true, func(ctx context.Context) (*Envelope, error) {
		k := callKey{addr, env.ID}
		ch, err := t.calls.add(k)
		if err != nil {
			return nil, err
		}
		defer t.calls.remove(k)
		if err := t.net.route(t, addr, b, false); err != nil {
			return nil, err
		}
		return awaitReply(ctx, ch)
	})
	if err != nil {
		return nil, opErr("call", env, addr, err)
	}
	return r, nil
}

func (t *MemTransport) prepare(addr string, env *Envelope) ([]byte, error) {
	if t.tasks.isClosed() {
		return nil, ErrClosed
	}
	if _, err := destination(addr, SchemeMem); err != nil {
		return nil, err
	}
	return t.codec.Encode(env)
}

// Close implements Transport.
func (t *MemTransport) Close() error {
	if !t.tasks.close() {
		return nil
	}
	t.net.mu.Lock()
	if t.net.nodes[t.addr] == t {
		delete(t.net.nodes, t.addr)
	}
	t.net.mu.Unlock()
	t.cancel()
	t.calls.fail(ErrClosed)
	t.tasks.wait()
	return nil
}

// route carries a frame from one transport to the node at addr, applying
// the faults. A missing node is reported (like a refused connection); a
// dropped or cut frame is not.
func (n *MemNetwork) route(from *MemTransport, to string, frame []byte, isReply bool) error {
	n.mu.Lock()
	dst := n.nodes[to]
	if dst == nil {
		n.mu.Unlock()
		return fmt.Errorf("%w: no node at %s", ErrUnreachable, to)
	}
	f := n.faults
	cut := n.cut[link(from.addr, to)]
	drop := f.Drop > 0 && n.rng.Float64() < f.Drop
	copies := 1
	if f.Duplicate > 0 && n.rng.Float64() < f.Duplicate {
		copies = 2
	}
	var delays [2]time.Duration
	for i := range copies {
		delays[i] = f.Delay
		if f.Jitter > 0 {
			delays[i] += time.Duration(n.rng.Int64N(int64(f.Jitter)))
		}
	}
	n.mu.Unlock()

	from.stats.out(len(frame))
	if cut || drop {
		n.dropped.Add(1)
		return nil
	}
	if copies == 2 {
		n.duplicated.Add(1)
	}
	for i := range copies {
		delay := delays[i]
		ok := dst.tasks.Go(func() {
			if delay > 0 {
				t := time.NewTimer(delay)
				defer t.Stop()
				select {
				case <-t.C:
				case <-dst.ctx.Done():
					return
				}
			}
			dst.receive(from.addr, frame, isReply)
		})
		if !ok {
			n.dropped.Add(1) // the node closed meanwhile
		}
	}
	return nil
}

// receive takes one frame off the network.
func (t *MemTransport) receive(from string, frame []byte, isReply bool) {
	t.stats.bytesIn.Add(uint64(len(frame)))
	if !isReply {
		if reply, _ := t.serve(t.ctx, frame, false, ""); reply != nil {
			if err := t.net.route(t, from, reply, true); err != nil {
				t.log.Debug("rpc: reply not delivered", zap.String("to", from), zap.Error(err))
			}
		}
		return
	}
	env, err := t.codec.Decode(frame)
	if err != nil {
		err = t.badReply(from, err)
		if id, ok := peekID(frame); ok {
			t.calls.resolve(callKey{from, id}, result{err: err})
		}
		return
	}
	t.stats.received.Add(1)
	if !t.calls.resolve(callKey{from, env.ID}, result{env: env}) {
		t.unmatched(env, "")
	}
}
