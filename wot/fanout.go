package wot

import (
	"context"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

// Observation across the ring.
//
// Each Thing has a rendezvous node, successor(SHA-1("observe:" + thing)).
// A node with local subscriptions of a Thing holds a lease there
// ("wot.subscribe", renewed every renewEvery, gone after leaseTTL). The
// entry node of a reading, once the put is acknowledged, delivers it to its
// own subscriptions at once and queues it for the rendezvous
// ("wot.publish"), which forwards it to every other node holding a lease
// ("wot.notify"); those deliver it to their subscriptions.
//
// Order: an entry node numbers the updates of each Thing it publishes (a
// stream: a random epoch and a sequence) and sends a Thing's publications
// one at a time, in order, from one goroutine per Thing; the rendezvous
// answers a publication only after forwarding it, so a Thing's updates from
// one entry node reach each subscribed node in order. A retried publication
// (its answer lost) is dropped by sequence at the receiver, and a record
// published twice (an idempotent resend) by txID (hub.deliver). Readings
// written through this layer get strictly increasing times (live.stamp), so
// the ring's time order is their order too.
//
// Gaps: a receiver that sees a sequence skip (an update dropped by a full
// queue, a publication given up, a lease that was elsewhere for a while)
// holds the Thing's live updates and catches up from the ring
// (RecordsByThing from the last update before the gap), waiting up to
// catchUpWait for the missing records to show, then delivers them and what
// it held, in order. A lease that comes back new (the rendezvous moved or
// restarted) catches up the same way, for the updates after the last one.
// A catch-up never delivers a record older than one already delivered: a
// Thing's subscribers may miss updates, never get them out of order.
//
// Cost per batch of readings of one Thing (one put of a WebSocket
// connection, up to publishBatch readings): 1 message to the rendezvous (0
// when the entry node is the rendezvous) and 1 per other node holding a
// lease, plus each receiver's signature check of every record; a gap costs
// a ring-wide read (N round trips, until the per-Thing time index). Leases
// cost one message per node and rendezvous every renewEvery, for all its
// Things.
//
// Failures: the rendezvous answers a publication with a refusal when a
// node holding a lease did not take it, and the entry node publishes it
// again (the nodes that had it drop the copy by sequence), publishAttempts
// times in all, then drops it (the receivers see the gap). While the
// rendezvous is down, updates reach remote observers only through the
// catch-up once it is back or replaced; never lost to the ledger. When the
// rendezvous moves (a join or leave), a node that is no longer the
// rendezvous forwards publications and lease requests to the new one once
// (a sender with an old view of the ring) and notifies the leases it still
// holds; subscribers register with the new rendezvous on their next renewal
// (within renewEvery).

// Op names.
const (
	opSubscribe = "wot.subscribe"
	opPublish   = "wot.publish"
	opNotify    = "wot.notify"
)

// renewInterval is how often a node renews its leases: twice its profile's
// sync interval, within [1 s, 10 s].
func renewInterval(p node.Profile) time.Duration {
	return min(max(2*p.SyncInterval, time.Second), 10*time.Second)
}

// leaseTTL is how long a lease lasts without renewal: three renewals, and
// never less than minLeaseTTL, so that a loaded node whose renewals are
// slow keeps its leases.
func leaseTTL(renewEvery time.Duration) time.Duration {
	return max(3*renewEvery, minLeaseTTL)
}

const (
	minLeaseTTL = 15 * time.Second
	// renewTimeout bounds one round of lease renewals, catchUpTimeout one
	// catch-up read.
	renewTimeout   = 10 * time.Second
	catchUpTimeout = 10 * time.Second
)

const (
	// notifyTimeout bounds a rendezvous' notification of one node (tried
	// notifyAttempts times); publishTimeout an entry node's publication,
	// which waits for those.
	notifyTimeout   = 5 * time.Second
	notifyAttempts  = 1
	publishTimeout  = notifyAttempts*notifyTimeout + 5*time.Second
	publishAttempts = 5
	// publishBatch and publishBytes bound one publication (the rpc codec
	// takes envelopes of 64 KiB).
	publishBatch = 64
	publishBytes = 40 << 10
	// queueBytes bounds what all of a node's publication queues hold;
	// queueThings how many Things may have one at a time. Past either,
	// updates are not published (remote observers lose them).
	queueBytes  = 16 << 20
	queueThings = 1024
	// leasesPerPeer and leasesTotal bound the leases a rendezvous holds.
	leasesPerPeer = 8192
	leasesTotal   = 65536
	// subscribeBatch bounds the Things of one lease request.
	subscribeBatch = 256
)

// rendezvousKey is the ring key of a Thing's rendezvous.
func rendezvousKey(thing string) ledger.Key {
	return ledger.Key(sha1.Sum([]byte("observe:" + thing)))
}

// Wire bodies.
type (
	subscribeBody struct {
		Things []string `json:"things"`
		// Holder is set by a node forwarding another's request (it is not
		// the rendezvous as it sees the ring): the lease is the holder's.
		Holder *node.Peer `json:"holder,omitempty"`
	}
	subscribeAnswer struct {
		TTLms   int64    `json:"ttlMs"`
		Refused []string `json:"refused,omitempty"` // not the rendezvous, or over its bounds
		New     []string `json:"new,omitempty"`     // leased now, not renewed: updates may have been missed
	}
	publishBody struct {
		Thing     string            `json:"thing"`
		Entry     ledger.Key        `json:"entry"` // the entry node, when forwarded
		Epoch     uint64            `json:"epoch,string"`
		Seq       uint64            `json:"seq,string"` // of the first record
		Records   []json.RawMessage `json:"records"`
		Forwarded bool              `json:"forwarded,omitempty"`
	}
	publishAnswer struct {
		Subscribers int `json:"subscribers"`
	}
	notifyAnswer struct {
		Unwanted bool `json:"unwanted,omitempty"` // no subscription here: drop the lease
	}
)

// fanoutStats count what observation across the ring lost.
type fanoutStats struct {
	notPublished atomic.Uint64 // updates dropped before the rendezvous (queues full, rendezvous down)
	caughtUp     atomic.Uint64 // updates delivered late, read from the ring (a gap, a new lease)
	notCaughtUp  atomic.Uint64 // catch-ups that failed (the missing updates were given up)
	notNotified  atomic.Uint64 // updates a rendezvous failed to deliver to an observing node (the entry node retries)
	badNotices   atomic.Uint64 // records in notifications that did not check
}

// ---- the entry node: publication queues ----

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
		if err == nil {
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

// ---- the rendezvous: leases and forwarding ----

type leaseTable struct {
	mu      sync.Mutex
	byThing map[string]map[ledger.Key]lease
	perPeer map[ledger.Key]int
	total   int
}

type lease struct {
	peer  node.Peer
	until time.Time
}

// grant adds or renews p's lease of thing (fresh: it had none); ok false
// when over the bounds.
func (lt *leaseTable) grant(thing string, p node.Peer, until time.Time) (ok, fresh bool) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if lt.byThing == nil {
		lt.byThing, lt.perPeer = map[string]map[ledger.Key]lease{}, map[ledger.Key]int{}
	}
	ls := lt.byThing[thing]
	old, renew := ls[p.ID]
	fresh = !renew || time.Now().After(old.until) // an expired lease not swept yet
	if !renew {
		if lt.total >= leasesTotal || lt.perPeer[p.ID] >= leasesPerPeer {
			return false, false
		}
		if ls == nil {
			ls = map[ledger.Key]lease{}
			lt.byThing[thing] = ls
		}
		lt.perPeer[p.ID]++
		lt.total++
	}
	ls[p.ID] = lease{peer: p, until: until}
	return true, fresh
}

// holders lists the peers with a live lease of thing, but not except.
func (lt *leaseTable) holders(thing string, except ledger.Key, now time.Time) []node.Peer {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	var out []node.Peer
	for id, ls := range lt.byThing[thing] {
		if now.After(ls.until) {
			lt.dropLocked(thing, id)
			continue
		}
		if id != except {
			out = append(out, ls.peer)
		}
	}
	return out
}

func (lt *leaseTable) drop(thing string, id ledger.Key) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.dropLocked(thing, id)
}

