package rpc

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	dtlsnet "github.com/pion/dtls/v3/pkg/net"
	"github.com/pion/dtls/v3/pkg/protocol"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"
	coapdtls "github.com/plgd-dev/go-coap/v3/dtls"
	dtlsserver "github.com/plgd-dev/go-coap/v3/dtls/server"
	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	coapNet "github.com/plgd-dev/go-coap/v3/net"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/net/monitor/inactivity"
	"github.com/plgd-dev/go-coap/v3/udp/client"
	"go.uber.org/zap"
)

// DTLS 1.2 for an authenticating CoAP transport (CoAPConfig.Auth).
//
// The cookie exchange (RFC 6347 4.2.1) is done by this package, statelessly,
// rather than by pion: pion's server keeps a connection, its buffers and
// goroutines for every source that sends a ClientHello, before the source
// has proved it receives at its address, so a flood of ClientHellos with
// forged sources would cost memory per forged address. Here a source that
// has not echoed a valid cookie costs nothing but one HelloVerifyRequest
// (smaller than the ClientHello that asked for it: no amplification).
//
// pion cannot take over a handshake whose cookie round trip someone else
// did: its server counts handshake message sequence numbers from the first
// ClientHello it sees, and the DTLS transcript covers them. So a dialer of
// this package fetches a cookie first (dtlsProbe: a bare ClientHello that
// the far side answers with a HelloVerifyRequest) and then starts pion's
// handshake with that cookie already in its first ClientHello (message
// sequence 0), which the far side hands to a pion server that skips its own
// cookie exchange (InsecureSkipVerifyHello). Only this package's dialers can
// connect, which is all node RPC needs.

// dtlsSuites are the cipher suites offered and accepted. The memberships are
// ed25519 certificates, which DTLS 1.2 signs with in the ECDHE_ECDSA suites
// (RFC 8422).
var dtlsSuites = []dtls.CipherSuiteID{
	dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	dtls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
}

// dtlsMTU bounds the datagrams of a DTLS session: CoAPConfig.MaxDatagram's
// default, which fits a 1500-byte MTU under IPv6.
const dtlsMTU = 1452

// verified is what VerifyPeerCertificate found: the peer's ID, or why it
// was refused (pion reports the refusal to the other side as an alert, and
// to this side as an error that does not wrap it).
type verified struct {
	id  atomic.Value // string
	err atomic.Value // error
}

func (v *verified) result() (string, error) {
	if err, _ := v.err.Load().(error); err != nil {
		return "", err
	}
	id, _ := v.id.Load().(string)
	if id == "" {
		return "", fmt.Errorf("%w: the peer presented no certificate", ErrAuth)
	}
	return id, nil
}

// dtlsConfig returns the DTLS configuration of one session. want is the ID
// the far side must authenticate as ("" or AnyNode: any member); what
// VerifyPeerCertificate found goes in got.
func (a *Auth) dtlsConfig(server bool, want string, got *verified) *dtls.Config {
	cfg := &dtls.Config{
		Certificates:         []tls.Certificate{a.Certificate},
		CipherSuites:         dtlsSuites,
		ExtendedMasterSecret: dtls.RequireExtendedMasterSecret,
		// Verified by VerifyPeerCertificate below, against the network's
		// authority (see Auth.tlsConfig).
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			id, err := a.verifyRaw(raw, want)
			if err != nil {
				got.err.Store(err)
				return err
			}
			got.id.Store(id)
			return nil
		},
		MTU: dtlsMTU,
		// Handshake flights are sent again after this, doubling; the default
		// second is long next to a dial timeout of a few seconds.
		FlightInterval: 250 * time.Millisecond,
	}
	if server {
		cfg.ClientAuth = dtls.RequireAnyClientCert
		// The cookie was checked before pion saw the ClientHello (see above).
		cfg.InsecureSkipVerifyHello = true
	}
	return cfg
}

// cookieJar makes and checks stateless cookies: a timestamp and an HMAC of
// it and the source address, under a key made at start.
type cookieJar struct {
	key [32]byte
	now func() time.Time
}

const (
	cookieLen = 4 + 16
	// cookieLife is how long a cookie is accepted: a dialer uses its cookie
	// at once, so a short life only costs a retry after a long pause.
	cookieLife = 30 * time.Second
)

func newCookieJar() (*cookieJar, error) {
	j := &cookieJar{now: time.Now}
	if _, err := rand.Read(j.key[:]); err != nil {
		return nil, err
	}
	return j, nil
}

func (j *cookieJar) mac(ts uint32, from netip.AddrPort) []byte {
	m := hmac.New(sha256.New, j.key[:])
	var b [4 + 16 + 2]byte
	binary.BigEndian.PutUint32(b[:4], ts)
	ip := from.Addr().As16()
	copy(b[4:20], ip[:])
	binary.BigEndian.PutUint16(b[20:], from.Port())
	m.Write(b[:])
	return m.Sum(nil)[:16]
}

