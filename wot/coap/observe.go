package coap

import (
	"context"
	"errors"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"go.uber.org/zap"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/wot"
)

// conEvery makes every conEvery-th notification confirmable, so that an
// observer that went away is noticed (RFC 7641 §4.5); the others are
// non-confirmable, and so is any sent while a confirmable one is unacked.
const conEvery = 16

// recentMIDs is how many notifications' message IDs an observer keeps, to
// match an RST to it (RFC 7641 §3.6).
const recentMIDs = 8

// observer is a client observing a resource (RFC 7641): it gets a
// notification for each new update of the Thing its projection yields a
// payload for. Its mutable fields are under Server.mu.
type observer struct {
	from    Source
	token   []byte
	thing   string
	key     string // reprKey of its GET, for the next blocks of a large notification
	project func(wot.Update) ([]byte, bool)
	sub     wot.Subscription
	szx     uint8
	stop    chan struct{}
	// skip is the record the registration response carried, if it also
	// comes as an update (written between Subscribe and Latest).
	skip     ledger.Hash
	skipTime int64

	seq        uint32 // the last Observe value sent
	sent       int
	conPending bool
	checked    time.Time // when a confirmable notification was last acknowledged
	last       []byte    // the last payload sent
	recent     [recentMIDs]uint16
	nrecent    int
}

// observe registers r's client as an observer of thing and returns the
// registration's response, with the current value; the notifications start
// once it is sent (start). Beyond the bounds, or on error, the response is
// a plain one (no Observe option), as RFC 7641 §4.1 allows.
func (s *Server) observe(ctx context.Context, r *request, thing string, project func(wot.Update) ([]byte, bool)) (resp response, start func()) {
	sub, err := s.dev.Subscribe(thing)
	if err != nil {
		return s.errorResponse(err), nil
	}
	var body []byte
	cur, err := s.dev.Latest(ctx, thing)
	switch {
	case err == nil:
		body, _ = project(cur)
	case !errors.Is(err, wot.ErrNoValue):
		sub.Close()
		return s.errorResponse(err), nil
	}
	o := &observer{from: r.from, thing: thing, token: append([]byte(nil), r.m.Token...), key: r.reprKey(), project: project,
		sub: sub, szx: defaultSZX, stop: make(chan struct{}), skip: cur.TxID, skipTime: cur.Time, seq: 1,
		checked: time.Now(), last: body}
	if r.block2 != nil {
		o.szx = r.block2.szx
	}
	resp = content(codes.Content, cfJSON, body)
	s.mu.Lock()
	src := s.sources[r.from]
	if src == nil || s.closed || len(src.observers) >= observersPerSource && src.observers[string(o.token)] == nil || s.nobs >= s.cfg.MaxObservers {
		s.mu.Unlock()
		sub.Close()
		return resp, nil
	}
	var replaced func()
	if src.observers[string(o.token)] != nil { // a re-registration
		replaced = s.removeObserverLocked(src, string(o.token))
	}
	if src.observers == nil {
		src.observers = map[string]*observer{}
	}
	src.observers[string(o.token)] = o
	s.nobs++
	s.wg.Add(1)
	s.mu.Unlock()
	if replaced != nil {
		replaced()
	}
	resp.opts = resp.opts.Add(uintOpt(message.Observe, o.seq))
	return resp, func() { go s.pump(o) }
}

// unobserve ends the observation of from with token, if any: a GET with
// Observe 1 (deregistration) or without Observe (RFC 7641 §3.6).
func (s *Server) unobserve(from Source, token []byte) {
	s.mu.Lock()
	var end func()
	if src := s.sources[from]; src != nil && src.observers[string(token)] != nil {
		end = s.removeObserverLocked(src, string(token))
	}
	s.mu.Unlock()
	if end != nil {
		end()
	}
}

// removeObserverLocked forgets an observer and stops its notifications; it
// returns what must run unlocked (closing its subscription).
func (s *Server) removeObserverLocked(src *source, token string) func() {
	o := src.observers[token]
	delete(src.observers, token)
	s.nobs--
	close(o.stop)
	return o.sub.Close
}

