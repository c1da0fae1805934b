package wot

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flownode/flownode/ledger"
)

// The hub holds this node's subscriptions, by Thing, and delivers updates to
// them: those written through this node (live.entered) and those other
// nodes' rendezvous forward (fanout.go handleNotify).

// Bounds of the hub.
const (
	// subBuffer is how many updates a subscription holds for a slow reader;
	// past it the oldest is dropped and Lost counts it.
	subBuffer = 256
	// maxSubscriptions bounds the subscriptions of one node (every viewer,
	// SSE stream, long-poll and CoAP observer holds one).
	maxSubscriptions = 4096
	// recentTxIDs is how many txIDs per Thing the hub remembers to drop a
	// record delivered twice (an idempotent resend is published again).
	recentTxIDs = 256
	// maxSources bounds the entry nodes whose sequence a Thing's hub tracks.
	maxSources = 64
	// maxHeld bounds the live updates of a Thing held during a catch-up;
	// past it the oldest are dropped.
	maxHeld = 1024
	// catchUpWait bounds how long a catch-up waits for missing records to
	// show on the ring (live updates are held meanwhile).
	catchUpWait = 10 * time.Second
)

// ErrTooManySubscriptions is returned by Subscribe when the node holds
// maxSubscriptions already.
var ErrTooManySubscriptions = errors.New("this node serves too many observers; retry later or use another node")

// source names the stream of a Thing's updates one entry node publishes:
// the node's ID and the stream's random epoch (its sequence starts again
// with a new epoch when the node restarts or forgets the stream).
type source struct {
	node  ledger.Key
	epoch uint64
}

// seen is the last update delivered from a source.
type seen struct {
	seq  uint64
	time int64
}

type hub struct {
	mu     sync.Mutex
	things map[string]*thingSubs
	count  int
}

// thingSubs are a Thing's subscriptions on this node and what orders and
// dedupes the updates they get.
type thingSubs struct {
	subs     map[*subscription]struct{}
	lastTime int64 // the newest record time delivered (or the first subscription's time)
	seen     map[source]seen
	recent   [recentTxIDs]ledger.Hash
	next     int
	// catchFrom, when set, is the time after which updates may have been
	// missed (a gap in a source's sequence, or a lease that came back
	// new): live updates are held (at most maxHeld) until the
	// subscriptions catch up from the ring, so that they come after.
	catchFrom int64
	catchTo   int64 // and before which (the first update after a gap; none for a new lease)
	// caughtUpTo is the newest time a catch-up delivered: a live update
	// from another node that is older (a publication retried late) would
	// come out of order, and is dropped.
	caughtUpTo int64
	missing    int       // updates known missing (sequence gaps) since catchFrom
	behindAt   time.Time // when the catch-up started
	held       []Update
}

// add makes a subscription; first says it is the Thing's first on this node
// (the caller registers a lease with the Thing's rendezvous).
func (h *hub) add(thing string) (s *subscription, first bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.count >= maxSubscriptions {
		return nil, false, ErrTooManySubscriptions
	}
	if h.things == nil {
		h.things = map[string]*thingSubs{}
	}
	ts := h.things[thing]
	if ts == nil {
		ts = &thingSubs{subs: map[*subscription]struct{}{}, seen: map[source]seen{}, lastTime: time.Now().UnixNano()}
		h.things[thing] = ts
		first = true
	}
	s = &subscription{hub: h, thing: thing, ch: make(chan Update, subBuffer)}
	ts.subs[s] = struct{}{}
	h.count++
	return s, first, nil
}

// remove forgets s; its Thing's entry goes with its last subscription.
func (h *hub) remove(s *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ts := h.things[s.thing]
	if ts == nil {
		return
	}
	if _, ok := ts.subs[s]; !ok {
		return
	}
	delete(ts.subs, s)
	h.count--
	if len(ts.subs) == 0 {
		delete(h.things, s.thing)
	}
}

