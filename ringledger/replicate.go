package ringledger

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/store"
	"go.uber.org/zap"
)

// replicator sends records and pointers to replicas: one queue per peer,
// whose sender packs what is queued into messages that fit, so that many
// small puts share round trips.
type replicator struct {
	d      *Ledger
	mu     sync.Mutex
	queues map[chord.ID]*replQueue
	wg     sync.WaitGroup
}

type replQueue struct {
	peer chord.Peer
	jobs []*replJob
	wake chan struct{}
}

type replJob struct {
	records  [][]byte
	pointers []store.Pointer
	history  []wireHistory
	size     int
	done     chan error // buffered: the sender never waits for the putter
}

func (j *replJob) entries() int { return len(j.records) + len(j.pointers) + len(j.history) }

// replIdle is how long an idle queue's sender waits before it exits.
const replIdle = 10 * time.Second

// send queues records, pointers and history entries for each target and
// returns a function that waits until every target has stored them (or one
// failed).
func (r *replicator) send(targets []chord.Peer, records [][]byte, pointers []store.Pointer, history []wireHistory) func(context.Context) error {
	var jobs []*replJob
	for _, t := range targets {
		for _, j := range splitJob(records, pointers, history) {
			jobs = append(jobs, j)
			r.enqueue(t, j)
		}
	}
	return func(ctx context.Context) error {
		for _, j := range jobs {
			select {
			case err := <-j.done:
				if err != nil {
					return err
				}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
}

// splitJob cuts records, pointers and history entries into jobs that each
// fit one message, of at most listPage entries.
func splitJob(records [][]byte, pointers []store.Pointer, history []wireHistory) []*replJob {
	var out []*replJob
	cur := &replJob{}
	n := func() int { return len(cur.records) + len(cur.pointers) + len(cur.history) }
	flush := func() {
		if n() > 0 {
			cur.done = make(chan error, 1)
			out = append(out, cur)
		}
		cur = &replJob{}
	}
	fits := func(size int) bool { return n() == 0 || (cur.size+size <= maxPayload && n() < listPage) }
	for _, rec := range records {
		if !fits(len(rec)) {
			flush()
		}
		cur.records = append(cur.records, rec)
		cur.size += len(rec)
	}
	for _, p := range pointers {
		if !fits(110) {
			flush()
		}
		cur.pointers = append(cur.pointers, p)
		cur.size += 110
	}
	for _, h := range history {
		sz := len(h.Record) + 70
		if !fits(sz) {
			flush()
		}
		cur.history = append(cur.history, h)
		cur.size += sz
	}
	flush()
	return out
}

func (r *replicator) enqueue(p chord.Peer, j *replJob) {
	r.d.stats.replPending.Add(int64(len(j.records)))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.queues == nil {
		r.queues = map[chord.ID]*replQueue{}
	}
	q := r.queues[p.ID]
	if q == nil {
		q = &replQueue{peer: p, wake: make(chan struct{}, 1)}
		if !r.d.spawn(&r.wg, func() { r.run(q) }) {
			r.d.stats.replPending.Add(-int64(len(j.records)))
			j.done <- context.Canceled // the node is closing
			return
		}
		r.queues[p.ID] = q
	}
	q.jobs = append(q.jobs, j)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take removes what fits one message from q, or reports the queue done
// (removed) when it is empty and idle.
func (r *replicator) take(q *replQueue, idle bool) (batch []*replJob, quit bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(q.jobs) == 0 {
		if idle {
			delete(r.queues, q.peer.ID)
			return nil, true
		}
		return nil, false
	}
	size := 0
	n := 0
	entries := 0
	for n < len(q.jobs) && (n == 0 || (size+q.jobs[n].size <= maxPayload && entries+q.jobs[n].entries() <= listPage)) {
		entries += q.jobs[n].entries()
		size += q.jobs[n].size
		n++
	}
	batch = append(batch, q.jobs[:n]...)
	q.jobs = q.jobs[n:]
	return batch, false
}

func (r *replicator) run(q *replQueue) {
	sem := make(chan struct{}, replInflight)
	idle := time.NewTimer(replIdle)
	defer idle.Stop()
	for {
		batch, quit := r.take(q, false)
		if quit {
			return
		}
		if batch == nil {
			select {
			case <-q.wake:
				continue
			case <-idle.C:
				if _, quit := r.take(q, true); quit {
					return
				}
				idle.Reset(replIdle)
				continue
			case <-r.d.ctx.Done():
				r.failAll(q, r.d.ctx.Err())
				return
			}
		}
		// Up to replInflight messages per peer are out at once: the peer
		// checks signatures of one while it commits another.
		select {
		case sem <- struct{}{}:
		case <-r.d.ctx.Done():
			r.finish(batch, r.d.ctx.Err())
			r.failAll(q, r.d.ctx.Err())
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer func() { <-sem }()
			r.finish(batch, r.deliverBatch(q.peer, batch))
		}()
		idle.Reset(replIdle)
	}
}

// replInflight bounds the replicate messages out to one peer at a time.
const replInflight = 4

// deliverBatch sends the jobs of batch as one replicate message.
func (r *replicator) deliverBatch(p chord.Peer, batch []*replJob) error {
	var body replicateBody
	records := 0
	for _, j := range batch {
		for _, rec := range j.records {
			body.Records = append(body.Records, json.RawMessage(rec))
		}
		body.Pointers = append(body.Pointers, wirePointers(j.pointers)...)
		body.History = append(body.History, j.history...)
		records += len(j.records)
	}
	err := r.deliver(p, body)
	if err == nil {
		r.d.stats.replicasOut.Add(uint64(records))
	} else {
		r.d.log.Info("replication to a successor failed; anti-entropy will repair it", zap.String("peer", p.Addr), zap.Error(err))
	}
	return err
}

// finish reports a batch's outcome to its putters.
func (r *replicator) finish(batch []*replJob, err error) {
	for _, j := range batch {
		r.d.stats.replPending.Add(-int64(len(j.records)))
		j.done <- err
	}
}

// deliver sends one replicate message, once: what does not arrive is
// restored by the repair rounds, and a put waiting for its replicas fails and
// is resent by its entry node.
func (r *replicator) deliver(p chord.Peer, body replicateBody) error {
	ctx, cancel := context.WithTimeout(r.d.ctx, replTimeout)
	defer cancel()
	return r.d.call(ctx, p, opReplicate, body, nil)
}

// replTimeout bounds one replicate message.
const replTimeout = 10 * time.Second

func (r *replicator) failAll(q *replQueue, err error) {
	r.mu.Lock()
	jobs := q.jobs
	q.jobs = nil
	delete(r.queues, q.peer.ID)
	r.mu.Unlock()
	for _, j := range jobs {
		r.d.stats.replPending.Add(-int64(len(j.records)))
		j.done <- err
	}
}

// wait waits for every sender to stop (after the node's context ends).
func (r *replicator) wait() { r.wg.Wait() }
