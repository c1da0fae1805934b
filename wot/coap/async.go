package coap

import (
	"context"

	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// lanePerSource bounds the writes of one source waiting their turn.
const lanePerSource = 32

// handler is the part of a request that waits on Devices.
type handler func(ctx context.Context) (resp response, after func())

// async runs h on a goroutine of its own, within MaxInflight and
// RequestTimeout, so that the workers go on with other datagrams; a
// confirmable request still unanswered after SeparateAfter is acknowledged
// at once and answered separately. after, if set, runs once the response is
// sent.
func (s *Server) async(r *request, h handler) {
	job, ok := s.admitJob(r, h)
	if !ok {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		job.cancel()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		job.run()
	}()
}

// inOrder runs h as async does, but after the earlier writes of the same
// source: a device's readings are stored in the order it sent them, even
// when it does not wait for each response (non-confirmable posts).
func (s *Server) inOrder(r *request, h handler) {
	job, ok := s.admitJob(r, h)
	if !ok {
		return
	}
	s.mu.Lock()
	src := s.sources[r.from]
	switch {
	case s.closed:
		s.mu.Unlock()
		job.cancel()
		return
	case src == nil: // forgotten meanwhile: nothing to order it with
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			job.run()
		}()
		return
	case len(src.lane) >= lanePerSource:
		s.mu.Unlock()
		job.cancel()
		s.stats.Busy.Add(1)
		r.respond(withMaxAge(diagnostic(codes.ServiceUnavailable, "too many writes of this device in progress; try again"), 1))
		return
	}
	src.lane = append(src.lane, job)
	start := !src.laneRunning
	if start {
		src.laneRunning = true
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if start {
		go s.drainLane(src)
	}
}

// drainLane runs a source's writes one after the other until none is left.
func (s *Server) drainLane(src *source) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		if len(src.lane) == 0 {
			src.laneRunning = false
			s.mu.Unlock()
			return
		}
		job := src.lane[0]
		src.lane[0] = nil
		src.lane = src.lane[1:]
		s.mu.Unlock()
		job.run()
	}
}

// job is an admitted handler: it holds a MaxInflight slot and the timer of
// its empty ACK until it runs or is cancelled.
type job struct {
	s       *Server
	r       *request
	h       handler
	stopAck func()
}

// admitJob takes a MaxInflight slot for h, or answers 5.03.
func (s *Server) admitJob(r *request, h handler) (*job, bool) {
	select {
	case s.inflight <- struct{}{}:
	default:
		s.stats.Busy.Add(1)
		r.respond(withMaxAge(diagnostic(codes.ServiceUnavailable, "busy; try again"), 1))
		return nil, false
	}
	return &job{s: s, r: r, h: h, stopAck: r.ackLater()}, true
}

func (j *job) run() {
	s := j.s
	defer func() { <-s.inflight }()
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RequestTimeout)
	resp, after := j.h(ctx)
	cancel()
	j.stopAck()
	j.r.respond(resp)
	if after != nil {
		after()
	}
}

// cancel gives the slot back without running the handler.
func (j *job) cancel() {
	j.stopAck()
	<-j.s.inflight
}
