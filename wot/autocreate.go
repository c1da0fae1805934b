package wot

import (
	"context"
	"encoding/json"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// Readings that enter through a front other than this layer's (POST
// /api/v1/records, flownode put) create their Thing too, as a device's first
// reading does. The OnPut hook must not wait on the ring, so the Things it
// sees without a known TD are queued here and a worker makes sure each has
// one (ensureThing: a cache hit costs nothing; a miss one ring read, and a
// create for a new Thing). The queue is bounded: when it is full the Thing is
// skipped this time and taken on its next reading.

// autoCreateQueue bounds the Things waiting for a check.
const autoCreateQueue = 256

type autoCreator struct {
	t       *Things
	mu      sync.Mutex
	pending map[string]json.RawMessage // Thing → a reading of it, queued
	wake    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
}

func (a *autoCreator) start(t *Things) {
	a.t = t
	a.pending = map[string]json.RawMessage{}
	a.wake = make(chan struct{}, 1)
	a.done = make(chan struct{})
	a.ctx, a.cancel = context.WithCancel(context.Background())
	go a.run()
}

func (a *autoCreator) stop() {
	if a.cancel == nil {
		return
	}
	a.cancel()
	<-a.done
}

// seen queues thing for a check unless its TD is known; it never blocks.
func (a *autoCreator) seen(thing string, value json.RawMessage) {
	if strings.HasPrefix(thing, reservedPrefix) {
		return
	}
	if v, ok := a.t.reg.cache.get(thing, tdKnownFor); ok && v.present() {
		return
	}
	a.mu.Lock()
	if _, queued := a.pending[thing]; !queued && len(a.pending) < autoCreateQueue {
		a.pending[thing] = value
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *autoCreator) run() {
	defer close(a.done)
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-a.wake:
		}
		a.mu.Lock()
		batch := a.pending
		a.pending = map[string]json.RawMessage{}
		a.mu.Unlock()
		for thing, value := range batch {
			if a.ctx.Err() != nil {
				return
			}
			if err := a.t.ensureThing(a.ctx, thing, value); err != nil && a.ctx.Err() == nil {
				a.t.log.Info("could not create the Thing of a reading", zap.String("thing", thing), zap.Error(err))
			}
		}
	}
}
