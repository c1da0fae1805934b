package node

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/store"
)

// PutOptions say when Put returns.
type PutOptions struct {
	// WaitReplicas: return once the records are durable on the replicas too,
	// not only on their owner.
	WaitReplicas bool
}

// putRetryFor bounds how long Put keeps retrying readings whose owner refused
// them (a ring change in progress) or did not answer.
const putRetryFor = 20 * time.Second

// Put takes readings from a client: each goes to the owner of its key, which
// signs it and stores it durably. Receipts come back in the readings' order.
// Invalid input returns a *ledger.InputError and stores nothing of the batch's
// invalid reading (readings of other owners may have been stored: a batch is
// all-or-nothing per owner).
func (n *Node) Put(ctx context.Context, readings []ledger.Reading, opt PutOptions) ([]Receipt, error) {
	if n.ring == nil {
		return n.putLocal(ctx, readings)
	}
	keys := make([]ledger.Key, len(readings))
	if err := ledger.StampReadings(readings, time.Now(), rand.Reader); err != nil {
		return nil, err
	}
	for i := range readings {
		if err := ledger.ValidThingID(readings[i].Thing); err != nil {
			return nil, &ledger.InputError{Index: i, Err: err}
		}
		k, err := ledger.ReadingKey(readings[i])
		if err != nil {
			return nil, &ledger.InputError{Index: i, Err: err}
		}
		keys[i] = k
	}
	ctx, cancel := context.WithTimeout(ctx, putRetryFor)
	defer cancel()
	out := make([]Receipt, len(readings))
	pending := make([]int, len(readings))
	for i := range pending {
		pending[i] = i
	}
	var lastErr error
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("%d readings not stored: %w (last: %v)", len(pending), ctx.Err(), lastErr)
			case <-time.After(min(time.Duration(attempt)*50*time.Millisecond, time.Second)):
			}
		}
		groups := map[chord.ID][]int{}
		owners := map[chord.ID]chord.Peer{}
		for _, i := range pending {
			o, err := n.dist.owner(ctx, keys[i])
			if err != nil {
				lastErr = err
				groups = nil
				break
			}
			groups[o.ID] = append(groups[o.ID], i)
			owners[o.ID] = o
		}
		if groups == nil {
			continue
		}
		var (
			mu    sync.Mutex
			retry []int
			wg    sync.WaitGroup
			fatal error
		)
		for id, idx := range groups {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := n.dist.putTo(ctx, owners[id], readings, idx, out, opt)
				mu.Lock()
				defer mu.Unlock()
				var ie *ledger.InputError
				switch {
				case err == nil:
				case errors.As(err, &ie):
					fatal = err
				default:
					lastErr = err
					retry = append(retry, idx...)
				}
			}()
		}
		wg.Wait()
		if fatal != nil {
			return nil, fatal
		}
		pending = retry
	}
	return out, nil
}

// maxPutReadings bounds the readings of one put message: its answer holds a
// receipt of ~500 bytes for each, and must fit a message too.
const maxPutReadings = 64

// putTo sends the readings idx to their owner (in messages that fit) and
// fills their receipts.
func (d *dist) putTo(ctx context.Context, owner chord.Peer, readings []ledger.Reading, idx []int, out []Receipt, opt PutOptions) error {
	if owner.ID == d.self() {
		rs := make([]ledger.Reading, len(idx))
		for j, i := range idx {
			rs[j] = readings[i]
		}
		ans, err := d.ownerPutReadings(ctx, rs, opt.WaitReplicas)
		if err != nil {
			return d.inputIndex(err, idx)
		}
		for j, i := range idx {
			out[i] = ans.Receipts[j]
		}
		return nil
	}
	for len(idx) > 0 {
		body := putBody{Wait: opt.WaitReplicas}
		size, j := 0, 0
		for ; j < len(idx); j++ {
			r := readings[idx[j]]
			sz := len(r.Data) + len(r.Thing) + 200
			if (size+sz > maxPayload || j == maxPutReadings) && j > 0 {
				break
			}
			size += sz
			body.Readings = append(body.Readings, wireReading{Thing: r.Thing, Data: r.Data, Key: r.Key, Time: r.Time, Salt: r.Salt})
		}
		var ans putAnswer
		err := d.call(ctx, owner, opPut, body, &ans)
		if err == nil && len(ans.Receipts) != j {
			err = fmt.Errorf("owner %s answered %d receipts for %d readings", owner.Addr, len(ans.Receipts), j)
		}
		if err != nil {
			if refusalCode(err) == codeInput {
				return d.inputIndex(err, idx[:j])
			}
			d.ranges.forget(owner.ID)
			return err
		}
		d.ranges.learn(ans.Range.From, ans.Range.To, owner, time.Now())
		for m, i := range idx[:j] {
			out[i] = ans.Receipts[m]
		}
		d.stats.forwarded.Add(uint64(j))
		idx = idx[j:]
	}
	return nil
}

