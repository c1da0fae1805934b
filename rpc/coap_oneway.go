package rpc

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
	"go.uber.org/zap"
)

// The one-way path. Most of a ring's traffic is one-way messages (Sends)
// that fit in one datagram (CoAPConfig.MaxDatagram) or a few blocks.
// Through go-coap's connection machinery each one costs a connection looked
// up or made per peer, a hand-off to the goroutine of that connection, a
// router matching regular expressions, the block-wise layer, and on the
// sending side a socket per peer; a message of two blocks costs two
// acknowledged round trips on top. In a 64-node ring on loopback that was
// 143 µs of CPU per envelope against WebSocket's 82, and at that load the
// queues behind a busy CPU made the lookup tail. So this transport writes
// such a message itself, from its listening socket, and its read loop hands
// it straight to accept. The wire format is the same non-confirmable POST
// (with RFC 7959 Block1 options when in blocks): any CoAP client may send
// one, and a datagram that is not exactly that shape goes the general way.

// onewayDatagram encodes a one-way envelope as a non-confirmable POST to
// /node/<toID>/receive?oneway, application/json, without a token (nothing
// answers it, so nothing needs matching).
func onewayDatagram(mid uint16, toID string, body []byte) ([]byte, error) {
	return onewayMessage(mid, nil, toID, nil, body)
}

// onewayMessage encodes one non-confirmable one-way POST; extra options
// (Block1, Size1) go after the others, in option number order.
func onewayMessage(mid uint16, token []byte, toID string, extra message.Options, payload []byte) ([]byte, error) {
	m := message.Message{
		Code:      codes.POST,
		Type:      message.NonConfirmable,
		MessageID: int32(mid),
		Token:     token,
		// In option number order, as the encoding needs.
		Options: append(message.Options{
			{ID: message.URIPath, Value: []byte("node")},
			{ID: message.URIPath, Value: []byte(toID)},
			{ID: message.URIPath, Value: []byte("receive")},
			{ID: message.ContentFormat, Value: []byte{byte(message.AppJSON)}},
			{ID: message.URIQuery, Value: []byte(onewayQuery)},
		}, extra...),
		Payload: payload,
	}
	size, err := coder.DefaultCoder.Size(m)
	if err != nil {
		return nil, err
	}
	b := make([]byte, size)
	if _, err := coder.DefaultCoder.Encode(m, b); err != nil {
		return nil, err
	}
	return b, nil
}