func (lt *leaseTable) dropLocked(thing string, id ledger.Key) {
	ls := lt.byThing[thing]
	if _, ok := ls[id]; !ok {
		return
	}
	delete(ls, id)
	if len(ls) == 0 {
		delete(lt.byThing, thing)
	}
	lt.total--
	if lt.perPeer[id]--; lt.perPeer[id] <= 0 {
		delete(lt.perPeer, id)
	}
}

// sweep drops expired leases.
func (lt *leaseTable) sweep(now time.Time) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	for thing, ls := range lt.byThing {
		for id, l := range ls {
			if now.After(l.until) {
				lt.dropLocked(thing, id)
			}
		}
	}
}

// rendezvousOf returns the Thing's rendezvous and whether it is this node.
func (l *live) rendezvousOf(ctx context.Context, thing string) (node.Peer, bool, error) {
	p, err := l.t.node.Owner(ctx, rendezvousKey(thing))
	return p, err == nil && p.ID == l.t.node.ID(), err
}

// handleSubscribe grants leases to the sender for the Things this node is
// the rendezvous of. Verified: the sender is a member (the node checks);
// each Thing ID is valid; this node is the Thing's rendezvous (else the
// request is forwarded once to the one this node finds, for the sender:
// a member could thus lease for another, which only makes the rendezvous
// notify a node that answers "unwanted"); the leases fit the bounds. The
// Things it cannot lease are listed as refused.
func (l *live) handleSubscribe(ctx context.Context, from node.Peer, raw json.RawMessage) (any, error) {
	var b subscribeBody
	if err := node.DecodeOp(opSubscribe, raw, &b); err != nil {
		return nil, err
	}
	if len(b.Things) == 0 || len(b.Things) > subscribeBatch {
		return nil, node.Refuse(node.CodeRefused, "%d Things in one lease request; 1 to %d", len(b.Things), subscribeBatch)
	}
	holder := from
	if b.Holder != nil {
		holder = *b.Holder
	}
	ttl := leaseTTL(l.renewEvery)
	ans := subscribeAnswer{TTLms: ttl.Milliseconds()}
	until := time.Now().Add(ttl)
	elsewhere := map[ledger.Key][]string{}
	peers := map[ledger.Key]node.Peer{}
	for _, thing := range b.Things {
		if err := ledger.ValidThingID(thing); err != nil {
			return nil, node.Refuse(node.CodeRefused, "%v", err)
		}
		rdv, self, err := l.rendezvousOf(ctx, thing)
		switch {
		case err != nil:
			ans.Refused = append(ans.Refused, thing)
		case !self && b.Holder == nil:
			elsewhere[rdv.ID] = append(elsewhere[rdv.ID], thing)
			peers[rdv.ID] = rdv
		case !self:
			ans.Refused = append(ans.Refused, thing) // forwarded once already
		default:
			switch ok, fresh := l.leases.grant(thing, holder, until); {
			case !ok:
				ans.Refused = append(ans.Refused, thing)
			case fresh:
				ans.New = append(ans.New, thing)
			}
		}
	}
	// The sender sees the ring differently (a join or leave in progress):
	// its request goes on, once, to the rendezvous this node finds.
	for id, things := range elsewhere {
		var fw subscribeAnswer
		if err := l.t.node.CallOp(ctx, peers[id], opSubscribe, subscribeBody{Things: things, Holder: &holder}, &fw); err != nil {
			ans.Refused = append(ans.Refused, things...)
			continue
		}
		ans.Refused = append(ans.Refused, fw.Refused...)
		ans.New = append(ans.New, fw.New...)
	}
	return ans, nil
}

