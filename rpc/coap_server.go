package rpc

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/net/monitor/inactivity"
	"github.com/plgd-dev/go-coap/v3/udp/client"
	"github.com/plgd-dev/go-coap/v3/udp/server"
	"go.uber.org/zap"
)

// coapServer reads the socket and hands each datagram to the go-coap
// connection of its sender, as go-coap's udp.Server does, but with
// respCache, handlers on their own goroutines, housekeeping on a timer
// instead of on every datagram, and idle peers dropped.
type coapServer struct {
	t  *CoAP
	ln *coapNet.UDPConn

	mu     sync.Mutex
	closed bool
	conns  map[string]*srvConn // by remote address
}

type srvConn struct {
	key  string
	cc   *client.Conn
	stop context.CancelFunc // ends the conn's message loop, which waits on Done
	last atomic.Int64       // when the last datagram came, in Unix nanoseconds
}

func (s *coapServer) serve() {
	buf := make([]byte, 64<<10)
	for {
		var raddr *net.UDPAddr
		var cm *coapNet.ControlMessage
		n, err := s.ln.ReadWithOptions(buf, coapNet.WithContext(s.t.ctx),
			coapNet.WithGetControlMessage(&cm), coapNet.WithGetRemoteAddr(&raddr))
		if err != nil {
			if s.t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.t.log.Warn("rpc: coap read failed", zap.Error(err))
			select { // do not spin on a persistent error
			case <-time.After(10 * time.Millisecond):
			case <-s.t.ctx.Done():
				return
			}
			continue
		}
		if raddr == nil || s.t.takeOneway(raddr, buf[:n]) {
			continue
		}
		c := s.conn(raddr)
		if c == nil {
			return
		}
		c.last.Store(time.Now().UnixNano())
		// Unlike udp.Server, keep the connection on a bad datagram: anyone
		// can send one with a forged source address.
		if err := c.cc.Process(cm, buf[:n]); err != nil {
			s.t.stats.decodeErrors.Add(1)
			s.t.log.Debug("rpc: coap dropped a datagram", zap.Stringer("from", raddr), zap.Error(err))
		}
	}
}

// conn returns the connection for raddr, creating it on first contact.
func (s *coapServer) conn(raddr *net.UDPAddr) *srvConn {
	key := raddr.String()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if c := s.conns[key]; c != nil {
		if c.cc.Context().Err() == nil {
			return c
		}
		c.stop()
	}
	t := s.t
	doneCtx, stop := context.WithCancel(context.Background())
	session := server.NewSession(t.ctx, doneCtx, s.ln, raddr, t.maxMessage(), client.DefaultMTU, false)
	cfg := t.connConfig(client.DefaultConfig)
	cc := client.NewConnWithOpts(session, &cfg,
		client.WithBlockWise(func(cc *client.Conn) *blockwise.BlockWise[*client.Conn] {
			return blockwise.New(cc, cfg.BlockwiseTransferTimeout, cfg.Errors,
				func(token message.Token) (*pool.Message, bool) { return cc.GetObservationRequest(token) })
		}),
		client.WithInactivityMonitor(inactivity.NewNilMonitor[*client.Conn]()),
		// Entries live as long as a retransmission can arrive; 256 per peer
		// bounds the memory (a gateway has 128 MB).
		client.WithResponseMessageCache(newRespCache(t.blockTimeout(), 256)),
	)
	c := &srvConn{key: key, cc: cc, stop: stop}
	s.conns[key] = c
	return c
}

// housekeeping runs go-coap's timers: retransmissions of this node's
// requests, expiry of cached responses and block-wise transfers. A round
// over every connection each tick (go-coap's way) cost a sixth of the CPU
// of a 64-node ring on loopback, so each tick visits only the client
// connections with requests in flight, and every connection once every
// sweepEvery. (Server connections only answer: they retransmit nothing.)
func (t *CoAP) housekeeping() {
	tick := min(max(t.cfg.AckTimeout/8, 20*time.Millisecond), 250*time.Millisecond)
	every := max(int(sweepEvery/tick), 1)
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for n := 1; ; n++ {
		select {
		case <-t.ctx.Done():
			return
		case now := <-tk.C:
			all := n%every == 0
			for _, cc := range t.clientConns(all) {
				cc.CheckExpirations(now)
			}
			if all && t.dsrv != nil {
				t.dsrv.sweep(now)
			} else if all {
				t.srv.sweep(now)
			}
		}
	}
}

// sweepEvery is how often every connection is checked: cached responses
// expire, and a peer silent for IdleTimeout is dropped.
const sweepEvery = time.Second

// sweep checks every server connection and drops the silent ones.
func (s *coapServer) sweep(now time.Time) {
	s.mu.Lock()
	conns := make([]*srvConn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	idle := s.t.cfg.IdleTimeout
	for _, c := range conns {
		if c.cc.Context().Err() != nil || now.Sub(time.Unix(0, c.last.Load())) > idle {
			s.drop(c)
			continue
		}
		c.cc.CheckExpirations(now)
	}
}

func (s *coapServer) drop(c *srvConn) {
	s.mu.Lock()
	if s.conns[c.key] == c {
		delete(s.conns, c.key)
	}
	s.mu.Unlock()
	_ = c.cc.Close()
	c.stop()
}

func (s *coapServer) close() error {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = map[string]*srvConn{}
	s.mu.Unlock()
	err := s.ln.Close()
	for _, c := range conns {
		_ = c.cc.Close()
		c.stop()
	}
	return err
}
