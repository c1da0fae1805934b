package coaps

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/transport/v5/deadline"
	"go.uber.org/zap"
)

// conn is one source's DTLS connection: the net.PacketConn pion runs its
// handshake and then its session on, fed by the read loop.
type conn struct {
	l       *Listener
	from    netip.AddrPort
	raddr   *net.UDPAddr
	started time.Time
	in      chan []byte
	rd      *deadline.Deadline
	done    chan struct{}
	once    sync.Once
	last    atomic.Int64 // the last datagram in or out, Unix nanoseconds

	// Under l.mu.
	dc          *dtls.Conn
	verified    bool // the source echoed its cookie
	known       bool // its IP address had a session lately
	inHandshake bool // in l.hs
	inSession   bool // in l.sess
	gone        bool // closed
	identity    string
}

func newConn(l *Listener, from netip.AddrPort) *conn {
	c := &conn{l: l, from: from, raddr: net.UDPAddrFromAddrPort(from), started: time.Now(),
		in: make(chan []byte, queueLen), rd: deadline.New(), done: make(chan struct{})}
	c.last.Store(c.started.UnixNano())
	return c
}

// run does c's handshake, within HandshakeTimeout, then serves its session
// until it ends.
func (c *conn) run() {
	l := c.l
	defer l.wg.Done()
	defer c.shutdown()
	dc, err := dtls.ServerWithOptions(c, c.raddr,
		dtls.WithPSK(c.psk),
		dtls.WithCipherSuites(suites...),
		dtls.WithExtendedMasterSecret(dtls.RequestExtendedMasterSecret),
		dtls.WithMTU(mtu),
		dtls.WithVerifyConnection(func(st *dtls.State) error { return l.establish(c, string(st.IdentityHint)) }),
	)
	if err != nil {
		l.log.Warn("coaps: cannot start a DTLS session", zap.Error(err))
		return
	}
	l.mu.Lock()
	c.dc = dc
	gone := c.gone
	l.mu.Unlock()
	if gone { // shut down meanwhile (pushed out, Close)
		_ = dc.Close()
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.lim.HandshakeTimeout)
	err = dc.HandshakeContext(ctx)
	cancel()
	l.mu.Lock()
	l.dropHandshakeLocked(c)
	ok := c.inSession
	identity := c.identity
	l.mu.Unlock()
	if err != nil || !ok {
		l.stats.Failed.Add(1)
		l.log.Debug("coaps: handshake failed", zap.Stringer("from", c.from), zap.Error(err))
		return
	}
	l.stats.Handshakes.Add(1)
	if st, ok := dc.ConnectionState(); ok {
		l.log.Debug("coaps: session", zap.Stringer("from", c.from), zap.ByteString("identity", []byte(identity)),
			zap.Stringer("suite", st.CipherSuiteID))
	}
	c.serve(dc, identity)
}

// psk is pion's PSK callback: Config.PSK, for identities within bounds.
func (c *conn) psk(identity []byte) ([]byte, error) {
	if len(identity) == 0 || len(identity) > MaxIdentity {
		return nil, fmt.Errorf("coaps: a PSK identity of %d bytes (1 to %d)", len(identity), MaxIdentity)
	}
	key, err := c.l.cfg.PSK(identity)
	if err == nil && len(key) == 0 {
		err = errors.New("coaps: no key")
	}
	if err != nil {
		c.l.log.Debug("coaps: PSK identity refused", zap.Stringer("from", c.from), zap.ByteString("identity", identity), zap.Error(err))
		return nil, err
	}
	return key, nil
}

// serve hands the session's datagrams to the Handler until it ends.
func (c *conn) serve(dc *dtls.Conn, identity string) {
	h := c.l.cfg.Handler
	reply := func(b []byte) error {
		c.last.Store(time.Now().UnixNano())
		_, err := dc.Write(b)
		return err
	}
	buf := make([]byte, maxDatagram)
	for {
		n, err := dc.Read(buf)
		if err != nil {
			return
		}
		c.last.Store(time.Now().UnixNano())
		h(append([]byte(nil), buf[:n]...), c.from, identity, reply)
	}
}

// deliver queues a datagram for pion, or drops it.
func (c *conn) deliver(b []byte) {
	select {
	case c.in <- b:
	default:
		c.l.stats.Dropped.Add(1)
	}
}

// shutdown ends c: pion's connection first, so that it tells the peer
// (close_notify) while c can still write; pion then closes c, which comes
// back to close.
func (c *conn) shutdown() {
	l := c.l
	l.mu.Lock()
	dc := c.dc
	c.dc = nil
	l.mu.Unlock()
	if dc != nil {
		_ = dc.Close()
	}
	c.close()
}

// close forgets c and ends its reads.
func (c *conn) close() {
	c.once.Do(func() {
		l := c.l
		l.mu.Lock()
		c.gone = true
		l.dropHandshakeLocked(c)
		l.dropSessionLocked(c)
		l.mu.Unlock()
		close(c.done)
	})
}

// ReadFrom implements net.PacketConn for pion.
func (c *conn) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case b := <-c.in:
		return copy(p, b), c.raddr, nil
	case <-c.done:
		return 0, nil, net.ErrClosed
	case <-c.rd.Done():
		return 0, nil, os.ErrDeadlineExceeded
	}
}

// WriteTo implements net.PacketConn: it writes to c's source only.
func (c *conn) WriteTo(p []byte, _ net.Addr) (int, error) {
	select {
	case <-c.done:
		return 0, net.ErrClosed
	default:
	}
	return c.l.ln.WriteToUDPAddrPort(p, c.from)
}

// Close implements net.PacketConn (pion closes it with its connection).
func (c *conn) Close() error { c.close(); return nil }

func (c *conn) LocalAddr() net.Addr { return c.l.ln.LocalAddr() }

func (c *conn) SetDeadline(t time.Time) error { c.rd.Set(t); return nil }

func (c *conn) SetReadDeadline(t time.Time) error { c.rd.Set(t); return nil }

// SetWriteDeadline implements net.PacketConn; writes to a UDP socket do not
// block for long.
func (c *conn) SetWriteDeadline(time.Time) error { return nil }