// handlePublish forwards an entry node's updates of a Thing to the nodes
// holding leases (not the entry node, which delivered them itself), and
// answers once they have all answered or timed out, so that the entry
// node's next publication comes after. Verified: the sender is a member;
// the Thing ID is valid; this node is the Thing's rendezvous (else it
// forwards once to the one it finds, for an entry node with an old view).
// The records themselves are checked by each receiver (handleNotify).
func (l *live) handlePublish(ctx context.Context, from node.Peer, raw json.RawMessage) (any, error) {
	var b publishBody
	if err := node.DecodeOp(opPublish, raw, &b); err != nil {
		return nil, err
	}
	if err := ledger.ValidThingID(b.Thing); err != nil {
		return nil, node.Refuse(node.CodeRefused, "%v", err)
	}
	if len(b.Records) == 0 || len(b.Records) > publishBatch {
		return nil, node.Refuse(node.CodeRefused, "%d records in one publication; 1 to %d", len(b.Records), publishBatch)
	}
	if !b.Forwarded {
		b.Entry = from.ID
	}
	rdv, self, err := l.rendezvousOf(ctx, b.Thing)
	if err != nil {
		return nil, node.Refuse(node.CodeUnavailable, "finding the rendezvous of %s: %v", b.Thing, err)
	}
	if !self {
		if b.Forwarded {
			return nil, node.Refuse(node.CodeMisrouted, "this node is not the rendezvous of %s", b.Thing)
		}
		// Leases this node still holds from before the ring changed get
		// the updates too, until their holders renew with the new
		// rendezvous (receivers drop the duplicates by sequence).
		if holders := l.leases.holders(b.Thing, b.Entry, time.Now()); len(holders) > 0 {
			l.notifyAll(ctx, holders, b) // best effort: these leases are on their way out
		}
		b.Forwarded = true
		var ans publishAnswer
		err := l.t.node.CallOp(ctx, rdv, opPublish, b, &ans)
		return ans, err
	}
	holders := l.leases.holders(b.Thing, b.Entry, time.Now())
	if failed := l.notifyAll(ctx, holders, b); failed > 0 {
		// The entry node publishes again; the nodes that had it drop the
		// copy by sequence.
		return nil, node.Refuse(node.CodeUnavailable, "%d of %d observing nodes did not take the updates of %s", failed, len(holders), b.Thing)
	}
	return publishAnswer{Subscribers: len(holders)}, nil
}

