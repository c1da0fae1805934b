package driver

import (
	"encoding/hex"
	"encoding/json"

	"github.com/flownode/flownode/chord"
)

// A core message's payload travels as JSON: what encoding/json makes of
// chord.Payload. Every lookup step encodes one (a list of peers) and decodes
// one, and encoding/json's reflection was a fifth of a step's CPU. So the
// payloads the ring exchanges all the time (peers and a done flag, with
// plain addresses) are written and read here by hand, byte for byte as
// encoding/json writes them; anything else (application data, an address
// encoding/json would escape, a payload in another shape than the one
// written here) goes through encoding/json as before. The wire does not
// change: FuzzPayloadEncode and FuzzPayloadDecode hold both paths to
// encoding/json's results.

// encodePayload returns json.Marshal(p).
func encodePayload(p chord.Payload) ([]byte, error) {
	if len(p.Data) > 0 || !plainPeers(p) {
		return json.Marshal(p)
	}
	n := len(p.Succs) + len(p.Next) + 3
	b := make([]byte, 0, 32+n*(len(`{"id":"","addr":""},`)+2*len(chord.ID{})+32))
	sep := byte('{')
	field := func(name string) {
		b = append(b, sep, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		sep = ','
	}
	if !p.Pred.IsZero() {
		field("pred")
		b = appendPeer(b, p.Pred)
	}
	if len(p.Succs) > 0 {
		field("succs")
		b = appendPeers(b, p.Succs)
	}
	if !p.Hint.IsZero() {
		field("hint")
		b = appendPeer(b, p.Hint)
	}
	if p.Done {
		field("done")
		b = append(b, "true"...)
	}
	if !p.Owner.IsZero() {
		field("owner")
		b = appendPeer(b, p.Owner)
	}
	if len(p.Next) > 0 {
		field("next")
		b = appendPeers(b, p.Next)
	}
	if sep == '{' {
		b = append(b, '{')
	}
	return append(b, '}'), nil
}

func appendPeer(b []byte, p chord.Peer) []byte {
	b = append(b, `{"id":"`...)
	b = hex.AppendEncode(b, p.ID[:])
	b = append(b, `","addr":"`...)
	b = append(b, p.Addr...)
	return append(b, `"}`...)
}

func appendPeers(b []byte, ps []chord.Peer) []byte {
	b = append(b, '[')
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendPeer(b, p)
	}
	return append(b, ']')
}

// plainPeers reports whether every address in p is plain: printable ASCII
// that encoding/json writes as it is (no quote, backslash, or the <, > and
// & it escapes for HTML).
func plainPeers(p chord.Payload) bool {
	for _, q := range [...]chord.Peer{p.Pred, p.Hint, p.Owner} {
		if !plainString(q.Addr) {
			return false
		}
	}
	for _, ps := range [...][]chord.Peer{p.Succs, p.Next} {
		for _, q := range ps {
			if !plainString(q.Addr) {
				return false
			}
		}
	}
	return true
}

func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte(s[i]) {
			return false
		}
	}
	return true
}

func plainByte(c byte) bool {
	return c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

// decodePayload does what json.Unmarshal(b, p) does to a zero p.
func decodePayload(b []byte, p *chord.Payload) error {
	r := payloadReader{b: b}
	var q chord.Payload
	if r.payload(&q) && r.i == len(b) {
		*p = q
		return nil
	}
	return json.Unmarshal(b, p)
}

// payloadReader reads the payloads encodePayload writes: no whitespace, the
// field names exactly as written, each at most once, plain strings. It
// reports false at the first byte that is anything else, and the caller
// falls back to encoding/json, which decides what such input means.
type payloadReader struct {
	b []byte
	i int
}

func (r *payloadReader) take(c byte) bool {
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

func (r *payloadReader) literal(s string) bool {
	if len(r.b)-r.i >= len(s) && string(r.b[r.i:r.i+len(s)]) == s {
		r.i += len(s)
		return true
	}
	return false
}

// plain reads a string of plain bytes (see plainByte) and returns its
// contents, which alias the input.
func (r *payloadReader) plain() ([]byte, bool) {
	if !r.take('"') {
		return nil, false
	}
	start := r.i
	for r.i < len(r.b) && plainByte(r.b[r.i]) {
		r.i++
	}
	s := r.b[start:r.i]
	return s, r.take('"')
}

// object reads an object whose members field reads, and reports false on
// a repeated member (seen tracks them by the bit field returns).
func (r *payloadReader) object(field func(name []byte) (bit int, ok bool)) bool {
	if !r.take('{') {
		return false
	}
	if r.take('}') {
		return true
	}
	seen := 0
	for {
		name, ok := r.plain()
		if !ok || !r.take(':') {
			return false
		}
		bit, ok := field(name)
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		if r.take('}') {
			return true
		}
		if !r.take(',') {
			return false
		}
	}
}

func (r *payloadReader) payload(p *chord.Payload) bool {
	return r.object(func(name []byte) (int, bool) {
		switch string(name) {
		case "pred":
			return 1, r.peer(&p.Pred)
		case "succs":
			return 2, r.peers(&p.Succs)
		case "hint":
			return 4, r.peer(&p.Hint)
		case "done":
			if r.literal("true") {
				p.Done = true
				return 8, true
			}
			return 8, r.literal("false")
		case "owner":
			return 16, r.peer(&p.Owner)
		case "next":
			return 32, r.peers(&p.Next)
		}
		return 0, false
	})
}

func (r *payloadReader) peer(p *chord.Peer) bool {
	return r.object(func(name []byte) (int, bool) {
		v, ok := r.plain()
		if !ok {
			return 0, false
		}
		switch string(name) {
		case "id":
			return 1, p.ID.UnmarshalText(v) == nil
		case "addr":
			p.Addr = string(v)
			return 2, true
		}
		return 0, false
	})
}

func (r *payloadReader) peers(ps *[]chord.Peer) bool {
	if !r.take('[') {
		return false
	}
	out := make([]chord.Peer, 0, 16)
	if !r.take(']') {
		for {
			var p chord.Peer
			if !r.peer(&p) {
				return false
			}
			out = append(out, p)
			if r.take(']') {
				break
			}
			if !r.take(',') {
				return false
			}
		}
	}
	*ps = out
	return true
}