// observed lists the Things with subscriptions on this node.
func (h *hub) observed() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.things))
	for th := range h.things {
		out = append(out, th)
	}
	return out
}

// wants says whether thing has subscriptions on this node.
func (h *hub) wants(thing string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.things[thing] != nil
}

// deliver hands a Thing's updates, in order, to its subscriptions. from and
// seq (of the first update; the others follow) identify them when they come
// from another node's publication: a sequence at or below the last one
// delivered from that source is a retry's duplicate and is dropped; one
// past the next starts a catch-up from the last one's time. It reports
// whether the Thing has subscriptions here, and whether it found a gap.
func (h *hub) deliver(thing string, from *source, seq uint64, ups []Update) (wanted, gap bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ts := h.things[thing]
	if ts == nil {
		return false, false
	}
	for i, u := range ups {
		if from != nil {
			n := seq + uint64(i)
			last, ok := ts.seen[*from]
			if ok && n <= last.seq {
				continue
			}
			if ok && n > last.seq+1 {
				ts.behind(last.time, u.Time)
				ts.missing += int(min(n-last.seq-1, maxHeld))
				gap = true
			}
			if ok && u.Time < last.time {
				// Older than one this source sent before: a reading whose
				// put failed while the ring changed, resent and signed
				// again with its time, published after newer ones.
				// Observers get a source's records in time order, and miss
				// one rather than get it late.
				ts.markSeen(*from, seen{seq: n, time: last.time})
				for s := range ts.subs {
					s.lost.Add(1)
				}
				continue
			}
			ts.markSeen(*from, seen{seq: n, time: u.Time})
			if u.Time <= ts.caughtUpTo {
				continue
			}
		}
		if ts.catchFrom != 0 {
			if len(ts.held) == maxHeld {
				ts.held = ts.held[1:]
			}
			ts.held = append(ts.held, u)
			continue
		}
		ts.offer(u)
	}
	return true, gap
}

// behind marks the Thing as possibly missing updates after since.
func (ts *thingSubs) behind(since, before int64) {
	if ts.catchFrom == 0 {
		ts.behindAt = time.Now()
		ts.catchTo = before
	}
	if ts.catchFrom == 0 || since < ts.catchFrom {
		ts.catchFrom = max(since, 1)
	}
	ts.catchTo = max(ts.catchTo, before)
}

// markBehind marks thing as possibly missing updates after the newest it
// delivered (its lease came back new).
func (h *hub) markBehind(thing string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ts := h.things[thing]; ts != nil {
		ts.behind(ts.lastTime, math.MaxInt64)
	}
}

// behindThings lists the Things that need a catch-up, with its start.
func (h *hub) behindThings() map[string]int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int64{}
	for th, ts := range h.things {
		if ts.catchFrom != 0 {
			out[th] = ts.catchFrom
		}
	}
	return out
}

