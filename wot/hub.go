package wot

import (
	"errors"
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
)

// ErrTooManySubscriptions is returned by Subscribe when the node holds
// maxSubscriptions already.
var ErrTooManySubscriptions = errors.New("this node serves too many observers; retry later or use another node")

// source names the stream of updates one entry node publishes: its ID and
// the epoch it started with (its sequence restarts at each start).
type source struct {
	node  ledger.Key
	epoch uint64
}

type hub struct {
	mu     sync.Mutex
	things map[string]*thingSubs
	count  int
}

// thingSubs are a Thing's subscriptions on this node and what dedupes the
// updates they get.
type thingSubs struct {
	subs     map[*subscription]struct{}
	lastTime int64             // the newest record time delivered (or the first subscription's time)
	seen     map[source]uint64 // the last sequence delivered from each source
	recent   [recentTxIDs]ledger.Hash
	next     int
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
		ts = &thingSubs{subs: map[*subscription]struct{}{}, seen: map[source]uint64{}, lastTime: time.Now().UnixNano()}
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
// delivered from that source is a retry's duplicate and is dropped. It
// reports whether the Thing has subscriptions here.
func (h *hub) deliver(thing string, from *source, seq uint64, ups []Update) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	ts := h.things[thing]
	if ts == nil {
		return false
	}
	for i, u := range ups {
		if from != nil {
			if last, ok := ts.seen[*from]; ok && seq+uint64(i) <= last {
				continue
			}
			ts.markSeen(*from, seq+uint64(i))
		}
		ts.offer(u)
	}
	return true
}

// offer hands u to the Thing's subscriptions unless it was delivered
// recently.
func (ts *thingSubs) offer(u Update) {
	if ts.dup(u.TxID) {
		return
	}
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

// catchUp delivers records read from the ring (in time order) that are
// newer than both since and what was delivered meanwhile, and returns how
// many it delivered.
func (h *hub) catchUp(thing string, since int64, ups []Update) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	ts := h.things[thing]
	if ts == nil {
		return 0
	}
	n := 0
	for _, u := range ups {
		if u.Time > since && u.Time > ts.lastTime {
			ts.offer(u)
			n++
		}
	}
	return n
}

// markSeen records the last sequence from src, forgetting an arbitrary
// other source when too many are tracked (its next update is then taken).
func (ts *thingSubs) markSeen(src source, seq uint64) {
	if _, ok := ts.seen[src]; !ok && len(ts.seen) >= maxSources {
		for k := range ts.seen {
			delete(ts.seen, k)
			break
		}
	}
	ts.seen[src] = seq
}

// dup reports whether txID was delivered recently, and remembers it.
func (ts *thingSubs) dup(txID ledger.Hash) bool {
	for _, h := range ts.recent {
		if h == txID {
			return true
		}
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
