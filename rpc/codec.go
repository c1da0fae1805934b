package rpc

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// DefaultMaxSize is the largest encoded envelope a Codec accepts unless told
// otherwise: 64 KiB.
const DefaultMaxSize = 64 << 10

// Codec encodes and decodes envelopes as JSON, strictly: exact field names,
// no unknown or repeated fields, no trailing data, a size limit, known types
// only, and well-formed ids, keys and addresses. Decode never panics on any
// input. A Codec is safe for concurrent use.
type Codec struct {
	known map[string]bool
	names map[string]string // known types, to share one copy of each name
	max   int
}

// NewCodec returns a codec that accepts the given message types (plus
// TypeError) and envelopes of at most maxSize encoded bytes (DefaultMaxSize
// when maxSize <= 0).
func NewCodec(known []string, maxSize int) *Codec {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	c := &Codec{known: map[string]bool{TypeError: true}, names: map[string]string{TypeError: TypeError}, max: maxSize}
	for _, t := range known {
		if t != "" {
			c.known[t] = true
			c.names[t] = t
		}
	}
	return c
}

// MaxSize returns the largest encoded envelope the codec accepts.
func (c *Codec) MaxSize() int { return c.max }

// Known reports whether the codec accepts message type t.
func (c *Codec) Known(t string) bool { return c.known[t] }

// Check reports the first reason env could not be sent or received.
func (c *Codec) Check(env *Envelope) error {
	if env == nil {
		return fmt.Errorf("%w: nil envelope", ErrMalformed)
	}
	if env.Type == "" {
		return fmt.Errorf("%w: no type", ErrMalformed)
	}
	if !c.known[env.Type] {
		return fmt.Errorf("%w: %q", ErrUnknownType, clip(env.Type))
	}
	if err := checkPeer("from", env.From, true); err != nil {
		return err
	}
	if err := checkPeer("to", env.To, false); err != nil {
		return err
	}
	if env.Key != "" && !isHexID(env.Key) {
		return checkHexID("key", env.Key)
	}
	if env.Type == TypeError && env.Error == "" {
		return fmt.Errorf("%w: %s without an error message", ErrMalformed, TypeError)
	}
	return nil
}

// checkPeer checks a peer; an optional one may be zero or carry only an ID or
// only an address (a bootstrap join knows the address, not the ID).
func checkPeer(field string, p Peer, required bool) error {
	if (required || p.ID != "") && !isHexID(p.ID) {
		return checkHexID(field+".id", p.ID)
	}
	if required || p.Addr != "" {
		if _, _, err := SplitAddr(p.Addr); err != nil {
			return fmt.Errorf("%w: %s.addr: %v", ErrMalformed, field, err)
		}
	}
	return nil
}

// Encode checks env and returns its JSON form, compact, with fields in
// declaration order (the form encoding/json produces, without HTML escaping).
func (c *Codec) Encode(env *Envelope) ([]byte, error) {
	if err := c.Check(env); err != nil {
		return nil, err
	}
	// Refuse before allocating when the variable parts alone are too big.
	if n := len(env.Payload) + len(env.Error); n > c.max {
		return nil, fmt.Errorf("%w: %s %d: payload and error are %d bytes, the limit is %d", ErrTooLarge, env.Type, env.ID, n, c.max)
	}
	b := make([]byte, 0, 256+len(env.Type)+len(env.From.Addr)+len(env.To.Addr)+len(env.Payload)+len(env.Error))
	b = append(b, `{"type":`...)
	b = appendString(b, env.Type)
	b = append(b, `,"id":"`...)
	b = strconv.AppendUint(b, env.ID, 10)
	b = append(b, `","from":`...)
	b = appendPeer(b, env.From)
	if !env.To.IsZero() {
		b = append(b, `,"to":`...)
		b = appendPeer(b, env.To)
	}
	if env.Key != "" {
		b = append(b, `,"key":"`...)
		b = append(b, env.Key...)
		b = append(b, '"')
	}
	if len(env.Payload) > 0 {
		b = append(b, `,"payload":`...)
		var err error
		if b, err = compactJSON(b, env.Payload); err != nil {
			return nil, fmt.Errorf("%w: payload is not valid JSON", ErrMalformed)
		}
	}
	if env.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, env.Error)
	}
	b = append(b, '}')
	if len(b) > c.max {
		return nil, fmt.Errorf("%w: %s %d encodes to %d bytes, the limit is %d", ErrTooLarge, env.Type, env.ID, len(b), c.max)
	}
	return b, nil
}

