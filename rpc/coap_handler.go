package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/mux"
	"github.com/plgd-dev/go-coap/v3/net/blockwise"
	"github.com/plgd-dev/go-coap/v3/net/responsewriter"
	"github.com/plgd-dev/go-coap/v3/options/config"
	"github.com/plgd-dev/go-coap/v3/udp/client"
	"go.uber.org/zap"
)

// serveRPC is the ReceivePattern route.
func (t *CoAP) serveRPC(w mux.ResponseWriter, r *mux.Message) {
	code, reply := codes.MethodNotAllowed, []byte(nil)
	switch cf, cfErr := r.ContentFormat(); {
	case r.Code() != codes.POST:
		reply = t.errorReply(0, errors.New("only POST is allowed here"))
	case cfErr == nil && cf != message.AppJSON:
		code, reply = codes.UnsupportedMediaType, t.errorReply(0, fmt.Errorf("content format %v: want application/json", cf))
	default:
		body, err := r.ReadBody()
		if err != nil {
			code, reply = codes.BadRequest, t.errorReply(0, fmt.Errorf("cannot read the body: %w", err))
			break
		}
		t.stats.bytesIn.Add(uint64(len(body)))
		oneway := isOneway(r.Message)
		// The ID the DTLS session authenticated, in its context (see
		// session); none on plain CoAP.
		peer, _ := AuthenticatedPeer(w.Conn().Context())
		code, reply = t.handleBody(t.ctx, r.RouteParams.Vars["id"], body, oneway, peer)
		if oneway && r.Type() == message.NonConfirmable {
			// Nothing waits for an answer.
			if code != codes.Changed {
				t.log.Debug("rpc: refused a one-way message", zap.Stringer("code", code), zap.ByteString("reply", reply))
			}
			return
		}
	}
	var err error
	if reply == nil {
		err = w.SetResponse(code, message.AppJSON, nil)
	} else {
		t.stats.out(len(reply))
		err = w.SetResponse(code, message.AppJSON, bytes.NewReader(reply))
	}
	if err != nil {
		t.log.Warn("rpc: cannot set the CoAP response", zap.Error(err))
	}
}

// isOneway reports whether a request is a Send (see CoAP).
func isOneway(r *pool.Message) bool {
	qs, _ := r.Queries()
	return slices.Contains(qs, onewayQuery)
}

// handleBody handles the body of one POST to /node/{id}/receive and returns
// the response code and body. A one-way message is answered once it is
// accepted, and handled after that on a worker of its own. peer is the ID
// the sender authenticated as ("" on plain CoAP).
func (t *CoAP) handleBody(ctx context.Context, pathID string, body []byte, oneway bool, peer string) (codes.Code, []byte) {
	if pathID != t.self.ID && pathID != AnyNode {
		id, _ := peekID(body)
		return codes.NotFound, t.errorReply(id, fmt.Errorf("no node %s here: this is node %s", clip(pathID), t.self.ID))
	}
	if t.tasks.isClosed() {
		id, _ := peekID(body)
		return codes.ServiceUnavailable, t.errorReply(id, ErrClosed)
	}
	env, reply, out := t.accept(body, true, peer)
	ctx = withPeer(ctx, peer)
	if env != nil {
		if oneway {
			t.dispatch(func() {
				if reply, _ := t.respond(ctx, env); reply != nil {
					t.log.Debug("rpc: dropped the reply to a one-way message", zap.String("type", env.Type))
				}
			})
			return codes.Changed, nil
		}
		reply, out = t.respond(ctx, env)
	}
	switch out {
	case outBad:
		return codes.BadRequest, reply
	case outTooLarge:
		return codes.RequestEntityTooLarge, reply
	case outNotHere:
		return codes.NotFound, reply
	case outFailed:
		return codes.InternalServerError, reply
	}
	return codes.Changed, reply
}

// process receives each message on a peer's connection, on the loop that
// go-coap runs for that peer. It refuses a block-wise upload as soon as it
// passes the size limit (go-coap would keep assembling it without bound).
// Responses and one-way messages take the loop a few microseconds (the
// handler of a one-way message runs on a worker: see handleBody), so the
// loop processes them itself; other requests run on workers of their own,
// because a slow handler would hold up everything else from that peer.
//
// A retransmission of a request still being handled is dropped: the
// response to the original answers it (the peer matches by message ID).
// go-coap would make it wait for the original on a lock, holding a goroutine,
// or the peer's whole message loop when MaxInflight handlers already run.
func (t *CoAP) process(req *pool.Message, cc *client.Conn, handler config.HandlerFunc[*client.Conn]) {
	if t.oversize(req) {
		cc.ProcessReceivedMessageWithHandler(req, t.refuseTooLarge)
		return
	}
	if typ := req.Type(); (typ != message.Confirmable && typ != message.NonConfirmable) || isOneway(req) {
		cc.ProcessReceivedMessageWithHandler(req, handler)
		return
	}
	k := inflightKey{cc, req.MessageID()}
	if _, busy := t.inflight.LoadOrStore(k, true); busy {
		cc.ReleaseMessage(req)
		return
	}
	t.dispatch(func() {
		defer t.inflight.Delete(k)
		cc.ProcessReceivedMessageWithHandler(req, handler)
	})
}

// inflightKey names a request being handled: its peer and message ID.
type inflightKey struct {
	cc  *client.Conn
	mid int32
}

func (t *CoAP) oversize(req *pool.Message) bool {
	limit := int64(t.codec.MaxSize())
	if v, err := req.GetOptionUint32(message.Size1); err == nil && int64(v) > limit {
		return true
	}
	v, err := req.GetOptionUint32(message.Block1)
	if err != nil {
		return false
	}
	szx, num, _, err := blockwise.DecodeBlockOption(v)
	if err != nil {
		return false // go-coap answers malformed block options itself
	}
	size, _ := req.BodySize()
	return num*szx.Size()+size > limit
}

// refuseTooLarge answers an oversize upload with 4.13 and an error reply. It
// runs in place of go-coap's request handling, so it pairs the response with
// the request itself.
func (t *CoAP) refuseTooLarge(w *responsewriter.ResponseWriter[*client.Conn], r *pool.Message) {
	t.stats.decodeErrors.Add(1)
	t.log.Warn("rpc: refused a block-wise upload over the size limit",
		zap.Stringer("from", w.Conn().RemoteAddr()), zap.Int("limit", t.codec.MaxSize()))
	body := t.errorReply(0, fmt.Errorf("%w: the limit is %d bytes", ErrTooLarge, t.codec.MaxSize()))
	if err := w.SetResponse(codes.RequestEntityTooLarge, message.AppJSON, bytes.NewReader(body)); err != nil {
		return
	}
	if r.Type() == message.Confirmable {
		w.Message().SetType(message.Acknowledgement)
		w.Message().SetMessageID(r.MessageID())
	} else {
		w.Message().SetType(message.NonConfirmable)
		w.Message().SetMessageID(w.Conn().GetMessageID())
	}
}