// inputIndex maps an input refusal of a sub-batch back to the client's index.
func (d *dist) inputIndex(err error, idx []int) error {
	var ie *ledger.InputError
	if errors.As(err, &ie) && ie.Index >= 0 && ie.Index < len(idx) {
		return &ledger.InputError{Index: idx[ie.Index], Err: ie.Err}
	}
	if refusalCode(err) == codeInput {
		// "input: N: why" from a remote owner.
		msg := err.Error()
		if _, rest, ok := strings.Cut(msg, codeInput+": "); ok {
			if num, why, ok := strings.Cut(rest, ": "); ok {
				if i, perr := strconv.Atoi(num); perr == nil && i >= 0 && i < len(idx) {
					return &ledger.InputError{Index: idx[i], Err: errors.New(why)}
				}
			}
		}
		return &ledger.InputError{Index: idx[0], Err: err}
	}
	return err
}

// ownerPut answers opPut.
func (d *dist) ownerPut(ctx context.Context, b putBody) (putAnswer, error) {
	if len(b.Readings) == 0 || len(b.Readings) > maxPutReadings {
		return putAnswer{}, refusal(codeRefused, "%d readings in one put; 1 to %d", len(b.Readings), maxPutReadings)
	}
	rs := make([]ledger.Reading, len(b.Readings))
	for i, w := range b.Readings {
		if w.Time == 0 || len(w.Salt) == 0 {
			return putAnswer{}, refusal(codeRefused, "reading %d is not stamped (time, salt)", i)
		}
		rs[i] = ledger.Reading{Thing: w.Thing, Data: w.Data, Key: w.Key, Time: w.Time, Salt: w.Salt}
	}
	ans, err := d.ownerPutReadings(ctx, rs, b.Wait)
	var ie *ledger.InputError
	if errors.As(err, &ie) {
		return ans, refusal(codeInput, "%d: %v", ie.Index, ie.Err)
	}
	return ans, err
}

// takingRange returns the range this node takes new entries for, or the
// refusal to answer when it takes none.
func (d *dist) takingRange() (st chord.State, from, to ledger.Key, err error) {
	if d.leaving.Load() {
		return st, from, to, refusal(codeLeaving, "this node is leaving the ring")
	}
	st = d.state()
	from, to, ok := ownRange(st)
	if !ok {
		return st, from, to, refusal(codeMisrouted, "this node does not know its range yet")
	}
	return st, from, to, nil
}

