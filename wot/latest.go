package wot

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/flownode/flownode/ledger"
)

// The newest value of each Thing this node has seen, for readproperty: a
// bounded LRU fed by the updates that pass through the node (its own
// clients' writes and the rendezvous' notifications). A miss reads the ring
// (newestOnRing).

// Bounds of the cache: whichever is reached first evicts the least recently
// used Things.
const (
	latestThings = 4096
	latestBytes  = 8 << 20
	// noValueFor is how long a miss that found nothing on the ring is
	// remembered, so that polling an empty Thing does not ask every node
	// each time; a write through this node or a notification ends it.
	noValueFor = 2 * time.Second
)

type latestCache struct {
	mu    sync.Mutex
	byID  map[string]*list.Element // of *latestEntry
	lru   list.List                // front: most recently used
	bytes int
}

type latestEntry struct {
	thing   string
	u       Update
	checked time.Time // when u was known to be the newest
	noValue time.Time // set: nothing on the ring as of then (u is empty)
}

func (e *latestEntry) size() int { return len(e.thing) + len(e.u.Value) + len(e.u.Record) + 128 }

// latestFresh is how long a cached value is taken as the newest without
// asking the ring again, for a Thing this node does not observe (an observed
// Thing's cache is kept fresh by the notifications).
const latestFresh = time.Second

// get returns the Thing's newest update if known, and when it was last known
// to be the newest; none reports a recent miss that found nothing.
func (c *latestCache) get(thing string, now time.Time) (u Update, checked time.Time, ok, none bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.byID[thing]
	if el == nil {
		return Update{}, time.Time{}, false, false
	}
	e := el.Value.(*latestEntry)
	if !e.noValue.IsZero() {
		if now.Sub(e.noValue) < noValueFor {
			return Update{}, time.Time{}, false, true
		}
		c.drop(el)
		return Update{}, time.Time{}, false, false
	}
	c.lru.MoveToFront(el)
	return e.u, e.checked, true, false
}

// put keeps u, known to be the newest at now, if it is not older than what
// the cache holds for its Thing.
func (c *latestCache) put(u Update, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil {
		c.byID = map[string]*list.Element{}
	}
	if el := c.byID[u.Thing]; el != nil {
		e := el.Value.(*latestEntry)
		if e.noValue.IsZero() && u.Time < e.u.Time {
			e.checked = now
			return
		}
		c.drop(el)
	}
	c.insert(&latestEntry{thing: u.Thing, u: u, checked: now})
}

// putNone remembers that the ring had no value for thing (unless a value
// arrived meanwhile).
func (c *latestCache) putNone(thing string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil {
		c.byID = map[string]*list.Element{}
	}
	if c.byID[thing] != nil {
		return
	}
	c.insert(&latestEntry{thing: thing, noValue: now})
}

func (c *latestCache) insert(e *latestEntry) {
	c.byID[e.thing] = c.lru.PushFront(e)
	c.bytes += e.size()
	for (len(c.byID) > latestThings || c.bytes > latestBytes) && c.lru.Len() > 1 {
		c.drop(c.lru.Back())
	}
}

func (c *latestCache) drop(el *list.Element) {
	e := c.lru.Remove(el).(*latestEntry)
	delete(c.byID, e.thing)
	c.bytes -= e.size()
}

// newestWindows are the time windows a cache miss reads the ring in, the
// smallest first: a Thing that writes often is found in the first, one idle
// for longer costs one more ring-wide read per window.
var newestWindows = []time.Duration{10 * time.Second, 10 * time.Minute, 24 * time.Hour, 30 * 24 * time.Hour}

// newestPage is the most records one ring-wide read asks each node for, and
// newestPages how many pages a window is followed for at most.
const (
	newestPage  = 256
	newestPages = 8
)

// newestOnRing reads a Thing's newest record from the ring through
// node.RecordsByThing, which asks every node (N parallel round trips per
// read) until the per-Thing time index makes it O(log N). With since (a
// cached value's time) it reads from then on, once; else the windows go
// from small to large. Within a window, a full page is followed forward
// from its last record's time. A Thing idle for longer than the largest
// window has no value here (ErrNoValue).
func (t *Things) newestOnRing(ctx context.Context, thing string, now time.Time, since int64) (Update, error) {
	froms := make([]int64, 0, len(newestWindows))
	if since > 0 {
		froms = append(froms, since)
	} else {
		for _, w := range newestWindows {
			froms = append(froms, now.Add(-w).UnixNano())
		}
	}
	for _, from := range froms {
		var newest []byte
		for page := 0; page < newestPages; page++ {
			recs, err := t.node.RecordsByThing(ctx, thing, from, 0, newestPage)
			if err != nil {
				return Update{}, err
			}
			if len(recs) == 0 {
				break
			}
			newest = recs[len(recs)-1]
			if len(recs) < newestPage {
				break
			}
			r, err := ledger.ParseRecord(newest)
			if err != nil || r.Time < from {
				break
			}
			if r.Time == from {
				from++ // a page of one instant: step past it
			} else {
				from = r.Time
			}
		}
		if newest != nil {
			return updateOf(newest)
		}
	}
	return Update{}, ErrNoValue
}
