package rpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// ReceivePattern is the path of node-to-node RPC on both transports (in
// net/http ServeMux syntax, which go-coap's mux shares): where a node mounts
// WS.Handler on its HTTP server, and the CoAP route. The {id} must be the
// node's ID, or AnyNode.
const ReceivePattern = "/node/{id}/receive"

// AnyNode is the {id} a client dials when it does not know the ID of the
// node at an address, as in a bootstrap join (the envelope's To.ID is
// empty). Every node accepts it.
const AnyNode = "any"

// WSConfig configures a WebSocket transport. Zero durations take the defaults.
type WSConfig struct {
	Self        Peer  // this node; Self.Addr is the ws://host:port it advertises
	Auth        *Auth // authenticate peers with TLS 1.3 inside the WebSocket; nil: open (tests)
	Handler     Handler
	Logger      *zap.Logger
	Codec       *Codec // default: NewCodec(FlowchainTypes, DefaultMaxSize)
	Call        CallOptions
	MaxInflight int // handlers running at once (default 64)

	DialTimeout  time.Duration // default 3s
	WriteTimeout time.Duration // default 5s
	// PingInterval is how often a client pings the connections it opened
	// (default 15s). A connection silent for three intervals is closed, on
	// both sides.
	PingInterval time.Duration
	// MaxConns bounds the connections peers opened to this node (default
	// 512), and MaxHandshakes those of them still in their TLS handshake
	// (default 64; at most 16 from one IP address): a flood of connections
	// that never authenticate costs bounded memory and never delays members
	// for longer than a handshake timeout (DialTimeout).
	MaxConns      int
	MaxHandshakes int
}

// maxHandshakesPerSource bounds the unauthenticated connections from one IP.
const maxHandshakesPerSource = 16

// WS is the WebSocket transport (gorilla/websocket). Each node keeps one
// connection per peer address that it dialed, and sends its requests on it;
// the peer answers on the same connection. A node's own listener is the
// http.Handler from Handler, mounted by the node on its HTTP server.
type WS struct {
	*endpoint
	cfg      WSConfig
	upgrader websocket.Upgrader
	dialer   websocket.Dialer

	mu      sync.Mutex
	closed  bool
	out     map[string]*wsDial // by peer address
	in      map[*wsConn]bool
	pending map[string]int // TLS handshakes in progress, by remote IP
	npend   int
	// byPeer is the newest authenticated connection each peer opened to
	// this node, by its ID: one-way messages to that peer go back on it
	// (see Send), never to an address the peer merely claimed.
	byPeer map[string]*wsConn
}

// wsDial is a connection being dialed or dialed: callers wait on ready.
type wsDial struct {
	ready chan struct{}
	c     *wsConn
	err   error
}

// NewWS returns a WebSocket transport. It listens only through Handler.
func NewWS(cfg WSConfig) (*WS, error) {
	if _, err := destination(cfg.Self.Addr, SchemeWS); err != nil {
		return nil, fmt.Errorf("rpc: ws transport: self.addr: %w", err)
	}
	e, err := newEndpoint("ws", cfg.Self, cfg.Auth, cfg.Handler, cfg.Logger, cfg.Codec, cfg.Call, cfg.MaxInflight)
	if err != nil {
		return nil, err
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 3 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 15 * time.Second
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 512
	}
	if cfg.MaxHandshakes <= 0 {
		cfg.MaxHandshakes = 64
	}
	return &WS{
		endpoint: e,
		cfg:      cfg,
		upgrader: websocket.Upgrader{HandshakeTimeout: cfg.DialTimeout},
		// No proxy: node-to-node traffic must not follow HTTP_PROXY.
		dialer:  websocket.Dialer{HandshakeTimeout: cfg.DialTimeout},
		out:     map[string]*wsDial{},
		in:      map[*wsConn]bool{},
		pending: map[string]int{},
		byPeer:  map[string]*wsConn{},
	}, nil
}

// Addr returns the address this node advertises (ws://host:port).
func (t *WS) Addr() string { return t.self.Addr }

// Handler returns the server side, to mount at ReceivePattern. It answers 404
// when the path's {id} is neither this node's ID nor AnyNode.
func (t *WS) Handler() http.Handler { return http.HandlerFunc(t.serveHTTP) }

