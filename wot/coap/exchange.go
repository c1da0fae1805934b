package coap

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"go.uber.org/zap"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/wot"
)

// exchange is one request as a retransmission of it finds it (RFC 7252
// §4.5): still being handled, acknowledged with an empty ACK (the response
// follows separately), or answered. Under Server.mu.
type exchange struct {
	mid   uint16
	con   bool
	at    time.Time
	state exchangeState
	// resp is what a retransmission of a confirmable request gets: the
	// piggybacked response, or the empty ACK of a separate one.
	resp []byte
}

type exchangeState uint8

const (
	pending exchangeState = iota
	acked                 // empty ACK sent; the response goes as a CON of its own
	answered
)

// request is a request being served: its message, the exchange it is in,
// and what block-wise options ask of its response.
type request struct {
	s      *Server
	from   Source
	reply  func([]byte) error
	m      *message.Message
	ex     *exchange
	path   []string
	body   []byte
	block1 *block // the last block of an upload, echoed in the response
	block2 *block // the block of the response the client asks for
	cached bool   // the response comes from the Block2 cache: do not cache it again
}

// response is what a handler answers, before block-wise slicing.
type response struct {
	code  codes.Code
	cf    message.MediaType
	hasCF bool
	body  []byte
	opts  message.Options
}

func content(code codes.Code, cf message.MediaType, body []byte) response {
	return response{code: code, cf: cf, hasCF: true, body: body}
}

// diagnostic is an error response with a diagnostic payload (RFC 7252
// §5.5.2: text, no Content-Format).
func diagnostic(code codes.Code, text string) response {
	return response{code: code, body: []byte(text)}
}