func (j *cookieJar) make(from netip.AddrPort) []byte {
	ts := uint32(j.now().Unix())
	c := make([]byte, 4, cookieLen)
	binary.BigEndian.PutUint32(c, ts)
	return append(c, j.mac(ts, from)...)
}

func (j *cookieJar) valid(c []byte, from netip.AddrPort) bool {
	if len(c) != cookieLen {
		return false
	}
	ts := binary.BigEndian.Uint32(c[:4])
	age := j.now().Unix() - int64(ts)
	if age < -1 || age > int64(cookieLife/time.Second) {
		return false
	}
	return hmac.Equal(c[4:], j.mac(ts, from))
}

// clientHello parses dgram if it is exactly one unfragmented ClientHello of
// epoch 0 with message sequence 0: what starts a handshake here. It returns
// the hello and its record sequence number.
func clientHello(dgram []byte) (*handshake.MessageClientHello, uint64, bool) {
	var rh recordlayer.Header
	// (Header.Unmarshal leaves ContentLen unset: read it from the bytes.)
	if err := rh.Unmarshal(dgram); err != nil || rh.ContentType != protocol.ContentTypeHandshake || rh.Epoch != 0 ||
		int(binary.BigEndian.Uint16(dgram[recordlayer.FixedHeaderSize-2:]))+recordlayer.FixedHeaderSize != len(dgram) {
		return nil, 0, false
	}
	body := dgram[recordlayer.FixedHeaderSize:]
	var hh handshake.Header
	if err := hh.Unmarshal(body); err != nil || hh.Type != handshake.TypeClientHello ||
		hh.MessageSequence != 0 || hh.FragmentOffset != 0 || hh.FragmentLength != hh.Length ||
		int(hh.Length)+handshake.HeaderLength != len(body) {
		return nil, 0, false
	}
	var ch handshake.MessageClientHello
	if err := ch.Unmarshal(body[handshake.HeaderLength:]); err != nil {
		return nil, 0, false
	}
	return &ch, rh.SequenceNumber, true
}

// helloVerifyRequest encodes the answer to a ClientHello without a valid
// cookie. Its record sequence number is the ClientHello's (RFC 6347 4.2.1).
func helloVerifyRequest(cookie []byte, seq uint64) ([]byte, error) {
	r := recordlayer.RecordLayer{
		Header: recordlayer.Header{Version: protocol.Version1_0, SequenceNumber: seq},
		Content: &handshake.Handshake{Message: &handshake.MessageHelloVerifyRequest{
			Version: protocol.Version1_0, Cookie: cookie,
		}},
	}
	return r.Marshal()
}

// helloVerifyCookie returns the cookie of dgram if it is a HelloVerifyRequest.
func helloVerifyCookie(dgram []byte) ([]byte, bool) {
	var rh recordlayer.Header
	if err := rh.Unmarshal(dgram); err != nil || rh.ContentType != protocol.ContentTypeHandshake || rh.Epoch != 0 {
		return nil, false
	}
	var h handshake.Handshake
	if err := h.Unmarshal(dgram[recordlayer.FixedHeaderSize:]); err != nil {
		return nil, false
	}
	hvr, ok := h.Message.(*handshake.MessageHelloVerifyRequest)
	if !ok {
		return nil, false
	}
	return hvr.Cookie, true
}

// probeHello encodes the ClientHello a dialer sends to fetch a cookie. It is
// never part of a handshake (the first ClientHello and the
// HelloVerifyRequest are not in the DTLS transcript).
func probeHello() ([]byte, error) {
	var random handshake.Random
	if err := random.Populate(); err != nil {
		return nil, err
	}
	ids := make([]uint16, len(dtlsSuites))
	for i, s := range dtlsSuites {
		ids[i] = uint16(s)
	}
	return encodeHello(&handshake.MessageClientHello{
		Version: protocol.Version1_2, Random: random, CipherSuiteIDs: ids,
		CompressionMethods: []*protocol.CompressionMethod{{}},
	}, 0)
}

func encodeHello(ch *handshake.MessageClientHello, seq uint64) ([]byte, error) {
	r := recordlayer.RecordLayer{
		Header:  recordlayer.Header{Version: protocol.Version1_0, SequenceNumber: seq},
		Content: &handshake.Handshake{Message: ch},
	}
	return r.Marshal()
}

