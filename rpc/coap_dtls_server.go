package rpc

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/transport/v5/deadline"
	"github.com/plgd-dev/go-coap/v3/udp/client"
	"go.uber.org/zap"
)

// dtlsServer is an authenticating transport's listening socket. Its read
// loop hands each datagram to the session of its source; a source without
// one gets no state until it echoes a cookie (see coap_dtls.go), then a
// pion server session within the bounds of CoAPConfig (MaxHandshakes, at
// most maxHandshakesPerSource per IP address, MaxSessions, DialTimeout for
// the handshake, IdleTimeout once authenticated). pion's own listener is
// not used: it makes a connection for any source that sends a ClientHello.
// Requests and one-way messages that arrive on a session are handled with
// the ID it authenticated (AuthenticatedPeer), and answered on it: nothing
// is ever sent to a source that did not complete a handshake, except a
// HelloVerifyRequest.
type dtlsServer struct {
	t       *CoAP
	ln      *net.UDPConn
	cookies *cookieJar

	mu      sync.Mutex
	closed  bool
	conns   map[netip.AddrPort]*dtlsConn
	pending map[netip.Addr]int // handshakes in progress, by source IP
	npend   int
}

// dtlsConn is one source's datagrams, as the net.PacketConn of its pion
// session, and then the session.
type dtlsConn struct {
	s      *dtlsServer
	from   netip.AddrPort
	raddr  *net.UDPAddr
	random [32]byte // of the ClientHello that began the session
	in     chan []byte
	rd     *deadline.Deadline
	done   chan struct{}
	once   sync.Once
	last   atomic.Int64 // when its last datagram came, Unix nanoseconds

	// Under s.mu.
	handshaking bool
	cc          *client.Conn // once authenticated
	peerID      string
	chain       [][]byte
}

const (
	// dtlsQueue bounds the datagrams waiting for one session's reader:
	// more are dropped, as a full socket buffer would.
	dtlsQueue = 16
	// maxDTLSDatagram bounds one datagram of a session (its MTU is
	// dtlsMTU); a larger one is dropped.
	maxDTLSDatagram = 8 << 10
)

func (s *dtlsServer) serve() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := s.ln.ReadFromUDPAddrPort(buf)
		if err != nil {
			if s.t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.t.log.Warn("rpc: coaps read failed", zap.Error(err))
			select { // do not spin on a persistent error
			case <-time.After(10 * time.Millisecond):
			case <-s.t.ctx.Done():
				return
			}
			continue
		}
		if n > maxDTLSDatagram {
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if isPlainCoAP(buf[:n]) {
			s.plain(buf[:n], from)
			continue
		}
		s.mu.Lock()
		c := s.conns[from]
		s.mu.Unlock()
		if ch, seq, ok := clientHello(buf[:n]); ok {
			s.hello(c, from, ch.Cookie, [32]byte(ch.Random.MarshalFixed()), seq, buf[:n])
			continue
		}
		if c != nil {
			c.deliver(bytes.Clone(buf[:n]))
		}
		// Anything else from a source without a session (a stray record)
		// is dropped: it costs no state.
	}
}

// isPlainCoAP tells a CoAP version 1 datagram from a DTLS record by its
// first byte, as RFC 7983 demultiplexes them: 64..127 is CoAP, 20..63 DTLS.
func isPlainCoAP(dgram []byte) bool {
	return len(dgram) > 0 && dgram[0] >= 64 && dgram[0] <= 127
}

// plain hands a plain CoAP datagram to CoAPConfig.Plain, with a reply on
// this socket, or drops it. dgram is the read loop's buffer: the handler
// gets a copy.
func (s *dtlsServer) plain(dgram []byte, from netip.AddrPort) {
	h := s.t.cfg.Plain
	if h == nil {
		return
	}
	h(bytes.Clone(dgram), from, func(b []byte) error {
		_, err := s.ln.WriteToUDPAddrPort(b, from)
		return err
	})
}

