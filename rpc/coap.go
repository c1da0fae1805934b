package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/mux"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/options"
	"github.com/plgd-dev/go-coap/v3/udp"
	"github.com/plgd-dev/go-coap/v3/udp/client"
	"go.uber.org/zap"
)

// CoAPConfig configures a CoAP transport. Zero values take the defaults.
type CoAPConfig struct {
	// Self is this node. Self.Addr ("coap://host:port", or "coaps://" with
	// Auth) may be empty: it is then taken from the bound address, which
	// must not be a wildcard.
	Self   Peer
	Listen string // UDP address to listen on (default: the host:port of Self.Addr)
	// Auth, when set, makes the transport carry everything over DTLS 1.2,
	// authenticated with certificates both ways (see Auth and coaps in
	// doc.go); its addresses are coaps://. nil: plain CoAP, for protocol
	// tests.
	Auth        *Auth
	Handler     Handler
	Logger      *zap.Logger
	Codec       *Codec // default: NewCodec(FlowchainTypes, DefaultMaxSize)
	Call        CallOptions
	MaxInflight int // handlers running at once (default 64)

	// AckTimeout is how long a confirmable message waits for its
	// acknowledgement before it is sent again (default 1s, RFC 7252 says
	// 2s; go-coap retransmits after 1, 2, 3... timeouts, not exponentially).
	AckTimeout time.Duration
	// MaxRetransmit bounds the retransmissions of one message (default 4).
	MaxRetransmit uint32
	// NStart is how many confirmable requests may wait for their
	// acknowledgement at once per peer (default 32; RFC 7252's NSTART is 1,
	// which serializes every request to a peer behind the previous one).
	NStart uint32
	// IdleTimeout drops what is kept for a silent peer (default 2m).
	IdleTimeout time.Duration
	// MaxDatagram is the largest datagram a one-way message goes in
	// (default 1452 bytes: it fits a 1500-byte Ethernet or Wi-Fi MTU under
	// IPv6 as well as IPv4, so nothing is fragmented). A larger message
	// travels block-wise.
	MaxDatagram int

	// With Auth only. DialTimeout bounds a DTLS handshake, both ways
	// (default 3s). MaxSessions bounds the DTLS sessions peers opened to
	// this node (default 512), and MaxHandshakes those of them still in
	// their handshake (default 64; at most 16 from one IP address). A silent
	// session is closed after IdleTimeout.
	DialTimeout   time.Duration
	MaxSessions   int
	MaxHandshakes int
	// Plain, with Auth only, receives the plain CoAP datagrams that arrive
	// on the port (RFC 7983: first byte 64..127, where DTLS records start
	// with 20..63): devices speak plain CoAP on the port peers speak DTLS
	// on. nil drops them, as before.
	Plain PlainCoAP
}

// PlainCoAP takes a plain CoAP datagram from a device (see
// CoAPConfig.Plain). It is called on the socket's read loop, so it must not
// block: it queues or drops. dgram is its own copy; reply writes a datagram
// to from on the same socket, and may be kept and called later (Observe
// notifications).
type PlainCoAP func(dgram []byte, from netip.AddrPort, reply func([]byte) error)

