package coaps

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"go.uber.org/zap"
)

// Handler takes a decrypted datagram from a session: its source, the PSK
// identity the session authenticated, and the function that sends a
// datagram back on the session (encrypted). It must not block: the
// session's datagrams wait while it runs. dgram is the handler's.
type Handler func(dgram []byte, from netip.AddrPort, identity string, reply func([]byte) error)

// Config configures a Listener.
type Config struct {
	// PSK returns the key of a PSK identity, or an error for an identity
	// that has none (unknown, revoked, expired): its handshake fails. It
	// runs during handshakes, on their goroutines.
	PSK func(identity []byte) (key []byte, err error)
	// Handler gets the sessions' datagrams.
	Handler Handler
	Limits  Limits
	Log     *zap.Logger
}

// MaxIdentity bounds a PSK identity (libcoap's clients send at most 128
// bytes); a longer one fails the handshake before PSK is asked.
const MaxIdentity = 256

const (
	// maxDatagram bounds a datagram of a session; a larger one is dropped.
	// CoAP over DTLS keeps datagrams within the path MTU (large bodies go
	// block-wise), so this only stops waste.
	maxDatagram = 4 << 10
	// queueLen bounds the datagrams waiting for one connection's reader:
	// more are dropped, as a full socket buffer would.
	queueLen = 16
	// mtu is the DTLS record size pion keeps to: IPv6's minimum MTU, the
	// size RFC 7925 §11 assumes for constrained networks.
	mtu = 1280
	// sweepEvery is how often idle sessions are looked for.
	sweepEvery = time.Second
)

// suites are the cipher suites accepted, all PSK with an AEAD:
// TLS_PSK_WITH_AES_128_CCM_8 is RFC 7925's mandatory one. The client's
// order of preference decides: libcoap's OpenSSL and GnuTLS clients both
// offer all four and pick CHACHA20_POLY1305 (which suits a gateway without
// AES instructions).
var suites = []dtls.CipherSuiteID{
	dtls.TLS_PSK_WITH_AES_128_CCM_8,
	dtls.TLS_PSK_WITH_AES_128_CCM,
	dtls.TLS_PSK_WITH_AES_128_GCM_SHA256,
	dtls.TLS_PSK_WITH_CHACHA20_POLY1305_SHA256,
}

// Listener is a coaps port: DTLS PSK sessions by source address.
type Listener struct {
	cfg    Config
	lim    Limits
	ln     *net.UDPConn
	log    *zap.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stats  Stats

	mu         sync.Mutex
	evictAfter time.Duration // evictAfter; tests shorten it
	closed     bool
	hs         map[netip.AddrPort]*conn // handshakes in progress
	sess       map[netip.AddrPort]*conn // established sessions
	hsPerIP    map[netip.Addr]int
	sessPerIP  map[netip.Addr]int
	// known are the IP addresses that had a session lately (when, Unix
	// nanoseconds), at most 2×MaxSessions: their ClientHellos may push out
	// any unverified handshake (see admitLocked).
	known map[netip.Addr]int64
}

// Stats counts what a Listener did.
type Stats struct {
	Handshakes atomic.Uint64 // completed
	Failed     atomic.Uint64 // handshakes that failed or timed out (wrong key, unknown identity, ...)
	Refused    atomic.Uint64 // ClientHellos or handshakes refused by the Limits
	PushedOut  atomic.Uint64 // unverified handshakes pushed out by newer ClientHellos
	Evicted    atomic.Uint64 // sessions closed for new ones, or for idleness
	Dropped    atomic.Uint64 // datagrams dropped: oversized, no session, a full queue
}

// Listen listens on the UDP address addr ("HOST:PORT", ":PORT"; port 0 picks
// a free one) and serves it (Serve).
func Listen(addr string, cfg Config) (*Listener, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("coaps address %q: %w", addr, err)
	}
	ln, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, err
	}
	return Serve(ln, cfg)
}