// errorResponse maps an error of Devices onto a CoAP response.
func (s *Server) errorResponse(err error) response {
	var input *ledger.InputError
	switch {
	case errors.As(err, &input):
		return diagnostic(codes.BadRequest, fmt.Sprintf("reading %d: %v", input.Index, input.Err))
	case errors.Is(err, wot.ErrNoThing), errors.Is(err, wot.ErrNoValue):
		return diagnostic(codes.NotFound, err.Error())
	case errors.Is(err, wot.ErrBadInput):
		return diagnostic(codes.BadRequest, err.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return withMaxAge(diagnostic(codes.ServiceUnavailable, "the node did not answer in time; try again"), 5)
	}
	s.log.Warn("coap: request failed", zap.Error(err))
	return diagnostic(codes.InternalServerError, err.Error())
}

func withMaxAge(r response, seconds uint32) response {
	r.opts = r.opts.Add(uintOpt(message.MaxAge, seconds))
	return r
}

// begin finds or makes the exchange of a request. A retransmission of a
// request already seen returns dup with what to send again (nil: nothing,
// the request is still being handled or was non-confirmable).
func (s *Server) begin(d datagram, m *message.Message, now time.Time) (ex *exchange, dup bool, resend []byte, ok bool) {
	mid := uint16(m.MessageID)
	s.mu.Lock()
	src, after := s.sourceLocked(d.from, d.reply, now)
	defer func() {
		s.mu.Unlock()
		for _, f := range after {
			f()
		}
	}()
	if src == nil || s.closed {
		return nil, false, nil, false
	}
	if old := src.exchanges[mid]; old != nil {
		if old.con {
			resend = old.resp
		}
		return old, true, resend, true
	}
	if len(src.order) >= s.cfg.ExchangesPerSource {
		delete(src.exchanges, src.order[0])
		src.order = src.order[1:]
	}
	ex = &exchange{mid: mid, con: m.Type == message.Confirmable, at: now}
	src.exchanges[mid] = ex
	src.order = append(src.order, mid)
	return ex, false, nil, true
}

// expireExchangesLocked forgets the exchanges older than ExchangeLifetime.
func (s *Server) expireExchangesLocked(src *source, now time.Time) {
	n := 0
	for _, mid := range src.order {
		if ex := src.exchanges[mid]; ex != nil && now.Sub(ex.at) <= s.cfg.ExchangeLifetime {
			break
		}
		delete(src.exchanges, mid)
		n++
	}
	if n > 0 {
		src.order = append(src.order[:0:0], src.order[n:]...)
	}
}

// respond sends the response to r: piggybacked on the ACK of a confirmable
// request not yet acknowledged, as a separate confirmable response after an
// empty ACK, or non-confirmable to a non-confirmable request. A body larger
// than the block the client asks for (or 1 KiB) goes block-wise (Block2),
// the rest of it kept for the client's next requests.
func (r *request) respond(resp response) {
	s := r.s
	if resp.code>>5 == 2 && resp.hasCF && len(resp.body) > 0 {
		if accept, ok := uintOption(r.m, message.Accept); ok && message.MediaType(accept) != resp.cf {
			resp = diagnostic(codes.NotAcceptable, fmt.Sprintf("this resource is served as Content-Format %d", resp.cf))
		}
	}
	if r.unwanted(resp.code) {
		r.respondNothing()
		return
	}
	// A copy: Add moves options in place, and resp may be kept (Block2).
	opts := append(make(message.Options, 0, len(resp.opts)+6), resp.opts...)
	if resp.hasCF {
		opts = opts.Add(uintOpt(message.ContentFormat, uint32(resp.cf)))
	}
	if r.block1 != nil {
		opts = opts.Add(uintOpt(message.Block1, r.block1.value()))
	}
	payload := resp.body
	want := block{szx: defaultSZX}
	if r.block2 != nil {
		want = *r.block2
	}
	if r.block2 != nil && want.num > 0 || len(payload) > want.size() {
		var err error
		if payload, opts, err = r.blockOf(resp, want, opts); err != nil {
			r.block2 = nil // the error goes whole
			r.respond(diagnostic(codes.BadOption, err.Error()))
			return
		}
	}
	msg := &message.Message{Token: r.m.Token, Code: resp.code, Options: opts, Payload: payload}
	s.mu.Lock()
	ex := r.ex
	separate := false
	switch {
	case !ex.con:
		msg.Type, msg.MessageID = message.NonConfirmable, int32(s.nextMID())
	case ex.state == pending:
		msg.Type, msg.MessageID = message.Acknowledgement, int32(ex.mid)
	default:
		msg.Type, msg.MessageID = message.Confirmable, int32(s.nextMID())
		separate = true
	}
	b, err := encode(msg)
	if err == nil && !separate {
		ex.resp = b
	}
	ex.state = answered
	s.mu.Unlock()
	if err != nil {
		s.log.Warn("coap: cannot encode a response", zap.Error(err))
		return
	}
	if separate {
		s.sendConfirmable(r.from, r.reply, uint16(msg.MessageID), b, nil)
		return
	}
	s.send(r.reply, b)
}

// ackLater sends an empty ACK for r's confirmable request if it is still
// unanswered after SeparateAfter, so that the client stops retransmitting
// while Devices works; the response then goes separately. It returns the
// function that cancels it.
func (r *request) ackLater() (stop func()) {
	if !r.ex.con {
		return func() {}
	}
	t := time.AfterFunc(r.s.cfg.SeparateAfter, func() {
		s := r.s
		s.mu.Lock()
		var ack []byte
		if r.ex.state == pending {
			ack = emptyMessage(message.Acknowledgement, r.ex.mid)
			r.ex.state, r.ex.resp = acked, ack
		}
		s.mu.Unlock()
		if ack != nil {
			s.send(r.reply, ack)
		}
	})
	return func() { t.Stop() }
}

// unwanted tells whether the client said, with No-Response (RFC 7967), that
// it wants no response of code's class: bit 2 for 2.xx, 8 for 4.xx, 16 for
// 5.xx.
func (r *request) unwanted(code codes.Code) bool {
	v, ok := uintOption(r.m, message.NoResponse)
	if !ok {
		return false
	}
	switch code >> 5 {
	case 2:
		return v&2 != 0 && code != codes.Continue // a block upload needs its 2.31
	case 4:
		return v&8 != 0
	case 5:
		return v&16 != 0
	}
	return false
}

// respondNothing ends an exchange whose response the client does not want:
// a confirmable request still gets its empty ACK (RFC 7967 §2.1).
func (r *request) respondNothing() {
	s := r.s
	s.mu.Lock()
	var ack []byte
	if r.ex.con && r.ex.state == pending {
		ack = emptyMessage(message.Acknowledgement, r.ex.mid)
		r.ex.resp = ack
	}
	r.ex.state = answered
	s.mu.Unlock()
	if ack != nil {
		s.send(r.reply, ack)
	}
}