// CoAP is the CoAP-over-UDP transport (plgd-dev/go-coap/v3). A request is a
// confirmable POST of the envelope to /node/<to.ID>/receive (Content-Format
// application/json); the reply envelope is the response body (2.04 Changed,
// empty when the handler returned none). Requests larger than a block
// (1 KiB) travel block-wise. Refusals carry an error reply in a 4.xx
// response.
//
// Send is one way: its POST carries the query "oneway", the far side runs
// its handler after it has accepted the envelope, and a reply the handler
// returns is dropped. An envelope that fits in one datagram of at most
// MaxDatagram bytes goes as a non-confirmable POST, and one of up to 8 KiB
// as non-confirmable 1 KiB blocks (RFC 7959 Block1): nothing acknowledges
// them, so a lost datagram is a lost message, as the Chord core expects of
// any message (its timeouts and TTLs handle it). A larger one goes as a
// confirmable block-wise POST, whose lost blocks are sent again, that the
// far side answers (2.04, empty) as soon as the envelope decodes. Were a
// Send to wait for the far side's handler, or even for an acknowledgement,
// a handler that sends (a Chord node answering a request sends its reply as
// a message of its own) would hold its worker for a round trip, and so on
// down a chain: under load the workers run out, messages wait behind each
// other, requests are retransmitted, and replies reach the Chord core after
// it gave up on them.
//
// Non-confirmable one-way messages go out from the listening socket, and the
// read loop hands them to their handler without go-coap's connection
// machinery (see coap_oneway.go). This node's confirmable requests go out
// on a socket per peer (go-coap's udp.Dial), whose read loop takes only the
// replies: a handler that waits for a round trip can never stall the loop
// that must deliver its reply. The server
// side is this package's own read loop over go-coap's connection machinery
// rather than go-coap's udp.Server, whose response cache breaks after
// 65,536 requests from one peer and costs O(cache) per datagram (see
// respCache). go-coap's timers (retransmissions, cache expiry) run on one
// goroutine of this package's for all connections (see housekeeping).
type CoAP struct {
	*endpoint
	cfg    CoAPConfig
	router *mux.Router
	pool   *pool.Pool
	scheme string      // SchemeCoAP, or SchemeCoAPS with Auth
	srv    *coapServer // plain CoAP (Auth nil)
	dsrv   *dtlsServer // DTLS (Auth set)

	inflight sync.Map       // inflightKey → true, while a request is handled
	mid      atomic.Uint32  // message IDs of one-way datagrams
	addrs    addrCache      // where one-way datagrams go
	blocks   blockAssembler // one-way messages in blocks, being received

	mu     sync.Mutex
	closed bool
	peers  map[string]*peerConn // client connections, by host:port
	// dialing holds the DTLS dials in progress, by host:port: callers share
	// one, which runs on the transport's context (see peer).
	dialing map[string]*coapDial
}

// peerConn is a client connection and how many of this node's requests
// still wait on it. With Auth it is a DTLS session, and peerID and chain
// are what the far side authenticated with.
type peerConn struct {
	cc     *client.Conn
	busy   atomic.Int32
	peerID string
	chain  [][]byte
}