// fetchCookie sends probe ClientHellos on conn until a HelloVerifyRequest
// answers or ctx ends, and returns its cookie.
func fetchCookie(ctx context.Context, conn *net.UDPConn) ([]byte, error) {
	hello, err := probeHello()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 512)
	wait := 100 * time.Millisecond
	for {
		if _, err := conn.Write(hello); err != nil {
			return nil, err
		}
		deadline := time.Now().Add(wait)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		_ = conn.SetReadDeadline(deadline)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return nil, err
			}
			if c, ok := helloVerifyCookie(buf[:n]); ok {
				_ = conn.SetReadDeadline(time.Time{})
				return c, nil
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		wait = min(2*wait, time.Second)
	}
}

// afterCookie is a dialer's socket once its cookie is fetched, as pion's
// handshake reads it: a HelloVerifyRequest that still arrives is dropped.
// It answers a probe that fetchCookie sent again when the answer to the
// first was late (a round trip over 100 ms, or a loaded host), never
// pion's ClientHello, whose cookie is valid (coap_dtls_server.go answers
// those with a HelloVerifyRequest only when it is not). pion would take it
// for the far side's first message (message sequence 0): it would send a
// new ClientHello with message sequence 1 and wait for a ServerHello of
// sequence 1, ignore the real one (sequence 0), and time out. Measured in
// a 16-node coaps ring under load: every dial that sent two probes or more
// failed so (203 of 203), of those that sent one 268 of 280 succeeded. A
// path whose round trip is over 100 ms never connected at all.
type afterCookie struct{ *net.UDPConn }

func (c afterCookie) Read(b []byte) (int, error) {
	for {
		n, err := c.UDPConn.Read(b)
		if err != nil {
			return n, err
		}
		if _, stale := helloVerifyCookie(b[:n]); !stale {
			return n, nil
		}
	}
}

// dialDTLS opens a DTLS session to raddr from a socket of its own and
// authenticates the far side as want. It returns the session and the ID the
// far side authenticated as.
func (t *CoAP) dialDTLS(ctx context.Context, raddr *net.UDPAddr, want string) (*dtls.Conn, string, error) {
	conn, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: %v", ErrUnreachable, raddr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.DialTimeout)
	defer cancel()
	cookie, err := fetchCookie(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, "", fmt.Errorf("%w: %s: no DTLS cookie: %v", ErrUnreachable, raddr, err)
	}
	var got verified
	cfg := t.auth.dtlsConfig(false, want, &got)
	cfg.ClientHelloMessageHook = func(ch handshake.MessageClientHello) handshake.Message {
		ch.Cookie = cookie
		return &ch
	}
	dc, err := dtls.Client(dtlsnet.PacketConnFromConn(afterCookie{conn}), raddr, cfg) //nolint:staticcheck // the options API has no VerifyPeerCertificate
	if err != nil {
		conn.Close()
		return nil, "", err
	}
	if err := dc.HandshakeContext(ctx); err != nil {
		dc.Close()
		if verr, _ := got.err.Load().(error); verr != nil {
			return nil, "", verr
		}
		return nil, "", fmt.Errorf("%w: %s: DTLS handshake: %v", ErrUnreachable, raddr, err)
	}
	id, err := got.result()
	if err != nil {
		dc.Close()
		return nil, "", err
	}
	return dc, id, nil
}

// dialSecure opens a DTLS session to hostport that must authenticate as
// toID (any member when it is empty or AnyNode).
func (t *CoAP) dialSecure(ctx context.Context, hostport, toID string) (*peerConn, error) {
	raddr, err := t.addrs.resolve(hostport)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, hostport, err)
	}
	dc, id, err := t.dialDTLS(ctx, raddr, toID)
	if err != nil {
		if errors.Is(err, ErrAuth) {
			t.refusedPeer(hostport, err)
		}
		return nil, err
	}
	var chain [][]byte
	if st, ok := dc.ConnectionState(); ok {
		chain = st.PeerCertificates
	}
	return &peerConn{cc: t.session(dc, id), peerID: id, chain: chain}, nil
}

