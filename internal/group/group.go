// Package group is group commit for work that must run one request at a time.
package group

import "sync"

// Serial runs work on batches of requests, one batch at a time. A
// request that arrives while a batch runs waits and joins the next batch,
// which one of its waiters leads. It is group commit for work whose checks
// must run one after the other (each reads what the previous ones accepted)
// but whose durable writes can be shared: one write per batch.
type Serial[T any] struct {
	mu      sync.Mutex
	busy    bool
	waiting []*groupRequest[T]
}

type groupRequest[T any] struct {
	v    T
	wake chan struct{} // one send: the batch with v ran, or (lead) run the next one
	lead bool
}

// Do runs v in a batch through run, and returns once run has returned for
// that batch. run is called for one batch at a time.
func (g *Serial[T]) Do(v T, run func([]T)) {
	r := &groupRequest[T]{v: v, wake: make(chan struct{}, 1)}
	g.mu.Lock()
	g.waiting = append(g.waiting, r)
	if g.busy {
		g.mu.Unlock()
		<-r.wake
		if !r.lead {
			return
		}
		g.mu.Lock()
	}
	g.busy = true
	batch := g.waiting
	g.waiting = nil
	g.mu.Unlock()

	vs := make([]T, len(batch))
	for i, b := range batch {
		vs[i] = b.v
	}
	run(vs)

	g.mu.Lock()
	if len(g.waiting) > 0 {
		next := g.waiting[0] // it leads the batch queued meanwhile
		next.lead = true
		next.wake <- struct{}{}
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	for _, b := range batch {
		if b != r {
			b.wake <- struct{}{}
		}
	}
}
