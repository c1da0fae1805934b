package wot

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/flownode/flownode/node"
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

// newestOnRing reads a Thing's newest record from the ring: the newest entry
// of the Thing's extremes in the per-Thing history index (one lookup and one
// get, node.LatestByThing). A record is there once its history entries are
// written, in the background, a few milliseconds after its receipt.
func (t *Things) newestOnRing(ctx context.Context, thing string) (Update, error) {
	raw, err := t.node.LatestByThing(ctx, thing)
	if errors.Is(err, node.ErrNotFound) {
		return Update{}, ErrNoValue
	}
	if err != nil {
		return Update{}, err
	}
	return updateOf(raw)
}