// ownerPutReadings signs readings this node owns, stores them, writes their
// pointers and replicates them.
func (d *dist) ownerPutReadings(ctx context.Context, rs []ledger.Reading, waitReplicas bool) (putAnswer, error) {
	st, from, to, err := d.takingRange()
	if err != nil {
		return putAnswer{}, err
	}
	for i := range rs {
		k, err := ledger.ReadingKey(rs[i])
		if err != nil {
			return putAnswer{}, &ledger.InputError{Index: i, Err: err}
		}
		if !inRange(from, k, to) {
			return putAnswer{}, refusal(codeMisrouted, "key %s is outside this node's range (%s, %s]", k, from, to)
		}
	}
	// wait=replicas promises k copies. A node cut off from the others
	// believes them dead and owns the whole ring: acknowledging with the
	// replicas it can still see would acknowledge data only it holds (the
	// partition drill lost such readings). Refuse before signing anything;
	// the entry node retries while the ring heals. A ring that never had k
	// nodes (a lone dev node) gives what it has.
	targets := d.replicaTargets(st)
	if waitReplicas && len(targets) < d.k-1 && d.hadReplicas.Load() {
		return putAnswer{}, refusal(codeReplicas, "only %d of the %d replicas are in this node's successor list: the readings would not survive its loss", len(targets), d.k-1)
	}
	lrs, err := d.n.ledger.Append(ctx, rs)
	if err != nil {
		return putAnswer{}, err
	}
	d.stats.owned.Add(uint64(len(lrs)))
	records := make([][]byte, len(lrs))
	pointers := make([]store.Pointer, len(lrs))
	for i, r := range lrs {
		records[i] = r.Record
		pointers[i] = store.Pointer{TxID: r.TxID, Key: r.Key}
	}
	// Replication and the pointer writes start now; the answer does not
	// wait for the pointers (a read by txID that finds none searches the ring).
	done := d.repl.send(targets, records, nil)
	d.ptrs.add(pointers)
	if waitReplicas {
		if err := done(ctx); err != nil {
			return putAnswer{}, fmt.Errorf("records durable on their owner, not on every replica: %w", err)
		}
	}
	self := peer(st.Self)
	reps := peers(targets)
	out := putAnswer{Receipts: make([]Receipt, len(lrs)), Range: wireRange{From: from, To: to}}
	for i, r := range lrs {
		out.Receipts[i] = Receipt{TxID: r.TxID, Key: r.Key, Owner: self, Replicas: reps,
			Block: BlockRef{Branch: r.Block.Branch, No: r.Block.No, Hash: r.Block.Hash}}
	}
	return out, nil
}

// pointerWriter writes txID pointers at their owners in the background,
// many puts' pointers at a time: while one round is out, the next gathers.
type pointerWriter struct {
	d       *dist
	mu      sync.Mutex
	pending []store.Pointer
	wake    chan struct{}
	once    sync.Once
}