// hello takes a ClientHello that may start a session: without a valid
// cookie it is answered with one, statelessly; with one, it starts a session
// if the bounds allow.
func (s *dtlsServer) hello(c *dtlsConn, from netip.AddrPort, cookie []byte, random [32]byte, seq uint64, dgram []byte) {
	if !s.cookies.valid(cookie, from) {
		hvr, err := helloVerifyRequest(s.cookies.make(from), seq)
		if err == nil {
			_, err = s.ln.WriteToUDPAddrPort(hvr, from)
		}
		if err != nil {
			s.t.log.Debug("rpc: cannot answer a DTLS ClientHello", zap.Stringer("from", from), zap.Error(err))
		}
		return
	}
	if c != nil {
		s.mu.Lock()
		same := c.handshaking || c.random == random
		s.mu.Unlock()
		if same { // a retransmission
			c.deliver(bytes.Clone(dgram))
			return
		}
		// A new handshake from the address of a session: the peer started
		// over (it restarted, or dropped the session), and the cookie proves
		// the address is its.
		c.close()
	}
	c = s.admit(from, random)
	if c == nil {
		return
	}
	c.deliver(bytes.Clone(dgram))
	if !s.t.tasks.Go(func() { s.handshake(c) }) {
		c.close()
	}
}

// admit makes the session of a source that echoed a cookie, or refuses it
// when a bound is reached.
func (s *dtlsServer) admit(from netip.AddrPort, random [32]byte) *dtlsConn {
	cfg := &s.t.cfg
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if len(s.conns) >= cfg.MaxSessions || s.npend >= cfg.MaxHandshakes || s.pending[from.Addr()] >= maxHandshakesPerSource {
		s.t.stats.refused.Add(1)
		s.t.log.Debug("rpc: refused a DTLS handshake: too many", zap.Stringer("from", from),
			zap.Int("sessions", len(s.conns)), zap.Int("handshakes", s.npend))
		return nil
	}
	c := &dtlsConn{s: s, from: from, raddr: net.UDPAddrFromAddrPort(from), random: random,
		in: make(chan []byte, dtlsQueue), rd: deadline.New(), done: make(chan struct{}), handshaking: true}
	c.last.Store(time.Now().UnixNano())
	s.conns[from] = c
	s.npend++
	s.pending[from.Addr()]++
	return c
}

// handshake runs the server side of c's handshake within the dial timeout,
// then serves the session.
func (s *dtlsServer) handshake(c *dtlsConn) {
	t := s.t
	var got verified
	dc, err := dtls.Server(c, c.raddr, t.auth.dtlsConfig(true, "", &got)) //nolint:staticcheck // the options API has no VerifyPeerCertificate
	if err != nil {
		s.handshakeDone(c)
		c.close()
		t.log.Warn("rpc: cannot start a DTLS session", zap.Error(err))
		return
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.DialTimeout)
	err = dc.HandshakeContext(ctx)
	cancel()
	s.handshakeDone(c)
	var id string
	if err == nil {
		id, err = got.result()
	}
	if err != nil {
		_ = dc.Close()
		c.close()
		if verr, _ := got.err.Load().(error); verr != nil {
			t.refusedPeer(c.from.String(), verr)
		} else {
			t.log.Debug("rpc: DTLS handshake failed", zap.Stringer("from", c.from), zap.Error(err))
		}
		return
	}
	var chain [][]byte
	if st, ok := dc.ConnectionState(); ok {
		chain = st.PeerCertificates
	}
	cc := t.session(dc, id)
	s.mu.Lock()
	ok := !s.closed && s.conns[c.from] == c
	if ok {
		c.cc, c.peerID, c.chain = cc, id, chain
	}
	s.mu.Unlock()
	if !ok {
		_ = cc.Close()
		return
	}
	t.log.Debug("rpc: DTLS session", zap.Stringer("from", c.from), zap.String("peer", id))
	<-cc.Done() // closed by the peer, idleness, Reverify or Close
	c.close()
}