func appendPeer(b []byte, p Peer) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, p.ID)
	b = append(b, `,"addr":`...)
	b = appendString(b, p.Addr)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does, so the output is always valid JSON.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// Decode parses and checks one envelope. Errors wrap ErrTooLarge, ErrMalformed
// or ErrUnknownType and say which field is wrong.
func (c *Codec) Decode(data []byte) (*Envelope, error) {
	if len(data) > c.max {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(data), c.max)
	}
	if !validJSON(data) {
		return nil, fmt.Errorf("%w: not valid JSON (or trailing data after it)", ErrMalformed)
	}
	env := new(Envelope)
	if err := c.decodeEnvelope(&scanner{b: data}, env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := c.Check(env); err != nil {
		return nil, err
	}
	return env, nil
}

// The envelope's fields, as bits for repeated-field detection.
const (
	fType = 1 << iota
	fID
	fFrom
	fTo
	fKey
	fPayload
	fError
)

func (c *Codec) decodeEnvelope(s *scanner, env *Envelope) error {
	if err := s.enter("envelope"); err != nil {
		return err
	}
	seen := 0
	for first := true; ; first = false {
		key, more, err := s.next(first)
		if err != nil || !more {
			return err
		}
		var bit int
		switch string(key) {
		case "type":
			bit = fType
			env.Type, err = c.typeValue(s)
		case "id":
			bit = fID
			env.ID, err = s.idValue()
		case "from":
			bit = fFrom
			err = decodePeer(s, "from", &env.From)
		case "to":
			bit = fTo
			err = decodePeer(s, "to", &env.To)
		case "key":
			bit = fKey
			env.Key, err = s.stringValue("key", "")
			if err == nil && env.Key == "" {
				err = errors.New("key is empty: omit it instead")
			}
		case "payload":
			bit = fPayload
			env.Payload = s.rawValue()
		case "error":
			bit = fError
			env.Error, err = s.stringValue("error", "")
		default:
			return fmt.Errorf("unknown field %q", clip(string(key)))
		}
		if seen&bit != 0 {
			return fmt.Errorf("field %q appears twice", key)
		}
		seen |= bit
		if err != nil {
			return err
		}
	}
}

// typeValue reads the type, sharing the codec's copy of a known name.
func (c *Codec) typeValue(s *scanner) (string, error) {
	if s.peek() != '"' {
		s.skip()
		return "", errors.New("type: want a string")
	}
	b, err := s.strBytes()
	if err != nil {
		return "", err
	}
	if name, ok := c.names[string(b)]; ok {
		return name, nil
	}
	return string(b), nil
}

func decodePeer(s *scanner, field string, p *Peer) error {
	if err := s.enter(field); err != nil {
		return err
	}
	seen := 0
	for first := true; ; first = false {
		key, more, err := s.next(first)
		if err != nil || !more {
			return err
		}
		var bit int
		switch string(key) {
		case "id":
			bit = 1
			p.ID, err = s.stringValue(field, ".id")
		case "addr":
			bit = 2
			p.Addr, err = s.stringValue(field, ".addr")
		default:
			return fmt.Errorf("unknown field %q in %s", clip(string(key)), field)
		}
		if seen&bit != 0 {
			return fmt.Errorf("field %q appears twice in %s", key, field)
		}
		seen |= bit
		if err != nil {
			return err
		}
	}
}

// peekID finds the "id" of a frame that failed to decode, so that the error
// reply can still be correlated. It only succeeds on valid JSON objects.
func peekID(data []byte) (uint64, bool) {
	if !validJSON(data) {
		return 0, false
	}
	s := &scanner{b: data}
	if s.enter("envelope") != nil {
		return 0, false
	}
	for first := true; ; first = false {
		key, more, err := s.next(first)
		if err != nil || !more {
			return 0, false
		}
		if string(key) == "id" {
			id, err := s.idValue()
			return id, err == nil
		}
		s.skip()
	}
}