// resetObserverLocked ends the observation a recent notification with mid
// to from belongs to, if any (the client answered it with an RST).
func (s *Server) resetObserverLocked(from Source, mid uint16) func() {
	src := s.sources[from]
	if src == nil {
		return nil
	}
	for tok, o := range src.observers {
		for i := range min(o.nrecent, recentMIDs) {
			if o.recent[i] == mid {
				return s.removeObserverLocked(src, tok)
			}
		}
	}
	return nil
}

// dropObserver ends o's observation if it is still registered.
func (s *Server) dropObserver(o *observer) {
	s.mu.Lock()
	var end func()
	if src := s.sources[o.from]; src != nil && src.observers[string(o.token)] == o {
		end = s.removeObserverLocked(src, string(o.token))
	}
	s.mu.Unlock()
	if end != nil {
		end()
	}
}

// pump turns o's updates into notifications until the observation ends.
func (s *Server) pump(o *observer) {
	defer s.wg.Done()
	skipping := o.skip != (ledger.Hash{})
	for {
		select {
		case u, ok := <-o.sub.Updates():
			if !ok {
				s.endObservation(o)
				return
			}
			if skipping {
				if u.TxID == o.skip {
					skipping = false
					continue
				}
				skipping = u.Time <= o.skipTime
			}
			if body, ok := o.project(u); ok {
				s.notify(o, body, false)
			}
		case <-o.stop:
			return
		}
	}
}

// notify sends one notification: non-confirmable, but every conEvery-th
// (or a check) confirmable unless one is still unacked. A confirmable one
// that is never acknowledged, or an RST, ends the observation.
func (s *Server) notify(o *observer, body []byte, check bool) {
	s.mu.Lock()
	src := s.sources[o.from]
	if src == nil || src.observers[string(o.token)] != o {
		s.mu.Unlock()
		return
	}
	o.seq = (o.seq + 1) & 0xffffff
	o.sent++
	o.last = body
	con := !o.conPending && (check || o.sent%conEvery == 0)
	if con {
		o.conPending = true
	}
	mid := s.nextMID()
	o.recent[o.nrecent%recentMIDs] = mid
	o.nrecent++
	seq, reply := o.seq, src.reply
	s.mu.Unlock()

	resp := content(codes.Content, cfJSON, body)
	opts := message.Options{uintOpt(message.Observe, seq), uintOpt(message.ContentFormat, uint32(cfJSON))}
	payload := body
	if want := (block{szx: o.szx}); len(body) > want.size() {
		payload, opts, _ = s.blockOf(o.from, o.key, true, resp, want, opts)
	}
	msg := &message.Message{Token: o.token, Code: codes.Content, Options: opts, Payload: payload, MessageID: int32(mid), Type: message.NonConfirmable}
	if con {
		msg.Type = message.Confirmable
	}
	b, err := encode(msg)
	if err != nil {
		s.log.Warn("coap: cannot encode a notification", zap.Error(err))
		return
	}
	if !con {
		s.send(reply, b)
		return
	}
	s.sendConfirmable(o.from, reply, mid, b, func(acked bool) {
		if !acked {
			s.dropObserver(o)
			return
		}
		s.mu.Lock()
		o.conPending, o.checked = false, time.Now()
		s.mu.Unlock()
	})
}

// endObservation tells the client its observation ended on this side (the
// subscription closed): a 5.03 without Observe (RFC 7641 §3.2).
func (s *Server) endObservation(o *observer) {
	s.mu.Lock()
	src := s.sources[o.from]
	if src == nil || src.observers[string(o.token)] != o {
		s.mu.Unlock()
		return
	}
	reply := src.reply
	end := s.removeObserverLocked(src, string(o.token))
	s.mu.Unlock()
	end()
	b, err := encode(&message.Message{Token: o.token, Code: codes.ServiceUnavailable, Type: message.NonConfirmable,
		MessageID: int32(s.nextMID()), Payload: []byte("the observation ended; register again")})
	if err == nil {
		s.send(reply, b)
	}
}

// checksDueLocked returns the observers of src whose last acknowledged
// confirmable notification is older than every, with the payload to check
// them with.
func checksDueLocked(src *source, now time.Time, every time.Duration) (due []*observer, bodies [][]byte) {
	for _, o := range src.observers {
		if !o.conPending && now.Sub(o.checked) > every {
			o.checked = now // one check at a time; its ACK renews it
			due, bodies = append(due, o), append(bodies, o.last)
		}
	}
	return due, bodies
}