// notifyAll sends b to every holder at once (a failed call is tried again:
// a duplicate is dropped by sequence), drops the leases of those that have
// no subscription left, and returns how many holders failed every attempt.
func (l *live) notifyAll(ctx context.Context, holders []node.Peer, b publishBody) int {
	var failed atomic.Int64
	var wg sync.WaitGroup
	for _, p := range holders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			for attempt := 0; attempt < notifyAttempts && ctx.Err() == nil; attempt++ {
				var ans notifyAnswer
				cctx, cancel := context.WithTimeout(ctx, notifyTimeout)
				err = l.t.node.CallOp(cctx, p, opNotify, b, &ans)
				cancel()
				if err == nil {
					if ans.Unwanted {
						l.leases.drop(b.Thing, p.ID)
					}
					return
				}
			}
			failed.Add(1)
			l.stats.notNotified.Add(uint64(len(b.Records)))
			l.t.log.Info("updates not delivered to an observing node", zap.String("peer", p.Addr), zap.String("thing", b.Thing), zap.Error(err))
		}()
	}
	wg.Wait()
	return int(failed.Load())
}

// handleNotify delivers a rendezvous' forwarded updates to this node's
// subscriptions. Verified: the sender is a member; each record parses,
// verifies on its own (signature, H_DATA, txID: ledger CheckSelf) and is of
// the Thing named; records that do not are dropped and counted. Duplicates
// and retries are dropped by the hub (entry, epoch, sequence; txID).
func (l *live) handleNotify(ctx context.Context, from node.Peer, raw json.RawMessage) (any, error) {
	var b publishBody
	if err := node.DecodeOp(opNotify, raw, &b); err != nil {
		return nil, err
	}
	if len(b.Records) > publishBatch {
		return nil, node.Refuse(node.CodeRefused, "%d records in one notification; at most %d", len(b.Records), publishBatch)
	}
	if !l.hub.wants(b.Thing) {
		return notifyAnswer{Unwanted: true}, nil
	}
	ups := make([]Update, 0, len(b.Records))
	seqs := make([]uint64, 0, len(b.Records))
	for i, rec := range b.Records {
		u, err := checkedUpdate(rec, b.Thing)
		if err != nil {
			l.stats.badNotices.Add(1)
			l.t.log.Warn("a notification's record does not check", zap.String("from", from.Addr), zap.Error(err))
			continue
		}
		ups = append(ups, u)
		seqs = append(seqs, b.Seq+uint64(i))
	}
	if len(ups) > 0 {
		l.latest.put(ups[len(ups)-1], time.Now())
	}
	src := source{node: b.Entry, epoch: b.Epoch}
	wanted, behind := true, false
	// Runs of consecutive sequences go to the hub together (a record that
	// did not check leaves a gap: caught up from the ring).
	for i := 0; i < len(ups); {
		j := i + 1
		for j < len(ups) && seqs[j] == seqs[j-1]+1 {
			j++
		}
		var lag bool
		wanted, lag = l.hub.deliver(b.Thing, &src, seqs[i], ups[i:j])
		behind = behind || lag
		i = j
	}
	if behind {
		l.kickCatchUp()
	}
	return notifyAnswer{Unwanted: !wanted}, nil
}

