package coap

import (
	"fmt"
	"strings"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// upload is a Block1 upload being reassembled (RFC 7959 §2.5). It is keyed
// by source, path and Request-Tag (RFC 9175), not by token: libcoap sends
// each block with a new token.
type upload struct {
	body []byte
	last time.Time
}

func (r *request) uploadKey() string {
	tag, _ := r.m.Options.GetBytes(optRequestTag)
	return fmt.Sprintf("%d %s #%x", r.m.Code, strings.Join(r.path, "/"), tag)
}

// tooLarge is 4.13 with Size1, the largest body this front takes.
func (s *Server) tooLarge(size int) response {
	r := diagnostic(codes.RequestEntityTooLarge,
		fmt.Sprintf("a body of %d bytes is over the limit of %d", size, s.cfg.MaxBody))
	r.opts = r.opts.Add(uintOpt(message.Size1, uint32(s.cfg.MaxBody)))
	return r
}

// receiveBlock takes one block of an upload. It answers the blocks before
// the last itself (2.31 Continue, or an error) and returns the whole body
// with the last one (done).
func (r *request) receiveBlock(b block) (body []byte, done bool) {
	s := r.s
	size := b.size()
	payload := r.m.Payload
	echo := b
	r.block1 = &echo
	if b.more && len(payload) != size {
		r.block1 = nil
		r.respond(diagnostic(codes.BadRequest, fmt.Sprintf("block %d has %d bytes, not its size %d", b.num, len(payload), size)))
		return nil, false
	}
	if announced, ok := uintOption(r.m, message.Size1); ok && int64(announced) > int64(s.cfg.MaxBody) {
		r.block1 = nil
		r.dropUpload()
		r.respond(s.tooLarge(int(announced)))
		return nil, false
	}
	if b.num == 0 && !b.more { // the whole body in one block
		r.dropUpload()
		return payload, true
	}
	key := r.uploadKey()
	now := time.Now()
	s.mu.Lock()
	src := s.sources[r.from]
	if src == nil {
		s.mu.Unlock()
		r.respond(withMaxAge(diagnostic(codes.ServiceUnavailable, "too many devices; try again"), 5))
		return nil, false
	}
	u := src.uploads[key]
	if b.num == 0 {
		if u == nil {
			if len(src.uploads) >= uploadsPerSource || s.uploads >= s.cfg.MaxUploads {
				s.mu.Unlock()
				r.block1 = nil
				r.respond(withMaxAge(diagnostic(codes.ServiceUnavailable, "too many uploads in progress; try again"), 5))
				return nil, false
			}
			if src.uploads == nil {
				src.uploads = map[string]*upload{}
			}
			u = &upload{}
			src.uploads[key] = u
			s.uploads++
		}
		u.body = u.body[:0] // a new upload under the same key restarts it
	}
	var fail response
	switch off := int64(b.num) * int64(size); {
	case u == nil:
		fail = diagnostic(codes.RequestEntityIncomplete, fmt.Sprintf("block %d of an upload whose block 0 never came (or came over %v ago)", b.num, s.cfg.BlockTimeout))
	case off != int64(len(u.body)):
		fail = diagnostic(codes.RequestEntityIncomplete, fmt.Sprintf("block %d starts at byte %d, but %d bytes came before it", b.num, off, len(u.body)))
	case off+int64(len(payload)) > int64(s.cfg.MaxBody):
		fail = s.tooLarge(int(off) + len(payload))
	}
	if fail.code != 0 {
		if u != nil {
			delete(src.uploads, key)
			s.uploads--
		}
		s.mu.Unlock()
		r.block1 = nil
		r.respond(fail)
		return nil, false
	}
	u.body = append(u.body, payload...)
	u.last = now
	if b.more {
		s.mu.Unlock()
		r.respond(response{code: codes.Continue})
		return nil, false
	}
	delete(src.uploads, key)
	s.uploads--
	s.mu.Unlock()
	return u.body, true
}

// dropUpload forgets an upload of r's key, if any.
func (r *request) dropUpload() {
	s := r.s
	key := r.uploadKey()
	s.mu.Lock()
	if src := s.sources[r.from]; src != nil && src.uploads[key] != nil {
		delete(src.uploads, key)
		s.uploads--
	}
	s.mu.Unlock()
}
