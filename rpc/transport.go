package rpc

import (
	"context"
	"fmt"
	"time"
)

// Handler is what a node does with an incoming envelope. Its return value is
// the reply (nil: none). The transport stamps the request's ID on the reply,
// and this node as its From when From is empty. ctx ends when the transport
// closes. Handlers run concurrently.
//
// A reply that arrives too late for its Call is handed to the Handler like
// any incoming envelope, and its return value is dropped: a node that matches
// replies to requests itself, as the Chord core does, loses nothing. So is a
// reply to a Send over WS and the in-memory transport; CoAP drops it (see
// CoAP). Use Call to get a reply.
type Handler func(ctx context.Context, env *Envelope) (reply *Envelope)

// Transport carries envelopes between nodes. Implementations: WS, CoAP,
// MemTransport, and Multi, which picks one of them by address scheme.
type Transport interface {
	// Send delivers env to the node at addr, one way: it returns once env
	// is on its way (written to the connection, or to the socket), never
	// after the far side has handled it. It reuses connections.
	Send(ctx context.Context, addr string, env *Envelope) error
	// Call sends env and waits for the reply correlated by env.ID (the
	// handler's return value on the far side), honouring ctx's deadline.
	Call(ctx context.Context, addr string, env *Envelope) (*Envelope, error)
	// Close stops the transport: it closes every connection, ends every
	// goroutine it started and fails the calls still waiting.
	Close() error
}

// CallOptions bound how long Call and Send wait and how often they retry.
// Zero fields take the defaults.
type CallOptions struct {
	// Timeout limits each attempt when ctx has no deadline (default 3s).
	// When ctx has a deadline, that deadline is the only limit: a slow
	// handler is never cut short and retried behind the caller's back.
	Timeout time.Duration
	// Retries is the number of extra attempts after a connection error or
	// an attempt that timed out (default 2; negative: none). Error replies
	// and encoding errors are never retried. A retried Call may run twice on
	// the far side.
	Retries int
	// Backoff is the pause before the first retry, doubled before each next
	// one, with jitter (default 50ms).
	Backoff time.Duration
}

// Defaults for CallOptions and the transports.
const (
	DefaultCallTimeout = 3 * time.Second
	DefaultRetries     = 2
	DefaultBackoff     = 50 * time.Millisecond
	DefaultMaxInflight = 64
	maxBackoff         = time.Second
)

func (o CallOptions) withDefaults() CallOptions {
	if o.Timeout <= 0 {
		o.Timeout = DefaultCallTimeout
	}
	if o.Retries == 0 {
		o.Retries = DefaultRetries
	} else if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	return o
}

type noRetriesKey struct{}

// WithoutRetries returns a context under which Call and Send make a single
// attempt, whatever CallOptions.Retries says: for callers that own their
// retry policy and must know that a failed request ran at most once.
func WithoutRetries(ctx context.Context) context.Context {
	return context.WithValue(ctx, noRetriesKey{}, true)
}

func retriesAllowed(ctx context.Context) bool { return ctx.Value(noRetriesKey{}) == nil }

// opErr gives an error the context of the operation that failed.
func opErr(op string, env *Envelope, addr string, err error) error {
	if env == nil {
		return fmt.Errorf("rpc: %s to %s: %w", op, addr, err)
	}
	return fmt.Errorf("rpc: %s %s %d to %s: %w", op, env.Type, env.ID, addr, err)
}

// destination checks that addr uses scheme and returns the part after "://".
func destination(addr, scheme string) (string, error) {
	s, rest, err := SplitAddr(addr)
	if err != nil {
		return "", err
	}
	if s != scheme {
		return "", fmt.Errorf("%w: %q: this transport speaks %s://", ErrBadAddr, addr, scheme)
	}
	return rest, nil
}