func (s *dtlsServer) handshakeDone(c *dtlsConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endHandshakeLocked(c)
}

func (s *dtlsServer) endHandshakeLocked(c *dtlsConn) {
	if !c.handshaking {
		return
	}
	c.handshaking = false
	s.npend--
	ip := c.from.Addr()
	if s.pending[ip]--; s.pending[ip] <= 0 {
		delete(s.pending, ip)
	}
}

// sweep closes the sessions silent for IdleTimeout and runs go-coap's
// timers on the others.
func (s *dtlsServer) sweep(now time.Time) {
	idle := s.t.cfg.IdleTimeout
	s.mu.Lock()
	var live []*client.Conn
	var stale []*dtlsConn
	for _, c := range s.conns {
		switch {
		case c.cc == nil: // in its handshake, bounded by DialTimeout
		case now.Sub(time.Unix(0, c.last.Load())) > idle:
			stale = append(stale, c)
		default:
			live = append(live, c.cc)
		}
	}
	s.mu.Unlock()
	for _, c := range stale {
		c.close()
	}
	for _, cc := range live {
		cc.CheckExpirations(now)
	}
}

// sessions returns the authenticated sessions, for Reverify.
func (s *dtlsServer) sessions() []*dtlsConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*dtlsConn, 0, len(s.conns))
	for _, c := range s.conns {
		if c.cc != nil {
			out = append(out, c)
		}
	}
	return out
}

func (s *dtlsServer) close() error {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = map[netip.AddrPort]*dtlsConn{}
	s.mu.Unlock()
	err := s.ln.Close()
	for _, c := range conns {
		c.close()
	}
	return err
}

// deliver queues a datagram for the session's reader, or drops it.
func (c *dtlsConn) deliver(b []byte) {
	c.last.Store(time.Now().UnixNano())
	select {
	case c.in <- b:
	default:
	}
}

// close ends the session and forgets the source. An authenticated session
// is closed first, so that pion tells the peer (close_notify) while c can
// still write; pion then closes c, which comes back here.
func (c *dtlsConn) close() {
	s := c.s
	s.mu.Lock()
	cc := c.cc
	c.cc = nil
	s.mu.Unlock()
	if cc != nil {
		_ = cc.Close()
	}
	c.once.Do(func() {
		s.mu.Lock()
		if s.conns[c.from] == c {
			delete(s.conns, c.from)
		}
		s.endHandshakeLocked(c)
		s.mu.Unlock()
		close(c.done)
	})
}

// ReadFrom implements net.PacketConn for pion.
func (c *dtlsConn) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case b := <-c.in:
		return copy(p, b), c.raddr, nil
	case <-c.done:
		return 0, nil, net.ErrClosed
	case <-c.rd.Done():
		return 0, nil, os.ErrDeadlineExceeded
	}
}

// WriteTo implements net.PacketConn: it writes to the session's source only.
func (c *dtlsConn) WriteTo(p []byte, _ net.Addr) (int, error) {
	select {
	case <-c.done:
		return 0, net.ErrClosed
	default:
	}
	return c.s.ln.WriteToUDPAddrPort(p, c.from)
}

// Close implements net.PacketConn (pion closes it with its session).
func (c *dtlsConn) Close() error { c.close(); return nil }

func (c *dtlsConn) LocalAddr() net.Addr { return c.s.ln.LocalAddr() }

func (c *dtlsConn) SetDeadline(t time.Time) error { c.rd.Set(t); return nil }

func (c *dtlsConn) SetReadDeadline(t time.Time) error { c.rd.Set(t); return nil }

// SetWriteDeadline implements net.PacketConn; writes to a UDP socket do not
// block for long.
func (c *dtlsConn) SetWriteDeadline(time.Time) error { return nil }