// checkedUpdate parses a record from a peer and checks it on its own.
func checkedUpdate(raw []byte, thing string) (Update, error) {
	r, err := ledger.ParseRecord(raw)
	if err != nil {
		return Update{}, err
	}
	if err := r.CheckSelf(raw); err != nil {
		return Update{}, err
	}
	if r.Thing != thing {
		return Update{}, fmt.Errorf("a record of %q in a notification of %q", r.Thing, thing)
	}
	return Update{Thing: r.Thing, TxID: r.TxID, Time: r.Time, Value: r.Data, Record: raw}, nil
}

// ---- the subscriber: leases ----

// register asks the rendezvous of each Thing for a lease, grouped by
// rendezvous (one message each), and returns the Things whose lease is new
// (not a renewal).
func (l *live) register(ctx context.Context, things []string) ([]string, error) {
	groups := map[ledger.Key][]string{}
	peers := map[ledger.Key]node.Peer{}
	var errs []error
	var fresh []string
	for _, th := range things {
		p, err := l.t.node.Owner(ctx, rendezvousKey(th))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		groups[p.ID] = append(groups[p.ID], th)
		peers[p.ID] = p
	}
	for id, ths := range groups {
		for len(ths) > 0 {
			n := min(len(ths), subscribeBatch)
			var ans subscribeAnswer
			if err := l.t.node.CallOp(ctx, peers[id], opSubscribe, subscribeBody{Things: ths[:n]}, &ans); err != nil {
				errs = append(errs, err)
			} else {
				fresh = append(fresh, ans.New...)
				if len(ans.Refused) > 0 {
					errs = append(errs, fmt.Errorf("rendezvous %s refused leases of %d Things", peers[id].Addr, len(ans.Refused)))
				}
			}
			ths = ths[n:]
		}
	}
	return fresh, errors.Join(errs...)
}

// renewLoop renews this node's leases and sweeps the expired ones it holds
// as rendezvous, every renewEvery, and runs the catch-ups the hub asks for
// (kickCatchUp), until the layer closes. A lease that comes back new (the
// rendezvous moved, restarted, or let it expire while this node was
// unreachable) may have missed updates: the Thing's subscriptions catch up
// from the ring too.
func (l *live) renewLoop() {
	defer l.wg.Done()
	tk := time.NewTicker(l.renewEvery)
	defer tk.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-l.kick:
		case <-tk.C:
			l.renew()
		}
		pending := false
		for thing, since := range l.hub.behindThings() {
			ctx, cancel := context.WithTimeout(l.ctx, catchUpTimeout)
			pending = !l.catchUp(ctx, thing, since) || pending
			cancel()
		}
		if pending {
			time.AfterFunc(catchUpRetry, l.kickCatchUp)
		}
	}
}

// catchUpRetry is how soon a catch-up that waits for missing records reads
// the ring again.
const catchUpRetry = 500 * time.Millisecond

// renew renews the leases of the Things observed here.
func (l *live) renew() {
	l.leases.sweep(time.Now())
	things := l.hub.observed()
	if len(things) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, renewTimeout)
	defer cancel()
	fresh, err := l.register(ctx, things)
	if err != nil && l.ctx.Err() == nil {
		l.t.log.Info("renewing observation leases", zap.Error(err))
	}
	for _, th := range fresh {
		l.hub.markBehind(th)
	}
}

// kickCatchUp has renewLoop run the pending catch-ups now.
func (l *live) kickCatchUp() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// catchUpMax bounds the records one catch-up delivers.
const catchUpMax = 1024

// catchUp delivers to a Thing's subscriptions the records written after
// since that they did not get, read from the ring (RecordsByThing: a
// ring-wide read), in time order, then the live updates held meanwhile
// (see hub.catchUp for the waits). If the ring cannot be read, the missing
// updates are given up (counted).
func (l *live) catchUp(ctx context.Context, thing string, since int64) (done bool) {
	recs, err := l.t.node.RecordsByThing(ctx, thing, since+1, 0, catchUpMax)
	if err != nil {
		l.stats.notCaughtUp.Add(1)
		l.t.log.Info("observers of a Thing could not catch up", zap.String("thing", thing), zap.Error(err))
		l.hub.catchUp(thing, since, nil, true)
		return true
	}
	ups := make([]Update, 0, len(recs))
	for _, raw := range recs {
		if u, err := updateOf(raw); err == nil {
			ups = append(ups, u)
		}
	}
	n, done := l.hub.catchUp(thing, since, ups, false)
	l.stats.caughtUp.Add(uint64(n))
	return done
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
