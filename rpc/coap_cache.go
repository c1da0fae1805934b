package rpc

import (
	"bytes"
	"sync"
	"time"

	"github.com/plgd-dev/go-coap/v3/message/pool"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// respCache replaces go-coap's response cache on server connections, which
// answers a retransmitted request without running the handler again. Stock
// go-coap v3.5.4 keys it by message ID alone and keeps entries for 247 s, so
// once a peer has sent 65,536 requests within that time its message IDs wrap
// and every new request is answered with an old, cached response whose token
// the peer does not know: the request then hangs until its deadline. It also
// grows to 65,536 entries per peer. This cache checks the token as well,
// keeps entries only as long as retransmissions can arrive, and holds at
// most max of them.
type respCache struct {
	ttl time.Duration
	max int

	mu    sync.Mutex
	seq   uint64
	m     map[string]cachedResp
	queue []cacheRef // insertion order, for expiry and eviction
	head  int
}

type cachedResp struct {
	token []byte
	raw   []byte
	at    time.Time
	seq   uint64
}

type cacheRef struct {
	key string
	seq uint64
	at  time.Time
}

func newRespCache(ttl time.Duration, max int) *respCache {
	return &respCache{ttl: ttl, max: max, m: make(map[string]cachedResp)}
}

// Load implements client.MessageCache. msg arrives carrying the request's
// token; a cached response to another token (a reused message ID) is a miss.
func (c *respCache) Load(key string, msg *pool.Message) (bool, error) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if !ok || time.Since(e.at) > c.ttl || !bytes.Equal(e.token, msg.Token()) {
		return false, nil
	}
	if _, err := msg.UnmarshalWithDecoder(coder.DefaultCoder, e.raw); err != nil {
		return false, err
	}
	return true, nil
}

// Store implements client.MessageCache. A newer response replaces an older
// one under the same message ID.
func (c *respCache) Store(key string, msg *pool.Message) error {
	raw, err := msg.MarshalWithEncoder(coder.DefaultCoder)
	if err != nil {
		return err
	}
	now := time.Now()
	e := cachedResp{token: bytes.Clone(msg.Token()), raw: bytes.Clone(raw), at: now}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	e.seq = c.seq
	c.m[key] = e
	c.queue = append(c.queue, cacheRef{key: key, seq: e.seq, at: now})
	for len(c.m) > c.max && c.head < len(c.queue) {
		c.pop()
	}
	return nil
}

// CheckExpirations implements client.MessageCache. It only looks at the
// expired entries, oldest first.
func (c *respCache) CheckExpirations(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.head < len(c.queue) && now.Sub(c.queue[c.head].at) > c.ttl {
		c.pop()
	}
}

func (c *respCache) pop() {
	r := c.queue[c.head]
	c.queue[c.head] = cacheRef{}
	c.head++
	if e, ok := c.m[r.key]; ok && e.seq == r.seq {
		delete(c.m, r.key)
	}
	if c.head > 64 && c.head*2 > len(c.queue) {
		n := copy(c.queue, c.queue[c.head:])
		c.queue = c.queue[:n]
		c.head = 0
	}
}