// NewCoAP starts a CoAP transport listening on cfg.Listen.
func NewCoAP(cfg CoAPConfig) (*CoAP, error) {
	listen := cfg.Listen
	scheme := SchemeCoAP
	if cfg.Auth != nil {
		scheme = SchemeCoAPS
	}
	if cfg.Self.Addr != "" {
		hp, err := destination(cfg.Self.Addr, scheme)
		if err != nil {
			return nil, fmt.Errorf("rpc: coap transport: self.addr: %w", err)
		}
		if listen == "" {
			listen = hp
		}
	}
	if listen == "" {
		return nil, errors.New("rpc: coap transport: set Listen or Self.Addr")
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = time.Second
	}
	if cfg.MaxRetransmit == 0 {
		cfg.MaxRetransmit = 4
	}
	if cfg.NStart == 0 {
		cfg.NStart = 32
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	if cfg.MaxDatagram <= 0 {
		cfg.MaxDatagram = 1452
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 3 * time.Second
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 512
	}
	if cfg.MaxHandshakes <= 0 {
		cfg.MaxHandshakes = 64
	}
	if cfg.Plain != nil && cfg.Auth == nil {
		return nil, errors.New("rpc: coap transport: Plain needs Auth (without DTLS, peers speak plain CoAP on the port)")
	}
	ln, err := coapNet.NewListenUDP("udp", listen)
	if err != nil {
		return nil, fmt.Errorf("rpc: coap transport: %w", err)
	}
	if cfg.Self.Addr == "" {
		la, _ := ln.LocalAddr().(*net.UDPAddr)
		if la == nil || la.IP.IsUnspecified() {
			ln.Close()
			return nil, fmt.Errorf("rpc: coap transport: listening on %s: set Self.Addr to the address peers should use", listen)
		}
		cfg.Self.Addr = scheme + "://" + la.String()
	}
	e, err := newEndpoint(scheme, cfg.Self, cfg.Auth, cfg.Handler, cfg.Logger, cfg.Codec, cfg.Call, cfg.MaxInflight)
	if err != nil {
		ln.Close()
		return nil, err
	}
	t := &CoAP{endpoint: e, cfg: cfg, scheme: scheme, router: mux.NewRouter(), pool: pool.New(1024, 1600), peers: map[string]*peerConn{}, dialing: map[string]*coapDial{}}
	t.router.SetErrorHandler(t.coapError)
	if err := t.router.Handle(ReceivePattern, mux.HandlerFunc(t.serveRPC)); err != nil {
		e.cancel()
		ln.Close()
		return nil, err
	}
	t.mid.Store(uint32(message.RandMID()))
	t.blocks.timeout = t.blockTimeout()
	if cfg.Auth != nil {
		cookies, err := newCookieJar()
		if err != nil {
			e.cancel()
			ln.Close()
			return nil, err
		}
		t.dsrv = &dtlsServer{t: t, ln: ln.NetConn().(*net.UDPConn), cookies: cookies,
			conns: map[netip.AddrPort]*dtlsConn{}, pending: map[netip.Addr]int{}}
		t.tasks.Go(t.dsrv.serve)
	} else {
		t.srv = &coapServer{t: t, ln: ln, conns: map[string]*srvConn{}}
		t.tasks.Go(t.srv.serve)
	}
	t.tasks.Go(t.housekeeping)
	return t, nil
}

// Addr returns the address this node advertises (coap://host:port, or
// coaps://host:port with Auth).
func (t *CoAP) Addr() string { return t.self.Addr }

// LocalAddr returns the bound UDP address.
func (t *CoAP) LocalAddr() net.Addr {
	if t.dsrv != nil {
		return t.dsrv.ln.LocalAddr()
	}
	return t.srv.ln.LocalAddr()
}

// Router returns the CoAP router, for the node to add its own routes (such
// as /object/{id}/send) next to ReceivePattern.
func (t *CoAP) Router() *mux.Router { return t.router }

// Send implements Transport.
func (t *CoAP) Send(ctx context.Context, addr string, env *Envelope) error {
	hostport, b, err := t.prepare(addr, env)
	if err != nil {
		return opErr("send", env, addr, err)
	}
	toID := env.To.ID
	if toID == "" {
		toID = AnyNode
	}
	if t.auth != nil {
		if err := t.sendSecure(ctx, addr, hostport, env.To.ID, b); err != nil {
			return opErr("send", env, addr, err)
		}
		return nil
	}
	dgram, err := onewayDatagram(uint16(t.mid.Add(1)), toID, b)
	if err != nil {
		return opErr("send", env, addr, err)
	}
	switch {
	case len(dgram) <= t.cfg.MaxDatagram:
		err = t.sendOneway(ctx, addr, hostport, [][]byte{dgram}, len(b))
	case int64(len(b)) <= maxOnewayBlocks*blockSize.Size():
		var blocks [][]byte
		if blocks, err = t.onewayBlocks(toID, b); err == nil {
			err = t.sendOneway(ctx, addr, hostport, blocks, len(b))
		}
	default:
		_, err = t.retry(ctx, false, func(ctx context.Context) (*Envelope, error) {
			reply, _, err := t.post(ctx, addr, hostport, env.To.ID, b, true)
			if err == nil && reply != nil {
				t.unmatched(reply, "") // a peer that answers one-way messages anyway
			}
			return nil, err
		})
	}
	if err != nil {
		return opErr("send", env, addr, err)
	}
	return nil
}

// Call implements Transport.
func (t *CoAP) Call(ctx context.Context, addr string, env *Envelope) (*Envelope, error) {
	hostport, b, err := t.prepare(addr, env)
	if err != nil {
		return nil, opErr("call", env, addr, err)
	}
	r, err := t.retry(ctx, true, func(ctx context.Context) (*Envelope, error) {
		reply, _, err := t.post(ctx, addr, hostport, env.To.ID, b, false)
		switch {
		case err != nil:
			return nil, err
		case reply == nil:
			return nil, ErrNoReply
		case reply.ID != env.ID:
			return nil, t.badReply(addr, fmt.Errorf("%w: reply id %d does not match request id %d", ErrMalformed, reply.ID, env.ID))
		}
		return replyOf(result{env: reply})
	})
	if err != nil {
		return nil, opErr("call", env, addr, err)
	}
	return r, nil
}

func (t *CoAP) prepare(addr string, env *Envelope) (string, []byte, error) {
	if t.tasks.isClosed() {
		return "", nil, ErrClosed
	}
	hostport, err := destination(addr, t.scheme)
	if err != nil {
		return "", nil, err
	}
	b, err := t.codec.Encode(env)
	return hostport, b, err
}

// onewayQuery marks the POST of a Send (see CoAP).
const onewayQuery = "oneway"

// blockSize is the block of block-wise transfers; a body this size or
// larger travels in blocks.
const blockSize = blockwise.SZX1024

// post sends one confirmable POST and decodes the reply in its response
// (nil when the body is empty). A 4.xx or 5.xx response is an error: a
// *RemoteError when it carries an error reply. It returns the ID the far
// side authenticated as ("" on an open transport).
func (t *CoAP) post(ctx context.Context, addr, hostport, toID string, body []byte, oneway bool) (*Envelope, string, error) {
	pc, err := t.peer(ctx, hostport, toID)
	if err != nil {
		return nil, "", err
	}
	reply, err := t.postOn(ctx, pc, addr, hostport, toID, body, oneway)
	return reply, pc.peerID, err
}

func (t *CoAP) postOn(ctx context.Context, pc *peerConn, addr, hostport, toID string, body []byte, oneway bool) (*Envelope, error) {
	pc.busy.Add(1) // its retransmissions are due (see housekeeping)
	defer pc.busy.Add(-1)
	cc := pc.cc
	if toID == "" {
		toID = AnyNode
	}
	var opts []message.Option
	if oneway {
		opts = append(opts, message.Option{ID: message.URIQuery, Value: []byte(onewayQuery)})
	}
	req, err := cc.NewPostRequest(ctx, "/node/"+toID+"/receive", message.AppJSON, bytes.NewReader(body), opts...)
	if err != nil {
		return nil, err
	}
	// req is not released to the message pool: go-coap's block-wise layer
	// keeps it in a cache that the connection's reader may still be reading
	// (a duplicated response) after Do returns, and a pooled message reused
	// by the next request would then be read half-reset (a data race the
	// race detector caught in TestRing/coap). The garbage collector frees it.
	t.stats.out(len(body))
	resp, err := cc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		t.forget(hostport, pc)
		return nil, fmt.Errorf("%w: %s: %v", ErrConnLost, addr, err)
	}
	defer cc.ReleaseMessage(resp)
	data, err := resp.ReadBody()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: reading the response: %v", ErrConnLost, addr, err)
	}
	var reply *Envelope
	if len(data) > 0 {
		t.stats.bytesIn.Add(uint64(len(data)))
		if reply, err = t.codec.Decode(data); err != nil {
			return nil, t.badReply(addr, fmt.Errorf("%w (CoAP %v)", err, resp.Code()))
		}
		t.stats.received.Add(1)
		if err := checkFrom(reply, pc.peerID); err != nil {
			t.stats.refused.Add(1)
			return nil, err
		}
	}
	if c := resp.Code(); c != codes.Changed {
		if reply != nil && reply.Error != "" {
			return nil, &RemoteError{From: reply.From, Type: reply.Type, ID: reply.ID, Msg: fmt.Sprintf("%s (CoAP %v)", reply.Error, c), Reply: reply}
		}
		return nil, fmt.Errorf("rpc: %s answered CoAP %v", addr, c)
	}
	return reply, nil
}