// session runs go-coap over an authenticated DTLS session, either way: this
// node's requests go out on it, and the peer's requests and one-way messages
// on it are handled with the ID it authenticated as (AuthenticatedPeer), the
// responses going back on it. Closing it closes the DTLS session.
//
// It is go-coap's dtls.Client, but with respCache: the stock response cache
// hangs every request after 65,536 on one session (see respCache), and
// dtls.Client takes no option to replace it.
func (t *CoAP) session(dc *dtls.Conn, peerID string) *client.Conn {
	cfg := t.connConfig(coapdtls.DefaultConfig)
	cfg.Ctx = withPeer(t.ctx, peerID)
	cfg.MTU = dtlsMTU
	// go-coap's defaults allow one request at a time per connection.
	cfg.LimitClientParallelRequests = 0
	cfg.LimitClientEndpointParallelRequests = 0
	// Closing the session closes the DTLS connection.
	cfg.CloseSocket = true
	// No timer of go-coap's per session: housekeeping runs them, and
	// closes the idle ones (dtlsServer.sweep, or the monitor below).
	idle := inactivity.New(t.cfg.IdleTimeout, func(cc *client.Conn) { _ = cc.Close() })
	cc := client.NewConnWithOpts(dtlsserver.NewSession(cfg.Ctx, coapNet.NewConn(dc), cfg.MaxMessageSize, cfg.MTU, true), &cfg,
		client.WithBlockWise(func(cc *client.Conn) *blockwise.BlockWise[*client.Conn] {
			return blockwise.New(cc, cfg.BlockwiseTransferTimeout, cfg.Errors,
				func(token message.Token) (*pool.Message, bool) { return cc.GetObservationRequest(token) })
		}),
		client.WithInactivityMonitor(idle),
		client.WithResponseMessageCache(newRespCache(t.blockTimeout(), 256)),
	)
	if !t.tasks.Go(func() {
		if err := cc.Run(); err != nil && t.ctx.Err() == nil {
			t.log.Debug("rpc: DTLS session ended", zap.String("peer", peerID), zap.Error(err))
		}
	}) {
		_ = cc.Close() // the transport is closing
	}
	return cc
}

// sendSecure sends a one-way message over the DTLS session to hostport: a
// non-confirmable POST when it fits in a datagram, else a confirmable
// block-wise one (answered as soon as the far side accepted it; see CoAP).
func (t *CoAP) sendSecure(ctx context.Context, addr, hostport, toID string, body []byte) error {
	_, err := t.retry(ctx, false, func(ctx context.Context) (*Envelope, error) {
		pc, err := t.peer(ctx, hostport, toID)
		if err != nil {
			return nil, err
		}
		if len(body) > dtlsNonBody || len(body)+dtlsOverhead > t.cfg.MaxDatagram {
			reply, err := t.postOn(ctx, pc, addr, hostport, toID, body, true)
			if err == nil && reply != nil {
				t.unmatched(reply, pc.peerID)
			}
			return nil, err
		}
		to := toID
		if to == "" {
			to = AnyNode
		}
		req, err := pc.cc.NewPostRequest(ctx, "/node/"+to+"/receive", message.AppJSON, bytes.NewReader(body),
			message.Option{ID: message.URIQuery, Value: []byte(onewayQuery)})
		if err != nil {
			return nil, err
		}
		defer pc.cc.ReleaseMessage(req)
		req.SetType(message.NonConfirmable)
		req.SetMessageID(pc.cc.GetMessageID())
		t.stats.out(len(body))
		if err := pc.cc.WriteMessage(req); err != nil {
			if ctx.Err() != nil {
				// The message missed its deadline (waiting for the
				// session's write lock, under load), but the session is
				// sound: closing it, as this did, cost a handshake, and
				// every message to the peer failed until the new one was
				// up (a 16-node ring under load closed 240 sound sessions
				// so, and did not settle).
				return nil, ctx.Err()
			}
			t.forget(hostport, pc)
			return nil, fmt.Errorf("%w: %s: %v", ErrConnLost, addr, err)
		}
		return nil, nil
	})
	return err
}

// dtlsOverhead is what a CoAP one-way POST adds to its envelope, in a DTLS
// record of an AEAD suite: the CoAP header, token and options, the record
// header, explicit nonce and tag.
const dtlsOverhead = 64 + 13 + 8 + 16

// Reverify checks every authenticated session's peer again (after a
// revocation, say) and closes those whose peer Verify now refuses.
func (t *CoAP) Reverify() {
	if t.auth == nil {
		return
	}
	for _, c := range t.dsrv.sessions() {
		if _, err := t.auth.verifyRaw(c.chain, ""); err != nil {
			t.stats.refused.Add(1)
			t.log.Info("rpc: closed the session of a refused peer", zap.String("peer", c.peerID), zap.Error(err))
			c.close()
		}
	}
	t.mu.Lock()
	var peers []*peerConn
	var keys []string
	for hp, pc := range t.peers {
		peers, keys = append(peers, pc), append(keys, hp)
	}
	t.mu.Unlock()
	for i, pc := range peers {
		if _, err := t.auth.verifyRaw(pc.chain, ""); err != nil {
			t.stats.refused.Add(1)
			t.log.Info("rpc: closed the session to a refused peer", zap.String("peer", pc.peerID), zap.Error(err))
			t.forget(keys[i], pc)
		}
	}
}

// dtlsNonBody is the largest envelope sent as one non-confirmable POST on a
// session: go-coap splits a larger payload into 1 KiB blocks, and a
// non-confirmable block-wise upload whose blocks the far side sees out of
// step is lost without a trace (measured: bodies of 1,070-1,270 bytes never
// arrived). Larger ones go confirmable and block-wise.
const dtlsNonBody = 1024
