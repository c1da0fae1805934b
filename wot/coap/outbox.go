package coap

import (
	"math/rand/v2"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
)

// outKey names a confirmable message this server sent: where to and its
// message ID, as its ACK or RST comes back.
type outKey struct {
	to  Source
	mid uint16
}

// outgoing is a confirmable message awaiting its ACK, retransmitted with
// exponential back-off (RFC 7252 §4.2) up to MaxRetransmit times.
type outgoing struct {
	dgram   []byte
	reply   func([]byte) error
	tries   int
	timeout time.Duration
	timer   *time.Timer
	done    func(acked bool) // nil, or told once how it ended
}

// sendConfirmable sends a confirmable message and retransmits it until it
// is acknowledged or MaxRetransmit is exhausted; done (if set) learns
// which. When MaxOutbox messages already wait, it is sent once, untracked,
// and done learns nothing.
func (s *Server) sendConfirmable(to Source, reply func([]byte) error, mid uint16, dgram []byte, done func(bool)) {
	// ACK_TIMEOUT × a random factor in [1, 1.5), as RFC 7252 §4.8 says.
	timeout := s.cfg.AckTimeout + time.Duration(rand.Int64N(int64(s.cfg.AckTimeout/2)+1))
	o := &outgoing{dgram: dgram, reply: reply, timeout: timeout, done: done}
	key := outKey{to, mid}
	s.mu.Lock()
	tracked := !s.closed && len(s.outbox) < maxOutbox
	if tracked {
		s.outbox[key] = o
		o.timer = time.AfterFunc(timeout, func() { s.retransmit(key, o) })
	}
	s.mu.Unlock()
	s.send(reply, dgram)
}

func (s *Server) retransmit(key outKey, o *outgoing) {
	s.mu.Lock()
	if s.outbox[key] != o {
		s.mu.Unlock()
		return
	}
	if o.tries >= s.cfg.MaxRetransmit {
		delete(s.outbox, key)
		s.mu.Unlock()
		if o.done != nil {
			o.done(false)
		}
		return
	}
	o.tries++
	o.timeout *= 2
	o.timer = time.AfterFunc(o.timeout, func() { s.retransmit(key, o) })
	s.mu.Unlock()
	s.send(o.reply, o.dgram)
}

// acknowledged takes an ACK or RST from a source: it ends the retransmission
// of the confirmable message it answers; an RST also ends the observation
// that a recent notification with its message ID belongs to (RFC 7641 §3.6).
func (s *Server) acknowledged(from Source, mid uint16, typ message.Type) {
	key := outKey{from, mid}
	s.mu.Lock()
	o := s.outbox[key]
	if o != nil {
		delete(s.outbox, key)
		o.timer.Stop()
	}
	var end func()
	if o == nil && typ == message.Reset {
		end = s.resetObserverLocked(from, mid)
	}
	s.mu.Unlock()
	if o != nil && o.done != nil {
		o.done(typ == message.Acknowledgement)
	}
	if end != nil {
		end()
	}
}