// catchUp delivers the records read from the ring (in time order) newer
// than since and not delivered yet, then the updates held meanwhile, and
// ends the catch-up; it returns how many records it caught up. When the
// ring returned fewer records than the sequence gaps say are missing (a
// record still on its way to the replicas that answer while the ring
// changes), it delivers nothing and reports not done, for up to
// catchUpWait; the caller tries again soon. With final (the ring could not
// be read), it gives up on what is missing.
func (h *hub) catchUp(thing string, since int64, ups []Update, final bool) (n int, done bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ts := h.things[thing]
	if ts == nil {
		return 0, true
	}
	held := make(map[ledger.Hash]bool, len(ts.held))
	for _, u := range ts.held {
		held[u.TxID] = true
	}
	// Only the records in the missing window are caught up: later ones
	// come live (or make a gap of their own), and delivering them now
	// could put them before held ones.
	var fresh []Update
	found := 0 // of the missing ones: neither delivered nor held
	// Nothing older than what was delivered is caught up (it would come
	// out of order): a source's last sequence does not move with the
	// records a catch-up delivers, so a later gap may start far back.
	since = max(since, ts.lastTime)
	for _, u := range ups {
		if u.Time > since && u.Time < ts.catchTo && !ts.seenRecently(u.TxID) {
			fresh = append(fresh, u)
			if !held[u.TxID] {
				found++
			}
		}
	}
	if found < ts.missing && time.Since(ts.behindAt) < catchUpWait && !final {
		return 0, false
	}
	for _, u := range fresh {
		ts.offer(u)
		ts.caughtUpTo = max(ts.caughtUpTo, u.Time)
	}
	rest := ts.held
	ts.catchFrom, ts.missing, ts.held = 0, 0, nil
	for _, u := range rest {
		// Held before the catch-up delivered newer records: as on the
		// live path (deliver), an update at or below what was caught up
		// is not delivered late. (The records of one put are a
		// nanosecond apart: a catch-up can deliver the end of a put
		// whose start was held.)
		if u.Time < ts.caughtUpTo && !ts.seenRecently(u.TxID) {
			for s := range ts.subs {
				s.lost.Add(1)
			}
			continue
		}
		ts.offer(u)
	}
	return found, true
}

// seenRecently reports whether txID was delivered recently, without
// remembering it.
func (ts *thingSubs) seenRecently(txID ledger.Hash) bool {
	for _, h := range ts.recent {
		if h == txID {
			return true
		}
	}
	return false
}

// offer hands u to the Thing's subscriptions unless it was delivered
// recently.
func (ts *thingSubs) offer(u Update) {
	if !ts.dup(u.TxID) {
		ts.send(u)
	}
}

func (ts *thingSubs) send(u Update) {
	ts.lastTime = max(ts.lastTime, u.Time)
	for s := range ts.subs {
		s.offer(u)
	}
}

// lastTime returns the newest record time delivered for thing.
func (h *hub) lastTime(thing string) (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ts := h.things[thing]
	if ts == nil {
		return 0, false
	}
	return ts.lastTime, true
}

// markSeen records the last update from src, forgetting an arbitrary
// other source when too many are tracked (its next update is then taken).
func (ts *thingSubs) markSeen(src source, s seen) {
	if _, ok := ts.seen[src]; !ok && len(ts.seen) >= maxSources {
		for k := range ts.seen {
			delete(ts.seen, k)
			break
		}
	}
	ts.seen[src] = s
}

// dup reports whether txID was delivered recently, and remembers it.
func (ts *thingSubs) dup(txID ledger.Hash) bool {
	if ts.seenRecently(txID) {
		return true
	}
	ts.recent[ts.next] = txID
	ts.next = (ts.next + 1) % recentTxIDs
	return false
}

// closeAll ends every subscription (the layer is closing).
func (h *hub) closeAll() {
	h.mu.Lock()
	var all []*subscription
	for _, ts := range h.things {
		for s := range ts.subs {
			all = append(all, s)
		}
	}
	h.mu.Unlock()
	for _, s := range all {
		s.Close()
	}
}

// subscription is a Subscription of the hub.
type subscription struct {
	hub   *hub
	thing string
	ch    chan Update
	lost  atomic.Uint64

	mu     sync.Mutex // offer and Close: no send on a closed channel
	closed bool
}

func (s *subscription) Updates() <-chan Update { return s.ch }
func (s *subscription) Lost() uint64           { return s.lost.Load() }

// Close ends the subscription: Updates is closed once the buffered updates
// are read. Calling it again does nothing.
func (s *subscription) Close() {
	s.hub.remove(s)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

// offer queues u without ever blocking: when the buffer is full the oldest
// update makes room and is counted as lost.
func (s *subscription) offer(u Update) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	for {
		select {
		case s.ch <- u:
			return
		default:
		}
		select {
		case <-s.ch:
			s.lost.Add(1)
		default:
		}
	}
}