// onewayBlocks encodes a one-way envelope too large for one datagram as
// non-confirmable blocks (RFC 7959 Block1 on non-confirmable requests):
// each block a datagram of its own, all under one random token, the first
// carrying the total size in Size1. Nothing acknowledges them: a lost block
// loses the message, as a lost datagram would, which is why only envelopes
// of a few blocks go this way (maxOnewayBlocks).
func (t *CoAP) onewayBlocks(toID string, body []byte) ([][]byte, error) {
	token := make([]byte, 8)
	if _, err := rand.Read(token); err != nil {
		return nil, err
	}
	size := int(blockSize.Size())
	var out [][]byte
	for num := 0; num*size < len(body); num++ {
		part := body[num*size : min((num+1)*size, len(body))]
		more := (num+1)*size < len(body)
		v, err := blockwise.EncodeBlockOption(blockSize, int64(num), more)
		if err != nil {
			return nil, err
		}
		extra := message.Options{{ID: message.Block1, Value: uintOption(v)}}
		if num == 0 {
			extra = append(extra, message.Option{ID: message.Size1, Value: uintOption(uint32(len(body)))})
		}
		d, err := onewayMessage(uint16(t.mid.Add(1)), token, toID, extra, part)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// maxOnewayBlocks bounds the envelopes sent as non-confirmable blocks (8
// KiB); a larger one is sent confirmable, block-wise, so that a lost block
// is sent again rather than losing the whole message.
const maxOnewayBlocks = 8

func uintOption(v uint32) []byte {
	var b [4]byte
	n, _ := message.EncodeUint32(b[:], v)
	return b[:n]
}

// onewayTarget returns the node ID a datagram is addressed to if it is a
// one-way message this path takes: a non-confirmable POST to
// /node/<id>/receive?oneway, JSON or no content format, whole or one of its
// non-confirmable blocks (block1 is then its Block1 option, else 0), with no
// option it does not know (a critical option it ignored would break RFC
// 7252; the general path answers those).
func onewayTarget(m *message.Message) (id string, block1 uint32, hasBlock bool, ok bool) {
	if m.Type != message.NonConfirmable || m.Code != codes.POST {
		return "", 0, false, false
	}
	var path [3][]byte
	segments, oneway := 0, false
	for _, o := range m.Options {
		switch o.ID {
		case message.URIPath:
			if segments == len(path) {
				return "", 0, false, false
			}
			path[segments] = o.Value
			segments++
		case message.URIQuery:
			oneway = oneway || string(o.Value) == onewayQuery
		case message.ContentFormat:
			if !bytes.Equal(o.Value, []byte{byte(message.AppJSON)}) {
				return "", 0, false, false
			}
		case message.Block1:
			v, _, err := message.DecodeUint32(o.Value)
			if err != nil || hasBlock {
				return "", 0, false, false
			}
			block1, hasBlock = v, true
		case message.URIHost, message.URIPort, message.Size1:
		default:
			return "", 0, false, false
		}
	}
	if !oneway || segments != 3 || string(path[0]) != "node" || string(path[2]) != "receive" {
		return "", 0, false, false
	}
	return string(path[1]), block1, hasBlock, true
}

// takeOneway handles dgram if it is a one-way message or block (see
// onewayTarget) and reports whether it did. Nothing answers it: a refusal
// is only logged.
func (t *CoAP) takeOneway(from *net.UDPAddr, dgram []byte) bool {
	var opts [10]message.Option
	m := message.Message{Options: opts[:0]}
	if _, err := coder.DefaultCoder.Decode(dgram, &m); err != nil {
		return false // the general path reports it
	}
	id, block1, hasBlock, ok := onewayTarget(&m)
	if !ok {
		return false
	}
	body := m.Payload
	if hasBlock {
		if body = t.blocks.add(from, m.Token, block1, body, time.Now()); body == nil {
			return true // more to come, or a block out of order (the message is lost)
		}
	} else {
		body = bytes.Clone(body) // the read buffer is reused at once
	}
	t.stats.bytesIn.Add(uint64(len(body)))
	if code, reply := t.handleBody(t.ctx, id, body, true, ""); code != codes.Changed {
		t.log.Debug("rpc: refused a one-way message", zap.Stringer("code", code), zap.ByteString("reply", reply))
	}
	return true
}

// blockAssembler puts non-confirmable one-way blocks back together. What it
// holds is bounded: at most maxAssemblies messages of at most
// maxOnewayBlocks blocks, each dropped blockTimeout after its first block;
// a block out of order drops its message (UDP seldom reorders, and the
// Chord core copes with a lost message).
type blockAssembler struct {
	mu      sync.Mutex
	pending map[string]*assembly // by source address and token
	timeout time.Duration
}

type assembly struct {
	body    []byte
	next    int64
	started time.Time
}

const maxAssemblies = 64

// add takes one block and returns the whole body once its last block came.
func (a *blockAssembler) add(from *net.UDPAddr, token []byte, block1 uint32, part []byte, now time.Time) []byte {
	szx, num, more, err := blockwise.DecodeBlockOption(block1)
	if err != nil || len(token) == 0 || (more && int64(len(part)) != szx.Size()) ||
		num >= maxOnewayBlocks || int64(len(part)) > szx.Size() {
		return nil
	}
	key := from.String() + "/" + string(token)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pending == nil {
		a.pending = map[string]*assembly{}
	}
	for k, p := range a.pending {
		if now.Sub(p.started) > a.timeout {
			delete(a.pending, k)
		}
	}
	p := a.pending[key]
	switch {
	case num == 0:
		if p == nil && len(a.pending) >= maxAssemblies {
			return nil // full: this message is lost
		}
		p = &assembly{started: now}
		a.pending[key] = p
	case p == nil || p.next != num:
		delete(a.pending, key)
		return nil
	}
	p.body = append(p.body, part...)
	p.next++
	if more {
		return nil
	}
	delete(a.pending, key)
	return p.body
}

// sendOneway writes the datagrams of a one-way envelope (onewayDatagram,
// onewayBlocks) from the listening socket: it returns once they are written.
func (t *CoAP) sendOneway(ctx context.Context, addr, hostport string, dgrams [][]byte, bodyLen int) error {
	raddr, err := t.addrs.resolve(hostport)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUnreachable, addr, err)
	}
	t.stats.out(bodyLen)
	for _, d := range dgrams {
		if err := t.srv.ln.WriteWithContext(ctx, raddr, d); err != nil {
			t.addrs.forget(hostport) // its address may have changed
			return fmt.Errorf("%w: %s: %v", ErrConnLost, addr, err)
		}
	}
	return nil
}

// addrCache keeps the resolved addresses of peers, so that a one-way
// message to a host name costs no DNS lookup; an entry is resolved again
// after addrTTL, and the cache holds at most maxAddrs entries.
type addrCache struct {
	mu sync.Mutex
	m  map[string]cachedAddr
}

type cachedAddr struct {
	addr *net.UDPAddr
	at   time.Time
}

const (
	addrTTL  = 30 * time.Second
	maxAddrs = 1024
)

func (c *addrCache) resolve(hostport string) (*net.UDPAddr, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.m[hostport]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < addrTTL {
		return e.addr, nil
	}
	a, err := net.ResolveUDPAddr("udp", hostport)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxAddrs {
		c.m = map[string]cachedAddr{} // peers come and go: start over
	}
	c.m[hostport] = cachedAddr{addr: a, at: now}
	c.mu.Unlock()
	return a, nil
}

func (c *addrCache) forget(hostport string) {
	c.mu.Lock()
	delete(c.m, hostport)
	c.mu.Unlock()
}
