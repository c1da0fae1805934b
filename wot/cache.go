package wot

import (
	"container/list"
	"sync"
	"time"
)

// tdCache keeps the latest TD versions this node read or wrote, so that a
// device's readings (ensureThing) and repeated GETs do not ask the ring each
// time. It is bounded (least recently used goes first). A reader says how old
// an entry it accepts: a GET takes one younger than tdFreshFor, so a TD
// changed through another node is served here at most that late; a device's
// reading only needs to know that its Thing has a TD, and takes one younger
// than tdKnownFor (a Thing deleted elsewhere is made again by its next
// reading at most that late). A change made through this node is seen at
// once (put replaces).
type tdCache struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	now   func() time.Time
	order *list.List // front: most recently used; values *cacheEntry
	byID  map[string]*list.Element
}

type cacheEntry struct {
	thing string
	v     tdVersion
	at    time.Time
}

const (
	tdCacheSize = 1024
	tdFreshFor  = 2 * time.Second
	tdKnownFor  = time.Minute
)

func newTDCache(max int, ttl time.Duration, now func() time.Time) *tdCache {
	return &tdCache{max: max, ttl: ttl, now: now, order: list.New(), byID: map[string]*list.Element{}}
}

// get returns the cached version of thing, if one younger than maxAge is.
func (c *tdCache) get(thing string, maxAge time.Duration) (tdVersion, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byID[thing]
	if !ok {
		return tdVersion{}, false
	}
	e := el.Value.(*cacheEntry)
	age := c.now().Sub(e.at)
	if age >= c.ttl {
		c.order.Remove(el)
		delete(c.byID, thing)
		return tdVersion{}, false
	}
	if age >= maxAge {
		return tdVersion{}, false
	}
	c.order.MoveToFront(el)
	return e.v, true
}

// put caches v as thing's latest version, unless the cache holds a newer one.
func (c *tdCache) put(thing string, v tdVersion) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byID[thing]; ok {
		e := el.Value.(*cacheEntry)
		if v.older(e.v) {
			return
		}
		e.v, e.at = v, c.now()
		c.order.MoveToFront(el)
		return
	}
	c.byID[thing] = c.order.PushFront(&cacheEntry{thing: thing, v: v, at: c.now()})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byID, last.Value.(*cacheEntry).thing)
	}
}