func (t *WS) serveHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" {
		id = pathID(r.URL.Path) // mounted without a {id} pattern
	}
	if id != t.self.ID && id != AnyNode {
		t.log.Debug("rpc: refused a connection for another node", zap.String("path", r.URL.Path), zap.String("remote", r.RemoteAddr))
		http.NotFound(w, r)
		return
	}
	if t.tasks.isClosed() {
		http.Error(w, "node is shutting down", http.StatusServiceUnavailable)
		return
	}
	source, _, _ := net.SplitHostPort(r.RemoteAddr)
	if !t.admit(source) {
		t.stats.refused.Add(1)
		t.log.Debug("rpc: refused a connection: too many", zap.String("remote", r.RemoteAddr))
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	}
	ws, err := t.upgrader.Upgrade(w, r, nil) // on failure it has answered the client
	if err != nil {
		t.admitted(source, nil)
		t.log.Debug("rpc: websocket upgrade failed", zap.String("remote", r.RemoteAddr), zap.Error(err))
		return
	}
	c := t.newConn(ws, r.RemoteAddr)
	if !t.tasks.Go(func() { t.accepted(c, source) }) {
		t.admitted(source, nil)
		ws.Close()
	}
}

// admit takes a place for a new connection from source, within MaxConns and,
// when peers authenticate, within the handshake bounds.
func (t *WS) admit(source string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || len(t.in)+t.npend >= t.cfg.MaxConns {
		return false
	}
	if t.cfg.Auth != nil && (t.npend >= t.cfg.MaxHandshakes || t.pending[source] >= maxHandshakesPerSource) {
		return false
	}
	t.npend++
	t.pending[source]++
	return true
}

// admitted gives back source's place taken by admit and, when c is not nil,
// counts c among the open connections. It reports false once the transport
// is closed.
func (t *WS) admitted(source string, c *wsConn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.npend--
	if t.pending[source]--; t.pending[source] <= 0 {
		delete(t.pending, source)
	}
	if c == nil || t.closed {
		return false
	}
	t.in[c] = true
	if c.peerID != "" {
		t.byPeer[c.peerID] = c
	}
	return true
}

// accepted authenticates a connection a peer opened, when peers
// authenticate, then serves its requests.
func (t *WS) accepted(c *wsConn, source string) {
	if t.cfg.Auth != nil {
		if err := c.secure(true, ""); err != nil {
			t.admitted(source, nil)
			t.refusedPeer(c.peer, err)
			c.kill(err)
			return
		}
	}
	if !t.admitted(source, c) {
		c.kill(ErrClosed)
		return
	}
	c.serveRequests()
}

// pathID returns the {id} of a path ending in /node/{id}/receive.
func pathID(p string) string {
	rest, ok := strings.CutSuffix(p, "/receive")
	if !ok {
		return ""
	}
	i := strings.LastIndex(rest, "/node/")
	if i < 0 {
		return ""
	}
	return rest[i+len("/node/"):]
}

// Send implements Transport. It returns once the frame is written: a frame
// in flight when the connection breaks is lost, as with any one-way message.
func (t *WS) Send(ctx context.Context, addr string, env *Envelope) error {
	hostport, b, err := t.prepare(addr, env)
	if err != nil {
		return opErr("send", env, addr, err)
	}
	_, err = t.retry(ctx, false, func(ctx context.Context) (*Envelope, error) {
		c := t.inbound(addr, env.To.ID)
		if c == nil {
			if c, err = t.conn(ctx, addr, hostport, env.To.ID); err != nil {
				return nil, err
			}
		}
		return nil, c.write(ctx, b)
	})
	if err != nil {
		return opErr("send", env, addr, err)
	}
	return nil
}

// inbound returns the authenticated connection peer id opened to this node,
// when this node has none of its own to addr: a one-way message to a peer
// that reached this node (the reply to its request, say) goes back on the
// connection it authenticated on. The peer reads it as it reads replies.
func (t *WS) inbound(addr, id string) *wsConn {
	if t.cfg.Auth == nil || id == "" {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if d := t.out[addr]; d != nil && d.c != nil {
		return nil
	}
	return t.byPeer[id]
}

// Call implements Transport.
func (t *WS) Call(ctx context.Context, addr string, env *Envelope) (*Envelope, error) {
	hostport, b, err := t.prepare(addr, env)
	if err != nil {
		return nil, opErr("call", env, addr, err)
	}
	r, err := t.retry(ctx, true, func(ctx context.Context) (*Envelope, error) {
		c, err := t.conn(ctx, addr, hostport, env.To.ID)
		if err != nil {
			return nil, err
		}
		k := callKey{id: env.ID}
		ch, err := c.calls.add(k)
		if err != nil {
			return nil, err
		}
		defer c.calls.remove(k)
		if err := c.write(ctx, b); err != nil {
			return nil, err
		}
		return awaitReply(ctx, ch)
	})
	if err != nil {
		return nil, opErr("call", env, addr, err)
	}
	return r, nil
}

func (t *WS) prepare(addr string, env *Envelope) (string, []byte, error) {
	if t.tasks.isClosed() {
		return "", nil, ErrClosed
	}
	hostport, err := destination(addr, SchemeWS)
	if err != nil {
		return "", nil, err
	}
	b, err := t.codec.Encode(env)
	return hostport, b, err
}

// Close implements Transport.
func (t *WS) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	conns := t.connsLocked()
	t.mu.Unlock()
	t.tasks.close()
	t.cancel() // ends dials in progress and tells handlers
	for _, c := range conns {
		c.kill(ErrClosed)
	}
	t.tasks.wait()
	return nil
}

