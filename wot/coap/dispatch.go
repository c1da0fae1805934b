package coap

import (
	"errors"
	"fmt"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/flownode/flownode/access"
)

// handle takes one datagram off the queue.
func (s *Server) handle(d datagram) {
	m, err := decode(d.b)
	if err != nil {
		s.stats.Malformed.Add(1)
		if rst := rejectFor(d.b); rst != nil {
			s.send(d.reply, rst)
		}
		return
	}
	mid := uint16(m.MessageID)
	switch m.Type {
	case message.Acknowledgement, message.Reset:
		s.acknowledged(d.from, mid, m.Type)
		return
	}
	if !isRequest(m.Code) {
		// An empty CON is a ping (RFC 7252 §4.3), answered with an RST,
		// as is a confirmable message this server cannot process.
		if m.Type == message.Confirmable {
			s.send(d.reply, emptyMessage(message.Reset, mid))
		}
		return
	}
	ex, dup, resend, ok := s.begin(d, m, time.Now())
	switch {
	case !ok:
		s.stats.Dropped.Add(1)
		return
	case dup:
		s.stats.Duplicates.Add(1)
		if resend != nil {
			s.send(d.reply, resend)
		}
		return
	}
	s.stats.Requests.Add(1)
	r := &request{s: s, from: d.from, reply: d.reply, m: m, ex: ex}
	s.serve(r)
}

// serve checks a request's options, takes block-wise transfers, and routes
// the whole request.
func (s *Server) serve(r *request) {
	m := r.m
	for _, o := range m.Options {
		if o.ID == message.URIPath {
			r.path = append(r.path, string(o.Value))
		}
	}
	if !s.authorized(r) {
		return
	}
	if m.Options.HasOption(message.ProxyURI) || m.Options.HasOption(message.ProxyScheme) {
		r.respond(diagnostic(codes.ProxyingNotSupported, "this node is not a proxy"))
		return
	}
	if err := checkLengths(m); err != nil {
		r.respond(diagnostic(codes.BadOption, err.Error()))
		return
	}
	if id, bad := unknownCritical(m); bad {
		r.respond(diagnostic(codes.BadOption, fmt.Sprintf("critical option %d is not supported", id)))
		return
	}
	b2, has2, err := blockOption(m, message.Block2)
	if err != nil {
		r.respond(diagnostic(codes.BadOption, err.Error()))
		return
	}
	if has2 {
		r.block2 = &b2
		if b2.num > 0 && r.serveNextBlock(b2) {
			return
		}
	}
	b1, has1, err := blockOption(m, message.Block1)
	if err != nil {
		r.respond(diagnostic(codes.BadOption, err.Error()))
		return
	}
	r.body = m.Payload
	if has1 {
		body, done := r.receiveBlock(b1)
		if !done {
			return
		}
		r.body = body
	} else if len(r.body) > s.cfg.MaxBody {
		r.respond(s.tooLarge(len(r.body)))
		return
	}
	s.route(r)
}

// authorized asks Config.Authorize about a request on a Thing, before any
// of it is kept (a refused upload's blocks are not reassembled), and
// answers a refusal: 4.01, 4.03, or 5.03 when the check itself failed.
func (s *Server) authorized(r *request) bool {
	if s.cfg.Authorize == nil {
		return true
	}
	thing, need, ok := thingOf(r.path, r.m.Code)
	if !ok {
		return true
	}
	err := s.cfg.Authorize(r.from, thing, need)
	if err == nil {
		return true
	}
	s.stats.Refused.Add(1)
	switch {
	case errors.Is(err, access.ErrNoCredential):
		r.respond(diagnostic(codes.Unauthorized, err.Error()))
	case errors.Is(err, access.ErrForbidden):
		r.respond(diagnostic(codes.Forbidden, err.Error()))
	default:
		r.respond(withMaxAge(diagnostic(codes.ServiceUnavailable, err.Error()), 5))
	}
	return false
}

// thingOf names the Thing a request is on and the scope it needs: reads
// (GET, and so Observe registrations) need access.Read, the device path
// /object/{id}/send and any other method access.Write. ok is false for a
// path that is no Thing's (/.well-known/core, /.well-known/wot, unknown
// ones).
func thingOf(path []string, code codes.Code) (thing string, need access.Scope, ok bool) {
	n := len(path)
	switch {
	case n == 3 && path[0] == "object" && path[1] != "":
		thing = path[1]
		if path[2] == "send" {
			return thing, access.Write, true
		}
	case n >= 2 && path[0] == "things" && path[1] != "":
		thing = path[1]
	default:
		return "", 0, false
	}
	if code == codes.GET {
		return thing, access.Read, true
	}
	return thing, access.Write, true
}
