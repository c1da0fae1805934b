package httpguard

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// phase is where a plain connection stands, for eviction.
type phase uint8

const (
	phaseWaiting  phase = iota // accepted or idle: no whole request header yet; evictable
	phaseBody                  // its handler is reading the body: evictable
	phaseServing               // its handler runs: never evicted
	phaseHijacked              // a handler took it over (WebSocket): counted apart, never evicted
)

// conn is one accepted connection. Its Close tells the table, whoever
// closes it: the server, a WebSocket handler after hijacking, or an
// eviction.
type conn struct {
	net.Conn
	t    *table
	once sync.Once

	// Guarded by t.mu.
	phase    phase
	since    time.Time // when it entered phase
	reserved bool      // its request holds a place among the hijacked (an upgrade)
	gone     bool
}

func (c *conn) Close() error {
	c.once.Do(func() { c.t.remove(c) })
	return c.Conn.Close()
}

// table is the set of open connections.
type table struct {
	lim Limits
	now func() time.Time

	mu       sync.Mutex
	plain    map[*conn]struct{}
	hijacked int // hijacked connections open
	reserved int // upgrade requests being served, not yet hijacked
	evicted  uint64
	refused  uint64
}

func newTable(lim Limits, now func() time.Time) *table {
	return &table{lim: lim, now: now, plain: make(map[*conn]struct{})}
}

// admit makes room for c among the plain connections, evicting the oldest
// evictable one at the cap, and says whether c may stay. The victim is
// closed after the lock is released.
func (t *table) admit(c *conn) bool {
	t.mu.Lock()
	var victim *conn
	if len(t.plain) >= t.lim.MaxConns {
		victim = t.victimLocked()
		if victim == nil {
			t.refused++
			t.mu.Unlock()
			return false
		}
		t.dropLocked(victim)
		t.evicted++
	}
	c.phase, c.since = phaseWaiting, t.now()
	t.plain[c] = struct{}{}
	t.mu.Unlock()
	if victim != nil {
		victim.Close()
	}
	return true
}

// victimLocked is the connection to close for a newcomer, or nil: the
// oldest one that is not being served, that is idle, has not sent a whole
// request header, or is still reading its body; a connection is as old as
// its current phase. The newest are the last to go, so a newcomer has the
// time to send its request even while a flood of connections arrives; an
// upload cut under such a flood is retried by its client, whereas refusing
// newcomers would stop the node answering anyone. Connections being served
// are never closed. A scan: the table holds at most MaxConns, and it runs
// only at the cap.
func (t *table) victimLocked() *conn {
	var v *conn
	for c := range t.plain {
		if c.phase != phaseWaiting && c.phase != phaseBody {
			continue
		}
		if v == nil || c.since.Before(v.since) {
			v = c
		}
	}
	return v
}

func (t *table) dropLocked(c *conn) {
	if c.gone {
		return
	}
	c.gone = true
	if c.phase == phaseHijacked {
		t.hijacked--
		return
	}
	delete(t.plain, c)
	if c.reserved {
		c.reserved = false
		t.reserved--
	}
}

func (t *table) remove(c *conn) {
	t.mu.Lock()
	t.dropLocked(c)
	t.mu.Unlock()
}

// set moves c to phase p, unless it is gone or hijacked.
func (t *table) set(c *conn, p phase) {
	t.mu.Lock()
	if !c.gone && c.phase != phaseHijacked {
		c.phase, c.since = p, t.now()
	}
	t.mu.Unlock()
}

// hijack moves c from the plain connections to the hijacked ones, taking
// over the place its upgrade request reserved.
func (t *table) hijack(c *conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c.gone || c.phase == phaseHijacked {
		return
	}
	delete(t.plain, c)
	if c.reserved {
		c.reserved = false
		t.reserved--
	}
	c.phase = phaseHijacked
	t.hijacked++
}

// reserve takes a place among the hijacked for an upgrade request on c.
func (t *table) reserve(c *conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.hijacked+t.reserved >= t.lim.MaxHijacked {
		return false
	}
	if !c.reserved && !c.gone {
		c.reserved = true
		t.reserved++
	}
	return true
}

// unreserve gives back the place of an upgrade request that did not hijack.
func (t *table) unreserve(c *conn) {
	t.mu.Lock()
	if c.reserved {
		c.reserved = false
		t.reserved--
	}
	t.mu.Unlock()
}

// Stats are the guard's counters.
type Stats struct {
	Conns    int    // plain connections open
	Hijacked int    // hijacked connections open
	Evicted  uint64 // connections closed to make room for a new one
	Refused  uint64 // new connections closed because none could be evicted
	Busy     uint64 // requests answered 503: no share of the body bytes in time, or too many WebSockets
	TimedOut uint64 // requests answered 408: the body did not arrive in time
	Rejected uint64 // requests refused by a check: Host (421), Origin (403), media type (415)
}

func (t *table) stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Stats{Conns: len(t.plain), Hijacked: t.hijacked, Evicted: t.evicted, Refused: t.refused}
}

// listener admits each accepted connection into the table, or closes it.
type listener struct {
	net.Listener
	t *table
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c := &conn{Conn: nc, t: l.t}
		if l.t.admit(c) {
			return c, nil
		}
		nc.Close() // at the cap, and every connection is busy serving
	}
}

// connState follows the server's view of each connection.
func (t *table) connState(nc net.Conn, s http.ConnState) {
	c, ok := nc.(*conn)
	if !ok {
		return
	}
	switch s {
	case http.StateActive:
		// The server says so once a whole request header is in.
		t.set(c, phaseServing)
	case http.StateIdle:
		t.set(c, phaseWaiting)
	case http.StateHijacked:
		t.hijack(c)
	case http.StateClosed:
		t.remove(c)
	}
}

type connKey struct{}

func connContext(ctx context.Context, nc net.Conn) context.Context {
	if c, ok := nc.(*conn); ok {
		return context.WithValue(ctx, connKey{}, c)
	}
	return ctx
}

// connOf is the guarded connection r arrived on, or nil (a server the guard
// did not configure).
func connOf(r *http.Request) *conn {
	c, _ := r.Context().Value(connKey{}).(*conn)
	return c
}