// peer returns the client connection to hostport, opening it if needed.
// Opening a UDP "connection" sends nothing, so it is cheap; a DTLS session
// costs a handshake, and must authenticate as toID when it is set.
func (t *CoAP) peer(ctx context.Context, hostport, toID string) (*peerConn, error) {
	t.mu.Lock()
	pc := t.peers[hostport]
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if pc != nil && pc.cc.Context().Err() == nil {
		if err := checkPeerID(pc.peerID, toID); err != nil {
			return nil, err
		}
		return pc, nil
	}
	if t.auth != nil {
		return t.sharedDial(ctx, hostport, toID)
	}
	pc, err := t.dialPlain(hostport)
	if err != nil {
		return nil, err
	}
	t.stats.dials.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		pc.cc.Close()
		return nil, ErrClosed
	}
	if old := t.peers[hostport]; old != nil && old.cc.Context().Err() == nil && old.peerID == pc.peerID {
		pc.cc.Close() // another caller won the race
		return old, nil
	}
	t.peers[hostport] = pc
	return pc, nil
}

// coapDial is a DTLS dial in progress; callers wait on ready.
type coapDial struct {
	ready chan struct{}
	pc    *peerConn
	err   error
}

// sharedDial opens the DTLS session to hostport once for all its callers.
// The handshake runs on the transport's context, bounded by DialTimeout, not
// by the caller's deadline: a handshake cut short by a message's short
// deadline is work thrown away, and under load every dial was, over and
// over, while parallel callers each dialed a session of their own (a
// 64-node ring on two cores never settled). A caller that gives up stops
// waiting; the dial goes on for the next one.
func (t *CoAP) sharedDial(ctx context.Context, hostport, toID string) (*peerConn, error) {
	t.mu.Lock()
	d := t.dialing[hostport]
	if d == nil {
		d = &coapDial{ready: make(chan struct{})}
		if t.closed || !t.tasks.Go(func() { t.runDial(d, hostport, toID) }) {
			t.mu.Unlock()
			return nil, ErrClosed
		}
		t.dialing[hostport] = d
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
	if err := checkPeerID(d.pc.peerID, toID); err != nil {
		return nil, err
	}
	return d.pc, nil
}

// runDial dials for d and publishes the session.
func (t *CoAP) runDial(d *coapDial, hostport, toID string) {
	pc, err := t.dialSecure(t.ctx, hostport, toID)
	t.mu.Lock()
	delete(t.dialing, hostport)
	switch {
	case err != nil:
		d.err = err
	case t.closed:
		pc.cc.Close()
		d.err = ErrClosed
	default:
		t.stats.dials.Add(1)
		t.peers[hostport] = pc
		d.pc = pc
	}
	t.mu.Unlock()
	close(d.ready)
}

// connConfig is base with what every go-coap connection of this transport
// shares, plain or DTLS: limits, block-wise transfers, the message pool, the
// handlers and the retransmission timing.
func (t *CoAP) connConfig(base client.Config) client.Config {
	cfg := base
	cfg.Errors = t.coapError
	cfg.MaxMessageSize = t.maxMessage()
	cfg.BlockwiseEnable = true
	cfg.BlockwiseSZX = blockSize
	cfg.BlockwiseTransferTimeout = t.blockTimeout()
	cfg.MessagePool = t.pool
	cfg.ProcessReceivedMessage = t.process
	cfg.Handler = mux.ToHandler[*client.Conn](t.router)
	cfg.TransmissionNStart = t.cfg.NStart
	cfg.TransmissionAcknowledgeTimeout = t.cfg.AckTimeout
	cfg.TransmissionMaxRetransmit = t.cfg.MaxRetransmit
	return cfg
}

// checkPeerID refuses a session authenticated as id for a message to toID.
func checkPeerID(id, toID string) error {
	if id == "" || toID == "" || toID == AnyNode || id == toID {
		return nil
	}
	return fmt.Errorf("%w: the node at this address is %s, not %s", ErrAuth, id, toID)
}

func (t *CoAP) dialPlain(hostport string) (*peerConn, error) {
	cc, err := udp.Dial(hostport,
		options.WithContext(t.ctx),
		options.WithErrors(t.coapError),
		options.WithMaxMessageSize(t.maxMessage()),
		options.WithBlockwise(true, blockSize, t.blockTimeout()),
		options.WithTransmission(t.cfg.NStart, t.cfg.AckTimeout, t.cfg.MaxRetransmit),
		// go-coap's defaults allow one request at a time per connection.
		options.WithLimitClientParallelRequest(0),
		options.WithLimitClientEndpointParallelRequest(0),
		// No timer of go-coap's per connection: housekeeping runs them.
		options.WithPeriodicRunner(func(func(time.Time) bool) {}),
		options.WithMessagePool(t.pool),
		options.WithInactivityMonitor(t.cfg.IdleTimeout, func(cc *client.Conn) { _ = cc.Close() }),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, hostport, err)
	}
	return &peerConn{cc: cc}, nil
}