// connsLocked lists the open connections, dialed and accepted; t.mu is held.
func (t *WS) connsLocked() []*wsConn {
	var conns []*wsConn
	for _, d := range t.out {
		if d.c != nil {
			conns = append(conns, d.c)
		}
	}
	for c := range t.in {
		conns = append(conns, c)
	}
	return conns
}

// conn returns the open connection to addr, dialing it if needed. Callers
// share one dial; a dead connection is replaced.
func (t *WS) conn(ctx context.Context, addr, hostport, toID string) (*wsConn, error) {
	for range 3 {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return nil, ErrClosed
		}
		d := t.out[addr]
		if d == nil {
			d = &wsDial{ready: make(chan struct{})}
			if !t.tasks.Go(func() { t.dial(d, addr, hostport, toID) }) {
				t.mu.Unlock()
				return nil, ErrClosed
			}
			t.out[addr] = d
		}
		t.mu.Unlock()
		select {
		case <-d.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if d.err != nil {
			return nil, d.err
		}
		select {
		case <-d.c.done: // died since; kill removed it, so the next round redials
		default:
			return d.c, nil
		}
	}
	return nil, fmt.Errorf("%w: %s keeps closing the connection", ErrConnLost, addr)
}

// dial opens the connection of d, then reads replies on it until it dies.
func (t *WS) dial(d *wsDial, addr, hostport, toID string) {
	id := toID
	if id == "" {
		id = AnyNode
	}
	url := "ws://" + hostport + "/node/" + id + "/receive"
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.DialTimeout)
	ws, resp, err := t.dialer.DialContext(ctx, url, nil)
	cancel()
	var c *wsConn
	if err == nil {
		t.stats.dials.Add(1)
		c = t.newConn(ws, addr)
		ws.SetPongHandler(func(string) error { c.alive(); return nil })
		if t.cfg.Auth != nil {
			if serr := c.secure(false, toID); serr != nil {
				t.refusedPeer(addr, serr)
				c.kill(serr)
				c, err, resp = nil, serr, nil
			}
		}
	}
	t.mu.Lock()
	d.c = c
	switch {
	case err != nil:
		if resp != nil {
			err = fmt.Errorf("HTTP %s (is node %s at this address?)", resp.Status, id)
		}
		d.err = fmt.Errorf("%w: dial %s: %w", ErrUnreachable, url, err)
	case t.closed:
		d.err, d.c = ErrClosed, nil
		ws.Close()
	}
	if d.err != nil && t.out[addr] == d {
		delete(t.out, addr)
	}
	t.mu.Unlock()
	close(d.ready)
	if d.err != nil {
		return
	}
	if !t.tasks.Go(c.ping) {
		c.kill(ErrClosed)
	}
	c.readReplies()
}

// wsConn is one WebSocket connection, dialed (replies come in) or accepted
// (requests come in, replies go out).
type wsConn struct {
	t      *WS
	c      *websocket.Conn
	fr     frameIO       // envelopes on c: plain, or inside TLS
	peerID string        // the ID the peer authenticated as ("" on an open transport)
	chain  [][]byte      // the certificates it authenticated with
	peer   string        // the peer address dialed, or the remote TCP address
	wlock  chan struct{} // one writer at a time; a channel so waiting honours ctx
	calls  pending       // calls waiting for replies (dialed connections)
	done   chan struct{} // closed when the connection is dead
	once   sync.Once
}

func (t *WS) newConn(ws *websocket.Conn, peer string) *wsConn {
	c := &wsConn{t: t, c: ws, fr: wsFrames{ws}, peer: peer, wlock: make(chan struct{}, 1), done: make(chan struct{})}
	ws.SetReadLimit(int64(t.codec.MaxSize()))
	c.alive()
	return c
}

