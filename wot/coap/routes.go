package coap

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/flownode/flownode/wot"
)

// route answers a whole request by its path.
func (s *Server) route(r *request) {
	p := r.path
	n := len(p)
	switch {
	case n == 2 && p[0] == ".well-known" && p[1] == "core":
		if r.method(codes.GET) {
			r.respond(content(codes.Content, cfLinkFormat, s.linkFormat(r)))
		}
	case n == 2 && p[0] == ".well-known" && p[1] == "wot":
		if r.method(codes.GET) {
			r.respond(content(codes.Content, cfTDJSON, s.dev.DirectoryTD()))
		}
	case n == 3 && p[0] == "object" && p[1] != "" && p[2] == "send":
		if r.method(codes.POST) {
			s.postReadings(r, p[1])
		}
	case n == 3 && p[0] == "object" && p[1] != "" && p[2] == "viewer":
		if r.method(codes.GET) {
			s.getObservable(r, p[1], recordOf)
		}
	case n == 2 && p[0] == "things" && p[1] != "":
		if r.method(codes.GET) {
			s.async(r, func(ctx context.Context) (response, func()) {
				td, err := s.dev.ThingTD(ctx, p[1])
				if err != nil {
					return s.errorResponse(err), nil
				}
				return content(codes.Content, cfTDJSON, td), nil
			})
		}
	case n == 4 && p[0] == "things" && p[1] != "" && p[2] == "properties" && p[3] != "":
		if r.method(codes.GET) {
			name := p[3]
			s.getObservable(r, p[1], func(u wot.Update) ([]byte, bool) { return propertyValue(u.Value, name) })
		}
	default:
		r.respond(diagnostic(codes.NotFound, "no such resource; GET /.well-known/core lists them"))
	}
}

// method answers 4.05 unless r's method is want.
func (r *request) method(want codes.Code) bool {
	if r.m.Code == want {
		return true
	}
	r.respond(diagnostic(codes.MethodNotAllowed, fmt.Sprintf("use %v", want)))
	return false
}

// postReadings stores a reading, or a batch (a JSON array), and answers
// 2.01 with the receipt (or the array of receipts).
func (s *Server) postReadings(r *request, thing string) {
	if cf, err := r.m.Options.ContentFormat(); err != nil || cf != cfJSON {
		r.respond(diagnostic(codes.UnsupportedMediaType, "send readings as application/json (Content-Format 50)"))
		return
	}
	values, batch, err := parseReadings(r.body)
	if err != nil {
		r.respond(diagnostic(codes.BadRequest, err.Error()))
		return
	}
	s.inOrder(r, func(ctx context.Context) (response, func()) {
		receipts, err := s.dev.Send(ctx, thing, values)
		if err != nil {
			return s.errorResponse(err), nil
		}
		var out any = receipts
		if !batch && len(receipts) == 1 {
			out = receipts[0]
		}
		body, err := json.Marshal(out)
		if err != nil {
			return s.errorResponse(err), nil
		}
		s.markPresent(r.from, thing)
		return content(codes.Created, cfJSON, body), nil
	})
}

// parseReadings reads a body: one JSON value, or a JSON array of them (a
// batch).
func parseReadings(body []byte) (values []json.RawMessage, batch bool, err error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, false, fmt.Errorf("an empty body: send a JSON reading")
	}
	if !json.Valid(trimmed) {
		var v any
		err := json.Unmarshal(trimmed, &v)
		return nil, false, fmt.Errorf("the body is not JSON: %v", err)
	}
	if trimmed[0] != '[' {
		return []json.RawMessage{json.RawMessage(bytes.Clone(trimmed))}, false, nil
	}
	if err := json.Unmarshal(trimmed, &values); err != nil {
		return nil, true, fmt.Errorf("the batch is not a JSON array: %v", err)
	}
	if len(values) == 0 {
		return nil, true, fmt.Errorf("an empty batch: send at least one reading")
	}
	return values, true, nil
}

// getObservable answers a GET of a Thing's value (projected by project),
// registering or deregistering an observer if it asks (Observe 0 or 1).
func (s *Server) getObservable(r *request, thing string, project func(wot.Update) ([]byte, bool)) {
	obs, has := uintOption(r.m, message.Observe)
	nextBlock := r.block2 != nil && r.block2.num > 0 // of a large notification, maybe
	register := has && obs == 0 && !nextBlock
	if !register && !nextBlock {
		s.unobserve(r.from, r.m.Token)
	}
	s.async(r, func(ctx context.Context) (response, func()) {
		if register {
			return s.observe(ctx, r, thing, project)
		}
		u, err := s.dev.Latest(ctx, thing)
		if err != nil {
			return s.errorResponse(err), nil
		}
		body, ok := project(u)
		if !ok {
			return diagnostic(codes.NotFound, "the Thing's latest value has no such property"), nil
		}
		return content(codes.Content, cfJSON, body), nil
	})
}

// recordOf projects an update onto its signed record (the viewer).
func recordOf(u wot.Update) ([]byte, bool) { return u.Record, len(u.Record) > 0 }

// propertyValue projects a reading onto a property, as the HTTP front
// does: the member name of an object reading; a reading that is not an
// object is the property "value".
func propertyValue(v json.RawMessage, name string) ([]byte, bool) {
	t := bytes.TrimSpace(v)
	if len(t) == 0 || t[0] != '{' {
		return t, name == "value" && len(t) > 0
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(t, &obj) != nil {
		return nil, false
	}
	m, ok := obj[name]
	return m, ok
}
