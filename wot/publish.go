package wot

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/node"
)

// The entry node's side of observation across the ring (fanout.go): a
// queue and a sender per Thing, publishing to its rendezvous in order.

// publisher is the entry node's publication queues, one per Thing.
type publisher struct {
	l       *live
	mu      sync.Mutex
	queues  map[string]*pubQueue
	streams map[string]*stream // at most maxStreams
	bytes   int
	closed  bool // no sender starts once the layer closes
}

// stream numbers a Thing's updates published by this node: receivers see a
// gap in the sequence (an update dropped here, or a publication lost) and
// catch up from the ring. A forgotten stream starts again with a new epoch.
type stream struct {
	epoch uint64
	last  uint64
}

// maxStreams bounds the Things whose sequence a node keeps.
const maxStreams = 4096

type pubQueue struct {
	items []pubItem
}

type pubItem struct {
	epoch, seq uint64
	record     json.RawMessage
}

// enqueue queues a Thing's updates for its rendezvous, numbered in order,
// and starts the Thing's sender if it is idle. It never blocks.
func (p *publisher) enqueue(thing string, ups []Update) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.queues == nil {
		p.queues = map[string]*pubQueue{}
	}
	q := p.queues[thing]
	if q == nil {
		if len(p.queues) >= queueThings || p.closed {
			p.l.stats.notPublished.Add(uint64(len(ups)))
			p.stream(thing).last += uint64(len(ups))
			return
		}
		q = &pubQueue{}
		p.queues[thing] = q
		p.l.wg.Add(1)
		go p.run(thing, q)
	}
	st := p.stream(thing)
	for _, u := range ups {
		st.last++ // numbered even when dropped: receivers see the gap
		if p.bytes+len(u.Record) > queueBytes {
			p.l.stats.notPublished.Add(1)
			continue
		}
		p.bytes += len(u.Record)
		q.items = append(q.items, pubItem{epoch: st.epoch, seq: st.last, record: u.Record})
	}
}

// stream returns the Thing's publication stream, made with a random epoch
// when new (forgetting another when maxStreams are kept). p.mu is held.
func (p *publisher) stream(thing string) *stream {
	if st := p.streams[thing]; st != nil {
		return st
	}
	if p.streams == nil {
		p.streams = map[string]*stream{}
	}
	if len(p.streams) >= maxStreams {
		for k := range p.streams {
			delete(p.streams, k)
			break
		}
	}
	st := &stream{epoch: rand.Uint64()}
	p.streams[thing] = st
	return st
}

// close stops new senders; the running ones end with the layer's context.
func (p *publisher) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
}

// run sends a Thing's queue, a batch at a time, until it is empty.
func (p *publisher) run(thing string, q *pubQueue) {
	defer p.l.wg.Done()
	for {
		p.mu.Lock()
		n, size := 0, 0
		for n < len(q.items) && n < publishBatch && (n == 0 || size+len(q.items[n].record) <= publishBytes && q.items[n].epoch == q.items[0].epoch) {
			size += len(q.items[n].record)
			n++
		}
		if n == 0 {
			delete(p.queues, thing)
			p.mu.Unlock()
			return
		}
		batch := q.items[:n:n]
		q.items = q.items[n:]
		p.mu.Unlock()

		p.publish(thing, batch)

		p.mu.Lock()
		p.bytes -= size
		p.mu.Unlock()
	}
}

// publish sends one batch to the Thing's rendezvous, retrying a few times.
func (p *publisher) publish(thing string, batch []pubItem) {
	l := p.l
	body := publishBody{Thing: thing, Entry: l.t.node.ID(), Epoch: batch[0].epoch, Seq: batch[0].seq, Records: make([]json.RawMessage, len(batch))}
	for i, it := range batch {
		body.Records[i] = it.record
	}
	var err error
	for attempt := 0; attempt < publishAttempts; attempt++ {
		if attempt > 0 && !sleepCtx(l.ctx, time.Duration(attempt)*200*time.Millisecond) {
			break
		}
		ctx, cancel := context.WithTimeout(l.ctx, publishTimeout)
		var rdv node.Peer
		rdv, err = l.t.node.Owner(ctx, rendezvousKey(thing))
		switch {
		case err == nil && rdv.ID == l.t.node.ID():
			_, err = l.publishAt(ctx, rdv, body)
		case err == nil:
			err = l.t.node.CallOp(ctx, rdv, opPublish, body, nil)
		}
		cancel()
		if err == nil {
			return
		}
	}
	l.stats.notPublished.Add(uint64(len(batch)))
	if l.ctx.Err() == nil {
		l.t.log.Info("updates not published to remote observers", zap.String("thing", thing), zap.Int("records", len(batch)), zap.Error(err))
	}
}

// sleepCtx waits d unless ctx ends first (false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
