package coap

import (
	"fmt"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// defaultSZX is the block size of a large response when the client asks
// for none: 1 KiB, which with the header fits any link's MTU.
const defaultSZX = 6

// cachedRepr is a large response kept for the client's requests of its
// next blocks (RFC 7959 §2.4), so that every block comes from the same
// representation, and a POST's response without running the POST again.
type cachedRepr struct {
	resp response
	etag []byte
	used time.Time
}

// reprKey names a response in its source's cache: the method and the URI.
func (r *request) reprKey() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d ", r.m.Code)
	for _, p := range r.path {
		b.WriteString("/")
		b.WriteString(p)
	}
	if q, err := r.m.Options.Queries(); err == nil {
		b.WriteString("?")
		b.WriteString(strings.Join(q, "&"))
	}
	return b.String()
}

// blockOf slices block want out of resp's body, with the Block2, Size2 and
// ETag options that go with it, and keeps resp for the next blocks.
func (r *request) blockOf(resp response, want block, opts message.Options) ([]byte, message.Options, error) {
	return r.s.blockOf(r.from, r.reprKey(), !r.cached, resp, want, opts)
}

// blockOf slices block want out of resp's body for from, with the Block2,
// Size2 and ETag options that go with it; if keep and more blocks follow,
// resp is kept under key for the client's next requests.
func (s *Server) blockOf(from Source, key string, keep bool, resp response, want block, opts message.Options) ([]byte, message.Options, error) {
	body := resp.body
	size := want.size()
	start := int(want.num) * size
	if start >= len(body) && (start > 0 || len(body) > 0) {
		return nil, opts, fmt.Errorf("block %d is past the end of the %d-byte response", want.num, len(body))
	}
	end := min(start+size, len(body))
	etag := etagOf(body)
	more := end < len(body)
	opts = opts.Add(uintOpt(message.Block2, block{num: want.num, more: more, szx: want.szx}.value()))
	opts = opts.Set(uintOpt(message.Size2, uint32(len(body))))
	opts = opts.Set(message.Option{ID: message.ETag, Value: etag})
	if keep && more {
		// The next blocks answer plain requests: no Observe (RFC 7959 §3.4).
		resp.opts = append(message.Options(nil), resp.opts...).Remove(message.Observe)
		s.keep(from, key, &cachedRepr{resp: resp, etag: etag, used: time.Now()})
	}
	return body[start:end], opts, nil
}

// keep caches a large response of a source, within the bounds.
func (s *Server) keep(from Source, key string, c *cachedRepr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	src := s.sources[from]
	if src == nil {
		return
	}
	if old := src.cache[key]; old != nil {
		s.cached -= len(old.resp.body)
		delete(src.cache, key)
	}
	if len(src.cache) >= cachedPerSource {
		var oldest string
		for k, o := range src.cache {
			if oldest == "" || o.used.Before(src.cache[oldest].used) {
				oldest = k
			}
		}
		s.cached -= len(src.cache[oldest].resp.body)
		delete(src.cache, oldest)
	}
	if s.cached+len(c.resp.body) > s.cfg.MaxCachedBytes {
		return // its next blocks are made again (GET) or refused (POST)
	}
	if src.cache == nil {
		src.cache = map[string]*cachedRepr{}
	}
	src.cache[key] = c
	s.cached += len(c.resp.body)
}

// serveNextBlock answers a request for block n > 0 of a response: from the
// cache, or, for a GET whose response is no longer kept, by serving the
// request again (its ETag tells the client if the representation changed).
// It reports false when the request must be routed.
func (r *request) serveNextBlock(b block) bool {
	s := r.s
	key := r.reprKey()
	s.mu.Lock()
	var c *cachedRepr
	if src := s.sources[r.from]; src != nil {
		if c = src.cache[key]; c != nil {
			c.used = time.Now()
		}
	}
	s.mu.Unlock()
	r.block2 = &b
	if c == nil {
		if r.m.Code == codes.GET {
			return false
		}
		r.respond(diagnostic(codes.RequestEntityIncomplete, "this response is no longer kept: send the request again"))
		return true
	}
	r.cached = true
	r.respond(c.resp)
	return true
}