func (t *CoAP) forget(hostport string, pc *peerConn) {
	t.mu.Lock()
	if t.peers[hostport] == pc {
		delete(t.peers, hostport)
	}
	t.mu.Unlock()
	pc.cc.Close()
}

// clientConns returns the client connections with requests in flight, or
// all of them, for housekeeping; closed ones are forgotten.
func (t *CoAP) clientConns(all bool) []*client.Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*client.Conn
	for hp, pc := range t.peers {
		if !all && pc.busy.Load() == 0 {
			continue
		}
		if pc.cc.Context().Err() != nil {
			delete(t.peers, hp)
			continue
		}
		out = append(out, pc.cc)
	}
	return out
}

// Close implements Transport.
func (t *CoAP) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	peers := t.peers
	t.peers = nil
	t.mu.Unlock()
	t.tasks.close()
	t.cancel()
	var err error
	if t.dsrv != nil {
		err = t.dsrv.close()
	} else {
		err = t.srv.close()
	}
	for _, pc := range peers {
		pc.cc.Close()
	}
	t.tasks.wait()
	return err
}

// maxMessage bounds one CoAP message: an envelope plus room for the header.
func (t *CoAP) maxMessage() uint32 { return uint32(t.codec.MaxSize()) + 1024 }

// blockTimeout bounds a block-wise transfer: a full retransmission span.
func (t *CoAP) blockTimeout() time.Duration {
	return t.cfg.AckTimeout * time.Duration(t.cfg.MaxRetransmit+2)
}

// coapError logs what go-coap reports. Most of it is a peer going away
// ("connection refused" after a restart), hence debug.
func (t *CoAP) coapError(err error) {
	t.log.Debug("rpc: coap", zap.Error(err))
}