// Serve serves DTLS PSK sessions on ln, which the Listener owns from then
// on: Close closes it.
func Serve(ln *net.UDPConn, cfg Config) (*Listener, error) {
	if err := cfg.check(); err != nil {
		ln.Close()
		return nil, err
	}
	lim := cfg.Limits
	lim.defaults()
	l := &Listener{cfg: cfg, lim: lim, ln: ln, log: cfg.Log,
		hs: map[netip.AddrPort]*conn{}, sess: map[netip.AddrPort]*conn{},
		hsPerIP: map[netip.Addr]int{}, sessPerIP: map[netip.Addr]int{}, evictAfter: evictAfter,
		known: map[netip.Addr]int64{}}
	if l.log == nil {
		l.log = zap.NewNop()
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Add(2)
	go l.serve()
	go l.sweepLoop()
	return l, nil
}

func (c *Config) check() error {
	switch {
	case c.PSK == nil:
		return errors.New("coaps: Config.PSK is required")
	case c.Handler == nil:
		return errors.New("coaps: Config.Handler is required")
	}
	return nil
}

// Addr is the address the Listener listens on.
func (l *Listener) Addr() netip.AddrPort {
	return l.ln.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Stats returns the Listener's counters.
func (l *Listener) Stats() *Stats { return &l.stats }

// Sessions returns the number of established sessions and of handshakes in
// progress.
func (l *Listener) Sessions() (sessions, handshakes int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sess), len(l.hs)
}

// Close closes the socket and every session (telling each peer with a
// close_notify alert), and waits for their goroutines.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	var all []*conn
	for _, c := range l.hs {
		all = append(all, c)
	}
	for _, c := range l.sess {
		all = append(all, c)
	}
	l.mu.Unlock()
	for _, c := range all {
		c.shutdown()
	}
	l.cancel()
	err := l.ln.Close()
	l.wg.Wait()
	return err
}

// serve is the read loop: it routes each datagram to its source's
// connection, and starts handshakes.
func (l *Listener) serve() {
	defer l.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := l.ln.ReadFromUDPAddrPort(buf)
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			l.log.Warn("coaps: read failed", zap.Error(err))
			select { // do not spin on a persistent error
			case <-time.After(10 * time.Millisecond):
			case <-l.ctx.Done():
				return
			}
			continue
		}
		rec, ok := parseRecord(buf[:n])
		if n > maxDatagram || !ok {
			l.stats.Dropped.Add(1)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if c := l.route(from, rec); c != nil {
			c.deliver(append([]byte(nil), buf[:n]...))
		} else {
			l.stats.Dropped.Add(1)
		}
	}
}

// route returns the connection a datagram from a source goes to, starting a
// handshake for a ClientHello if the Limits allow; nil drops it.
//
// A ClientHello goes to the source's handshake (its retransmissions, and
// the one that echoes the cookie), or starts one; a ClientHello without a
// cookie from a source whose handshake is past its cookie means the client
// started over. Other records of epoch 0 belong to the handshake. Records
// of a later epoch belong to the handshake once its source proved its
// address (echoed the cookie: it is about to replace the session), else to
// the session: so a forged ClientHello with a device's address cannot cut
// its session off.
func (l *Listener) route(from netip.AddrPort, rec record) *conn {
	var stale []*conn
	defer func() {
		for _, c := range stale {
			c.shutdown()
		}
	}()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	hs := l.hs[from]
	switch {
	case rec.clientHello:
		if hs != nil && hs.verified && !rec.cookie {
			l.dropHandshakeLocked(hs)
			// A handshake that has just become the session (establish ran, its run
			// has not dropped it from hs yet) is the session: a ClientHello
			// forged from its address must not shut it down.
			if !hs.inSession {
				stale = append(stale, hs)
			}
			hs = nil
		}
		if hs == nil {
			var pushed []*conn
			hs, pushed = l.admitLocked(from)
			stale = append(stale, pushed...)
			if hs == nil {
				return nil
			}
		}
		if rec.cookie {
			hs.verified = true
		}
		return hs
	case rec.epoch == 0:
		return hs
	case hs != nil && hs.verified:
		return hs
	}
	return l.sess[from]
}

// admitLocked starts the handshake of a source, within the Limits. A
// source IP at its share is refused: a flood from one address costs a map
// look-up per datagram, and nothing else. A full table pushes out its
// oldest unverified handshake if that one had pushOutAge to echo its
// cookie (a round trip), else refuses: forged ClientHellos from many
// addresses then cost at most MaxHandshakes pion connections per
// pushOutAge. A ClientHello from an address that had a session lately (a
// device coming back) pushes one out whatever its age, so such a flood
// does not keep known devices out; a new device's ClientHello only finds a
// slot now and then (it retransmits it after a second). It returns the new
// connection and the one pushed out, to shut down unlocked.
func (l *Listener) admitLocked(from netip.AddrPort) (*conn, []*conn) {
	ip := from.Addr()
	if l.hsPerIP[ip] >= l.lim.HandshakesPerIP {
		l.stats.Refused.Add(1)
		return nil, nil
	}
	var pushed []*conn
	if len(l.hs) >= l.lim.MaxHandshakes {
		_, known := l.known[ip]
		v := l.oldestUnverifiedLocked(known)
		if v == nil || !known && time.Since(v.started) < pushOutAge {
			l.stats.Refused.Add(1)
			return nil, nil
		}
		l.dropHandshakeLocked(v)
		pushed = append(pushed, v)
		l.stats.PushedOut.Add(1)
	}
	c := newConn(l, from)
	_, c.known = l.known[ip]
	l.hs[from] = c
	l.hsPerIP[ip]++
	c.inHandshake = true
	l.wg.Add(1)
	go c.run()
	return c, pushed
}