// alive pushes the read deadline back: a connection silent for three ping
// intervals is dead.
func (c *wsConn) alive() {
	_ = c.c.SetReadDeadline(time.Now().Add(3 * c.t.cfg.PingInterval))
}

func (c *wsConn) write(ctx context.Context, data []byte) error {
	select {
	case c.wlock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return fmt.Errorf("%w: %s", ErrConnLost, c.peer)
	}
	defer func() { <-c.wlock }()
	deadline := time.Now().Add(c.t.cfg.WriteTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.c.SetWriteDeadline(deadline)
	if err := c.fr.writeFrame(data); err != nil {
		// A failed write leaves the stream in an unknown state: drop it.
		c.kill(err)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: write to %s: %v", ErrConnLost, c.peer, err)
	}
	c.t.stats.out(len(data))
	return nil
}

// kill closes the connection once, fails its waiting calls and forgets it.
func (c *wsConn) kill(err error) {
	c.once.Do(func() {
		close(c.done)
		c.c.Close()
		if !errors.Is(err, ErrClosed) {
			err = fmt.Errorf("%w: %s: %v", ErrConnLost, c.peer, err)
		}
		c.calls.fail(err)
		t := c.t
		t.mu.Lock()
		if d := t.out[c.peer]; d != nil && d.c == c {
			delete(t.out, c.peer)
		}
		delete(t.in, c)
		if t.byPeer[c.peerID] == c {
			delete(t.byPeer, c.peerID)
		}
		t.mu.Unlock()
	})
}

// ping keeps a dialed connection alive and detects a dead peer.
func (c *wsConn) ping() {
	tick := time.NewTicker(c.t.cfg.PingInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if err := c.c.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.t.cfg.WriteTimeout)); err != nil {
				c.kill(err)
				return
			}
		case <-c.done:
			return
		}
	}
}

// readReplies reads a dialed connection: replies to this node's requests.
func (c *wsConn) readReplies() {
	t := c.t
	for {
		data, err := c.fr.readFrame()
		if err != nil {
			c.kill(err)
			return
		}
		c.alive()
		t.stats.bytesIn.Add(uint64(len(data)))
		env, err := t.codec.Decode(data)
		if err != nil {
			err = t.badReply(c.peer, err)
			if id, ok := peekID(data); ok {
				c.calls.resolve(callKey{id: id}, result{err: err})
			}
			continue
		}
		t.stats.received.Add(1)
		if t.checkSender(env, c.peerID) != nil {
			c.calls.resolve(callKey{id: env.ID}, result{err: fmt.Errorf("%w: a reply from %q on a connection to %s", ErrAuth, env.From.ID, c.peerID)})
			continue
		}
		if !c.calls.resolve(callKey{id: env.ID}, result{env: env}) {
			t.unmatched(env, c.peerID)
		}
	}
}

// serveRequests reads an accepted connection: requests, each handled on its
// own goroutine (up to MaxInflight), answered on this connection.
func (c *wsConn) serveRequests() {
	t := c.t
	c.c.SetPingHandler(func(data string) error {
		c.alive()
		err := c.c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(t.cfg.WriteTimeout))
		if err == websocket.ErrCloseSent {
			return nil
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	})
	for {
		data, err := c.fr.readFrame()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) || errors.Is(err, errFrameTooLarge) {
				t.stats.decodeErrors.Add(1)
				t.log.Warn("rpc: closed a connection that sent a frame over the size limit",
					zap.String("remote", c.peer), zap.Int("limit", t.codec.MaxSize()))
			} else if !errors.Is(err, net.ErrClosed) && !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) {
				t.log.Debug("rpc: connection ended", zap.String("remote", c.peer), zap.Error(err))
			}
			c.kill(err)
			return
		}
		c.alive()
		t.stats.bytesIn.Add(uint64(len(data)))
		t.dispatch(func() {
			if reply := t.handleFrame(t.ctx, data, c.peerID); reply != nil {
				if err := c.write(t.ctx, reply); err != nil {
					t.log.Debug("rpc: reply not sent", zap.String("remote", c.peer), zap.Error(err))
				}
			}
		})
	}
}

// handleFrame handles one frame read from an accepted connection and returns
// the frame to answer with (nil: none).
func (t *WS) handleFrame(ctx context.Context, frame []byte, peer string) []byte {
	reply, _ := t.serve(ctx, frame, false, peer)
	return reply
}
