package coap

import (
	"time"
)

// source is what the front keeps for one source address (IP and port: a
// device's socket). Every map in it is bounded (see Config), and the
// sources themselves by MaxSources. Under Server.mu.
type source struct {
	addr  Source
	reply func([]byte) error // to this source, on the socket it wrote to
	seen  time.Time

	exchanges map[uint16]*exchange // by message ID, for retransmissions
	order     []uint16             // message IDs, oldest first, at most ExchangesPerSource
	uploads   map[string]*upload   // Block1 uploads, by uploadKey
	cache     map[string]*cachedRepr
	observers map[string]*observer // by token
	present   map[string]*presence // by Thing
	// lane is the source's writes waiting their turn (async.go), at most
	// lanePerSource; laneRunning while a goroutine drains it.
	lane        []*job
	laneRunning bool
}

// presence is a device's Devices.Present while it posts.
type presence struct {
	release func()
	last    time.Time
}

// sourceLocked returns the state of addr, making it if needed; when
// MaxSources are kept, the longest silent source without observers or
// writes in progress is forgotten first (its release functions are returned
// to call unlocked). It returns nil when no kept source can be.
func (s *Server) sourceLocked(addr Source, reply func([]byte) error, now time.Time) (*source, []func()) {
	if src := s.sources[addr]; src != nil {
		src.reply, src.seen = reply, now
		return src, nil
	}
	var after []func()
	if len(s.sources) >= s.cfg.MaxSources {
		var victim *source
		for _, o := range s.sources {
			if len(o.observers) == 0 && !o.laneRunning && (victim == nil || o.seen.Before(victim.seen)) {
				victim = o
			}
		}
		if victim == nil {
			return nil, nil
		}
		after = s.forgetLocked(victim.addr, victim)
	}
	src := &source{addr: addr, reply: reply, seen: now, exchanges: map[uint16]*exchange{}}
	s.sources[addr] = src
	return src, after
}

// forgetLocked drops a source and everything kept for it; it returns what
// must run unlocked (presence releases, subscription closes).
func (s *Server) forgetLocked(addr Source, src *source) []func() {
	var after []func()
	for _, p := range src.present {
		after = append(after, p.release)
	}
	for tok := range src.observers {
		after = append(after, s.removeObserverLocked(src, tok))
	}
	s.uploads -= len(src.uploads)
	for _, c := range src.cache {
		s.cached -= len(c.resp.body)
	}
	delete(s.sources, addr)
	return after
}

// sweep drops what outlived its time: responses kept for retransmissions,
// stalled uploads, cached responses, presence of silent devices, and
// sources with nothing left; and checks the observers of quiet Things.
func (s *Server) sweep(now time.Time) {
	var after []func()
	var checks []*observer
	var checkBodies [][]byte
	s.mu.Lock()
	for addr, src := range s.sources {
		s.expireExchangesLocked(src, now)
		due, bodies := checksDueLocked(src, now, s.cfg.ObserveCheck)
		checks, checkBodies = append(checks, due...), append(checkBodies, bodies...)
		for k, u := range src.uploads {
			if now.Sub(u.last) > s.cfg.BlockTimeout {
				delete(src.uploads, k)
				s.uploads--
			}
		}
		for k, c := range src.cache {
			if now.Sub(c.used) > s.cfg.BlockTimeout {
				delete(src.cache, k)
				s.cached -= len(c.resp.body)
			}
		}
		for thing, p := range src.present {
			if now.Sub(p.last) > s.cfg.PresenceIdle {
				delete(src.present, thing)
				after = append(after, p.release)
			}
		}
		if len(src.exchanges)+len(src.uploads)+len(src.cache)+len(src.observers)+len(src.present) == 0 && !src.laneRunning &&
			now.Sub(src.seen) > s.cfg.BlockTimeout {
			delete(s.sources, addr)
		}
	}
	s.mu.Unlock()
	for _, f := range after {
		f()
	}
	for i, o := range checks {
		s.notify(o, checkBodies[i], true)
	}
}

// markPresent marks a device of thing at src as present (Devices.Present)
// until PresenceIdle passes without a reading from it.
func (s *Server) markPresent(addr Source, thing string) {
	now := time.Now()
	s.mu.Lock()
	src := s.sources[addr]
	if src == nil || s.closed {
		s.mu.Unlock()
		return
	}
	if p := src.present[thing]; p != nil {
		p.last = now
		s.mu.Unlock()
		return
	}
	if len(src.present) >= presencePerSource {
		s.mu.Unlock()
		return
	}
	if src.present == nil {
		src.present = map[string]*presence{}
	}
	p := &presence{last: now, release: func() {}}
	src.present[thing] = p
	s.mu.Unlock()
	// Present may do work (tell the Thing's viewers); not under the lock.
	release := s.dev.Present(thing)
	s.mu.Lock()
	if s.sources[addr] == src && src.present[thing] == p {
		p.release = release
		release = nil
	}
	s.mu.Unlock()
	if release != nil { // forgotten meanwhile
		release()
	}
}