// oldestUnverifiedLocked returns the oldest handshake whose source has not
// echoed its cookie, of a known address only if byKnown.
func (l *Listener) oldestUnverifiedLocked(byKnown bool) *conn {
	var v *conn
	for _, c := range l.hs {
		if !c.verified && (byKnown || !c.known) && (v == nil || c.started.Before(v.started)) {
			v = c
		}
	}
	return v
}

// dropHandshakeLocked forgets c as a handshake in progress.
func (l *Listener) dropHandshakeLocked(c *conn) {
	if !c.inHandshake {
		return
	}
	c.inHandshake = false
	if l.hs[c.from] == c {
		delete(l.hs, c.from)
	}
	ip := c.from.Addr()
	if l.hsPerIP[ip]--; l.hsPerIP[ip] <= 0 {
		delete(l.hsPerIP, ip)
	}
}

// dropSessionLocked forgets c as an established session.
func (l *Listener) dropSessionLocked(c *conn) {
	if !c.inSession {
		return
	}
	c.inSession = false
	if l.sess[c.from] == c {
		delete(l.sess, c.from)
	}
	ip := c.from.Addr()
	if l.sessPerIP[ip]--; l.sessPerIP[ip] <= 0 {
		delete(l.sessPerIP, ip)
	}
}

// errTooManySessions fails a handshake when the session Limits are reached
// and no session has been silent long enough to give way.
var errTooManySessions = errors.New("coaps: too many sessions")

// establish makes c, whose handshake just authenticated identity, the
// session of its source, replacing the source's previous one. The session
// Limits may close the longest silent session for it, if it has been silent
// for evictAfter; else the handshake fails.
func (l *Listener) establish(c *conn, identity string) error {
	var closing []*conn
	defer func() {
		for _, v := range closing {
			l.wg.Add(1)
			go func() { defer l.wg.Done(); v.shutdown() }()
		}
	}()
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || c.gone {
		return net.ErrClosed
	}
	old := l.sess[c.from]
	ip := c.from.Addr()
	perIP, total := l.sessPerIP[ip], len(l.sess)
	if old != nil {
		perIP--
		total--
	}
	if perIP >= l.lim.SessionsPerIP {
		v := l.idlestLocked(now, old, func(o *conn) bool { return o.from.Addr() == ip })
		if v == nil {
			l.stats.Refused.Add(1)
			return errTooManySessions
		}
		l.dropSessionLocked(v)
		closing = append(closing, v)
		total--
	}
	if total >= l.lim.MaxSessions {
		v := l.idlestLocked(now, old, func(*conn) bool { return true })
		if v == nil {
			l.stats.Refused.Add(1)
			return errTooManySessions
		}
		l.dropSessionLocked(v)
		closing = append(closing, v)
	}
	l.stats.Evicted.Add(uint64(len(closing)))
	if old != nil {
		l.dropSessionLocked(old)
		closing = append(closing, old)
	}
	c.identity = identity
	c.inSession = true
	l.sess[c.from] = c
	l.sessPerIP[ip]++
	l.rememberLocked(ip, now)
	return nil
}

// rememberLocked notes that ip had a session at now, forgetting the
// longest unseen address when 2×MaxSessions are noted.
func (l *Listener) rememberLocked(ip netip.Addr, now time.Time) {
	if _, ok := l.known[ip]; !ok && len(l.known) >= 2*l.lim.MaxSessions {
		var oldest netip.Addr
		var at int64
		for a, t := range l.known {
			if !oldest.IsValid() || t < at {
				oldest, at = a, t
			}
		}
		delete(l.known, oldest)
	}
	l.known[ip] = now.UnixNano()
}

// idlestLocked returns the session silent the longest among those match
// accepts, but not skip, if it has been silent for evictAfter.
func (l *Listener) idlestLocked(now time.Time, skip *conn, match func(*conn) bool) *conn {
	var v *conn
	for _, c := range l.sess {
		if c != skip && match(c) && (v == nil || c.last.Load() < v.last.Load()) {
			v = c
		}
	}
	if v == nil || now.Sub(time.Unix(0, v.last.Load())) < l.evictAfter {
		return nil
	}
	return v
}

func (l *Listener) sweepLoop() {
	defer l.wg.Done()
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			l.sweep(now)
		case <-l.ctx.Done():
			return
		}
	}
}

// sweep closes the sessions idle for IdleTimeout.
func (l *Listener) sweep(now time.Time) {
	var idle []*conn
	l.mu.Lock()
	for _, c := range l.sess {
		if now.Sub(time.Unix(0, c.last.Load())) > l.lim.IdleTimeout {
			idle = append(idle, c)
		}
	}
	l.mu.Unlock()
	l.stats.Evicted.Add(uint64(len(idle)))
	for _, c := range idle {
		c.shutdown()
	}
}