func (w *pointerWriter) add(ps []store.Pointer) {
	w.once.Do(func() {
		w.wake = make(chan struct{}, 1)
		w.d.wg.Add(1)
		go w.run()
	})
	w.d.stats.ptrPending.Add(int64(len(ps)))
	w.mu.Lock()
	w.pending = append(w.pending, ps...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *pointerWriter) run() {
	defer w.d.wg.Done()
	for {
		select {
		case <-w.d.ctx.Done():
			return
		case <-w.wake:
		}
		w.mu.Lock()
		batch := w.pending
		w.pending = nil
		w.mu.Unlock()
		if len(batch) > 0 {
			w.d.writePointers(w.d.ctx, batch)
			w.d.stats.ptrPending.Add(-int64(len(batch)))
		}
	}
}

// writePointers stores each txID pointer at its owner, retrying refusals
// with fresh lookups for a while. A pointer that cannot be written is
// counted and logged: reads by txID then fall back to asking every node.
func (d *dist) writePointers(ctx context.Context, ps []store.Pointer) {
	pending := ps
	for attempt := 0; len(pending) > 0 && attempt < 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				attempt = 5
				continue
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			}
		}
		groups := map[chord.ID][]store.Pointer{}
		owners := map[chord.ID]chord.Peer{}
		var retry []store.Pointer
		for _, p := range pending {
			o, err := d.owner(ctx, keyOf(p.TxID))
			if err != nil {
				retry = append(retry, p)
				continue
			}
			groups[o.ID] = append(groups[o.ID], p)
			owners[o.ID] = o
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for id, group := range groups {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := d.pointersTo(ctx, owners[id], group); err != nil {
					d.log.Debug("pointer write failed; will retry", zap.String("owner", owners[id].Addr), zap.Error(err))
					d.ranges.forget(id)
					mu.Lock()
					retry = append(retry, group...)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		pending = retry
	}
	if len(pending) > 0 {
		d.stats.pointerFails.Add(uint64(len(pending)))
		d.log.Warn("txID pointers not written; reads by txID will search the ring", zap.Int("pointers", len(pending)))
	}
}

// pointersTo writes pointers at their owner (this node or a peer).
func (d *dist) pointersTo(ctx context.Context, owner chord.Peer, ps []store.Pointer) error {
	if owner.ID == d.self() {
		// One local write: listPage bounds a message, and a round can hold more.
		_, err := d.storeOwnPointers(ctx, wirePointers(ps))
		return err
	}
	for len(ps) > 0 {
		n := min(len(ps), listPage)
		var ans storedAnswer
		if err := d.call(ctx, owner, opPointers, replicateBody{Pointers: wirePointers(ps[:n])}, &ans); err != nil {
			return err
		}
		d.ranges.learn(ans.Range.From, ans.Range.To, owner, time.Now())
		ps = ps[n:]
	}
	return nil
}

func wirePointers(ps []store.Pointer) []wirePointer {
	out := make([]wirePointer, len(ps))
	for i, p := range ps {
		out[i] = wirePointer{TxID: p.TxID, Key: p.Key}
	}
	return out
}

func storePointers(ws []wirePointer) []store.Pointer {
	out := make([]store.Pointer, len(ws))
	for i, w := range ws {
		out[i] = store.Pointer{TxID: w.TxID, Key: w.Key}
	}
	return out
}

// ownerPointers answers opPointers: pointers this node owns, stored durably
// and replicated like records.
func (d *dist) ownerPointers(ctx context.Context, ws []wirePointer) (storedAnswer, error) {
	if len(ws) == 0 || len(ws) > listPage {
		return storedAnswer{}, refusal(codeRefused, "%d pointers in one message; 1 to %d", len(ws), listPage)
	}
	return d.storeOwnPointers(ctx, ws)
}

// storeOwnPointers stores pointers in this node's range durably and replicates them.
func (d *dist) storeOwnPointers(ctx context.Context, ws []wirePointer) (storedAnswer, error) {
	st, from, to, err := d.takingRange()
	if err != nil {
		return storedAnswer{}, err
	}
	for _, w := range ws {
		if !inRange(from, keyOf(w.TxID), to) {
			return storedAnswer{}, refusal(codeMisrouted, "pointer %s is outside this node's range (%s, %s]", w.TxID, from, to)
		}
	}
	ps := storePointers(ws)
	if err := d.n.store.Write(ctx, store.Write{Pointers: ps}); err != nil {
		return storedAnswer{}, err
	}
	d.repl.send(d.replicaTargets(st), nil, ps)
	return storedAnswer{Stored: len(ps), Range: wireRange{From: from, To: to}}, nil
}

// acceptReplicas answers opReplicate: records and pointers from a peer that
// owns them (or from a node handing on its range). Each record must be
// correctly signed into a valid block (fetched from the sender when this node
// lacks it), and no entry may lie in (sender, self]: the sender cannot own a
// position there, because this node or a node between them does. pulled
// marks entries this node asked for itself (a handoff pull), for which the
// range rule does not apply: the caller checked them against the range it
// asked for.
func (d *dist) acceptReplicas(ctx context.Context, from chord.Peer, b replicateBody, pulled bool) (int, error) {
	self := ledger.Key(d.self())
	sender := ledger.Key(from.ID)
	recs := make([]*ledger.Record, len(b.Records))
	for i, raw := range b.Records {
		r, err := ledger.ParseRecord(raw)
		if err != nil {
			return 0, refusal(codeRefused, "record %d: %v", i, err)
		}
		if !pulled && sender != self && inRange(sender, r.Key, self) {
			return 0, refusal(codeRefused, "record %s has key %s, outside the sender's range", r.TxID, r.Key)
		}
		recs[i] = r
	}
	for _, p := range b.Pointers {
		if !pulled && sender != self && inRange(sender, keyOf(p.TxID), self) {
			return 0, refusal(codeRefused, "pointer %s is outside the sender's range", p.TxID)
		}
	}
	stored := 0
	if len(recs) > 0 {
		blocks, err := d.missingBlocks(ctx, from, recs)
		if err != nil {
			return 0, err
		}
		raws := make([][]byte, len(b.Records))
		for i, r := range b.Records {
			raws[i] = r
		}
		st, err := d.n.ledger.Ingest(ctx, blocks, raws)
		var ie *ledger.IngestError
		if errors.As(err, &ie) {
			return 0, refusal(codeRefused, "%v", ie)
		}
		if err != nil {
			return 0, err
		}
		stored += st.Records
		d.stats.blocksIn.Add(uint64(st.Blocks))
		if !pulled {
			d.stats.replicasIn.Add(uint64(st.Records))
		}
	}
	if len(b.Pointers) > 0 {
		if err := d.n.store.Write(ctx, store.Write{Pointers: storePointers(b.Pointers)}); err != nil {
			return stored, err
		}
		stored += len(b.Pointers)
	}
	return stored, nil
}

// missingBlocks fetches from p the blocks of each branch that recs need and
// this node does not hold yet: from its highest stored block to the highest
// block a record is attached to.
func (d *dist) missingBlocks(ctx context.Context, p chord.Peer, recs []*ledger.Record) ([][]byte, error) {
	need := map[ledger.Key]uint64{}
	for _, r := range recs {
		if r.Block.No > need[r.Block.Branch] {
			need[r.Block.Branch] = r.Block.No
		}
	}
	var out [][]byte
	for branch, upTo := range need {
		top, _, err := d.n.store.Head(branch)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if top >= upTo {
			continue
		}
		bs, err := d.fetchBlocks(ctx, p, branch, top+1, upTo)
		if err != nil {
			return nil, fmt.Errorf("blocks %d-%d of branch %s from %s: %w", top+1, upTo, branch, p.Addr, err)
		}
		out = append(out, bs...)
	}
	return out, nil
}

// fetchBlocks asks p for blocks from..to (to 0: up to its head) of a branch.
func (d *dist) fetchBlocks(ctx context.Context, p chord.Peer, branch ledger.Key, from, to uint64) ([][]byte, error) {
	var out [][]byte
	for {
		var ans rawList
		if err := d.call(ctx, p, opBlocks, blocksBody{Branch: branch, From: from, To: to}, &ans); err != nil {
			return nil, err
		}
		for _, raw := range ans.Items {
			out = append(out, raw)
		}
		from += uint64(len(ans.Items))
		if !ans.More || len(ans.Items) == 0 || (to != 0 && from > to) || len(out) >= maxCatchUp {
			return out, nil
		}
	}
}

// maxCatchUp bounds the blocks fetched in one go (a node long gone has many
// to catch up; the next round goes on).
const maxCatchUp = 4096

// replicator sends records and pointers to replicas: one queue per peer,
// whose sender packs what is queued into messages that fit, so that many
// small puts share round trips.
type replicator struct {
	d      *dist
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
	size     int
	done     chan error // buffered: the sender never waits for the putter
}

// replIdle is how long an idle queue's sender waits before it exits.
const replIdle = 10 * time.Second

// send queues records and pointers for each target and returns a function
// that waits until every target has stored them (or one failed).
func (r *replicator) send(targets []chord.Peer, records [][]byte, pointers []store.Pointer) func(context.Context) error {
	var jobs []*replJob
	for _, t := range targets {
		for _, j := range splitJob(records, pointers) {
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

// splitJob cuts records and pointers into jobs that each fit one message.
func splitJob(records [][]byte, pointers []store.Pointer) []*replJob {
	var out []*replJob
	cur := &replJob{}
	flush := func() {
		if len(cur.records)+len(cur.pointers) > 0 {
			cur.done = make(chan error, 1)
			out = append(out, cur)
		}
		cur = &replJob{}
	}
	for _, rec := range records {
		if cur.size+len(rec) > maxPayload {
			flush()
		}
		cur.records = append(cur.records, rec)
		cur.size += len(rec)
	}
	for _, p := range pointers {
		if cur.size+110 > maxPayload {
			flush()
		}
		cur.pointers = append(cur.pointers, p)
		cur.size += 110
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
		r.queues[p.ID] = q
		r.wg.Add(1)
		go r.run(q)
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
	for n < len(q.jobs) && (n == 0 || size+q.jobs[n].size <= maxPayload) {
		size += q.jobs[n].size
		n++
	}
	batch = append(batch, q.jobs[:n]...)
	q.jobs = q.jobs[n:]
	return batch, false
}

func (r *replicator) run(q *replQueue) {
	defer r.wg.Done()
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

// deliver sends one replicate message, retrying transport failures a few
// times; a refusal is final.
func (r *replicator) deliver(p chord.Peer, body replicateBody) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		ctx, cancel := context.WithTimeout(r.d.ctx, 10*time.Second)
		err = r.d.call(ctx, p, opReplicate, body, nil)
		cancel()
		if err == nil || refusalCode(err) != "" || r.d.ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
	return err
}

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
