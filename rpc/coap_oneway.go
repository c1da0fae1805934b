package rpc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
	"go.uber.org/zap"
)

// The one-way path. Most of a ring's traffic is one-way messages that fit
// in one datagram (Sends, see CoAP and CoAPConfig.MaxDatagram). Through go-coap's connection machinery
// each one costs a connection looked up or made per peer, a hand-off to the
// goroutine of that connection, a router matching regular expressions, the
// block-wise layer, and on the sending side a socket per peer: in a 64-node
// ring on loopback, 143 µs of CPU per envelope against WebSocket's 82, and
// at that load the queues behind a busy CPU made the lookup tail. So this
// transport writes such a message itself, from its listening socket, and
// its read loop hands such a message straight to accept. The wire format is
// the same non-confirmable POST as before: any CoAP client may send one, and
// any datagram that is not exactly that shape goes the general way.

// onewayDatagram encodes a one-way envelope as a non-confirmable POST to
// /node/<toID>/receive?oneway, application/json, without a token (nothing
// answers it, so nothing needs matching).
func onewayDatagram(mid uint16, toID string, body []byte) ([]byte, error) {
	m := message.Message{
		Code:      codes.POST,
		Type:      message.NonConfirmable,
		MessageID: int32(mid),
		// In option number order, as the encoding needs.
		Options: message.Options{
			{ID: message.URIPath, Value: []byte("node")},
			{ID: message.URIPath, Value: []byte(toID)},
			{ID: message.URIPath, Value: []byte("receive")},
			{ID: message.ContentFormat, Value: []byte{byte(message.AppJSON)}},
			{ID: message.URIQuery, Value: []byte(onewayQuery)},
		},
		Payload: body,
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

// onewayTarget returns the node ID a datagram is addressed to if it is a
// one-way message this path takes: a non-confirmable POST to
// /node/<id>/receive?oneway, JSON or no content format, in one block, with
// no option it does not know (a critical option it ignored would break
// RFC 7252; the general path answers those).
func onewayTarget(m *message.Message) (string, bool) {
	if m.Type != message.NonConfirmable || m.Code != codes.POST {
		return "", false
	}
	var path [3][]byte
	segments, oneway := 0, false
	for _, o := range m.Options {
		switch o.ID {
		case message.URIPath:
			if segments == len(path) {
				return "", false
			}
			path[segments] = o.Value
			segments++
		case message.URIQuery:
			oneway = oneway || string(o.Value) == onewayQuery
		case message.ContentFormat:
			if !bytes.Equal(o.Value, []byte{byte(message.AppJSON)}) {
				return "", false
			}
		case message.URIHost, message.URIPort:
		default:
			return "", false
		}
	}
	if !oneway || segments != 3 || string(path[0]) != "node" || string(path[2]) != "receive" {
		return "", false
	}
	return string(path[1]), true
}

// takeOneway handles dgram if it is a one-way message (see onewayTarget)
// and reports whether it did. Nothing answers it: a refusal is only logged.
func (t *CoAP) takeOneway(dgram []byte) bool {
	var opts [8]message.Option
	m := message.Message{Options: opts[:0]}
	if _, err := coder.DefaultCoder.Decode(dgram, &m); err != nil {
		return false // the general path reports it
	}
	id, ok := onewayTarget(&m)
	if !ok {
		return false
	}
	body := bytes.Clone(m.Payload) // the read buffer is reused at once
	t.stats.bytesIn.Add(uint64(len(body)))
	if code, reply := t.handleBody(t.ctx, id, body, true); code != codes.Changed {
		t.log.Debug("rpc: refused a one-way message", zap.Stringer("code", code), zap.ByteString("reply", reply))
	}
	return true
}

// sendOneway writes the datagram of a one-way envelope (onewayDatagram)
// from the listening socket: it returns once the datagram is written.
func (t *CoAP) sendOneway(ctx context.Context, addr, hostport string, dgram []byte, bodyLen int) error {
	raddr, err := t.addrs.resolve(hostport)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUnreachable, addr, err)
	}
	t.stats.out(bodyLen)
	if err := t.srv.ln.WriteWithContext(ctx, raddr, dgram); err != nil {
		t.addrs.forget(hostport) // its address may have changed
		return fmt.Errorf("%w: %s: %v", ErrConnLost, addr, err)
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
