package rpc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// frameIO reads and writes whole envelope frames on a connection. One reader
// and one writer at a time.
type frameIO interface {
	readFrame() ([]byte, error)
	writeFrame([]byte) error
}

// wsFrames is an open transport's framing: one text message per envelope.
type wsFrames struct{ c *websocket.Conn }

// readFrame reads one message into a pooled buffer and returns a copy of
// exactly its size: gorilla's ReadMessage (io.ReadAll) grows its slice from
// 512 bytes, a few allocations per envelope and a tenth of what a busy ring
// allocated.
func (f wsFrames) readFrame() ([]byte, error) {
	_, r, err := f.c.NextReader()
	if err != nil {
		return nil, err
	}
	buf := frameBufs.Get().(*bytes.Buffer)
	defer putFrameBuf(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, err
	}
	return bytes.Clone(buf.Bytes()), nil
}

// frameBufs holds read buffers; one that grew past maxPooledFrameBuf for a
// large envelope is dropped rather than kept.
var frameBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledFrameBuf = 16 << 10

func putFrameBuf(b *bytes.Buffer) {
	if b.Cap() <= maxPooledFrameBuf {
		frameBufs.Put(b)
	}
}

func (f wsFrames) writeFrame(b []byte) error { return f.c.WriteMessage(websocket.TextMessage, b) }

// tlsFrames is an authenticating transport's framing: the WebSocket's binary
// messages carry a TLS 1.3 stream, and the stream carries envelopes, each
// after its length (4 bytes, big-endian). TLS inside the WebSocket keeps node
// RPC on the node's one HTTP port, next to the API, with nothing to configure.
type tlsFrames struct {
	tc  *tls.Conn
	br  *bufio.Reader
	max int
	hdr [4]byte
}

// errFrameTooLarge is a length prefix over the codec's limit: the stream is
// closed, since nothing after it can be trusted to be in step.
var errFrameTooLarge = fmt.Errorf("%w: frame over the size limit", ErrTooLarge)

func (f *tlsFrames) readFrame() ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(f.br, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n > uint32(f.max) {
		return nil, errFrameTooLarge
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(f.br, b); err != nil {
		return nil, err
	}
	return b, nil
}

func (f *tlsFrames) writeFrame(b []byte) error {
	if len(b) > f.max {
		return errFrameTooLarge
	}
	// One Write: the length and a small frame go out in one TLS record.
	buf := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	copy(buf[4:], b)
	_, err := f.tc.Write(buf)
	return err
}

// wsStream is a WebSocket connection as a byte stream, for TLS: each Write is
// one binary message, and Read reads across messages. Ping and pong control
// frames are still handled by the WebSocket underneath.
type wsStream struct {
	c *websocket.Conn
	r io.Reader
}

func (s *wsStream) Read(p []byte) (int, error) {
	for {
		if s.r == nil {
			mt, r, err := s.c.NextReader()
			if err != nil {
				return 0, err
			}
			if mt != websocket.BinaryMessage {
				return 0, errors.New("a text message inside a TLS stream")
			}
			s.r = r
		}
		n, err := s.r.Read(p)
		if errors.Is(err, io.EOF) {
			s.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (s *wsStream) Write(p []byte) (int, error) {
	if err := s.c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *wsStream) Close() error                       { return s.c.Close() }
func (s *wsStream) LocalAddr() net.Addr                { return s.c.LocalAddr() }
func (s *wsStream) RemoteAddr() net.Addr               { return s.c.RemoteAddr() }
func (s *wsStream) SetReadDeadline(t time.Time) error  { return s.c.SetReadDeadline(t) }
func (s *wsStream) SetWriteDeadline(t time.Time) error { return s.c.SetWriteDeadline(t) }
func (s *wsStream) SetDeadline(t time.Time) error {
	if err := s.c.SetReadDeadline(t); err != nil {
		return err
	}
	return s.c.SetWriteDeadline(t)
}

// secure runs the TLS handshake on a new connection (as its server when
// server is set) within the dial timeout, and switches the connection to
// tlsFrames. want is the ID the far side must authenticate as ("" or AnyNode:
// any member). It records the peer's ID and certificates.
func (c *wsConn) secure(server bool, want string) error {
	t := c.t
	var got atomic.Value
	cfg := t.cfg.Auth.tlsConfig(server, want, &got)
	stream := &wsStream{c: c.c}
	var tc *tls.Conn
	if server {
		tc = tls.Server(stream, cfg)
	} else {
		tc = tls.Client(stream, cfg)
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.DialTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		if errors.Is(err, ErrAuth) { // this side's Verify refused the peer: say why
			return err
		}
		return fmt.Errorf("%w: TLS handshake: %v", ErrAuth, err)
	}
	id, _ := got.Load().(string)
	if id == "" { // cannot happen: VerifyPeerCertificate ran and stored it
		return fmt.Errorf("%w: the peer presented no certificate", ErrAuth)
	}
	var chain [][]byte
	for _, cert := range tc.ConnectionState().PeerCertificates {
		chain = append(chain, cert.Raw)
	}
	c.peerID, c.chain = id, chain
	c.fr = &tlsFrames{tc: tc, br: bufio.NewReaderSize(tc, 4096), max: t.codec.MaxSize()}
	return nil
}

// Reverify checks every open connection's peer again (after a revocation,
// say) and closes those whose peer Verify now refuses.
func (t *WS) Reverify() {
	if t.cfg.Auth == nil {
		return
	}
	t.mu.Lock()
	conns := t.connsLocked()
	t.mu.Unlock()
	for _, c := range conns {
		if c.chain == nil {
			continue // still in its handshake, which runs Verify itself
		}
		if _, err := t.cfg.Auth.verifyRaw(c.chain, ""); err != nil {
			t.stats.refused.Add(1)
			c.kill(err)
		}
	}
}
