package rpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// scanner walks JSON that validJSON has already accepted. Knowing the input
// is well formed keeps it small; it still checks every index, so a bug shows
// as an error, never a panic. It exists because encoding/json matches field
// names case-insensitively and lets a repeated field win silently, and the
// wire format is meant to be exact.
type scanner struct {
	b []byte
	i int
}

var errTruncated = errors.New("unexpected end of input")

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// enter reads the '{' that opens an object.
func (s *scanner) enter(what string) error {
	if s.peek() != '{' {
		s.skip()
		return fmt.Errorf("%s: want a JSON object", what)
	}
	s.i++
	return nil
}

// next reads the next key of the object entered (first: right after enter)
// and the colon after it, leaving the scanner on the key's value. It
// reports false at the end of the object. The key aliases the input unless
// it had escapes.
func (s *scanner) next(first bool) (key []byte, more bool, err error) {
	switch s.peek() {
	case '}':
		s.i++
		return nil, false, nil
	case ',':
		if first {
			return nil, false, errTruncated
		}
		s.i++
	default:
		if !first {
			return nil, false, errTruncated
		}
	}
	key, err = s.strBytes()
	if err != nil {
		return nil, false, err
	}
	if s.peek() != ':' {
		return nil, false, errTruncated
	}
	s.i++
	s.ws()
	return key, true, nil
}

// strBytes reads a string token and returns its contents, aliasing the
// input when it has no escapes.
func (s *scanner) strBytes() ([]byte, error) {
	if s.peek() != '"' {
		return nil, errors.New("want a string")
	}
	start := s.i
	s.skipString()
	raw := s.b[start:s.i]
	if len(raw) < 2 || raw[len(raw)-1] != '"' {
		return nil, errTruncated
	}
	if !utf8.Valid(raw) {
		return nil, errors.New("string is not valid UTF-8")
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1], nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return []byte(v), nil
}

// str reads a string token.
func (s *scanner) str() (string, error) {
	b, err := s.strBytes()
	return string(b), err
}

// stringValue reads a value that must be a string; field names it in errors.
func (s *scanner) stringValue(field, sub string) (string, error) {
	if s.peek() != '"' {
		s.skip()
		return "", fmt.Errorf("%s%s: want a string", field, sub)
	}
	return s.str()
}

// idValue reads a request id: a decimal uint64 in a JSON string, without sign
// or leading zeros (the form encoding/json's ",string" option writes).
func (s *scanner) idValue() (uint64, error) {
	if s.peek() != '"' {
		s.skip()
		return 0, errors.New(`id: want a decimal number in a string, like "42"`)
	}
	v, err := s.str()
	if err != nil {
		return 0, err
	}
	if v == "" || len(v) > 20 || (len(v) > 1 && v[0] == '0') || v[0] < '0' || v[0] > '9' {
		return 0, fmt.Errorf("id %q: want a decimal uint64 without sign or leading zeros", clip(v))
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("id %q: want a decimal uint64 without sign or leading zeros", clip(v))
	}
	return n, nil
}

// rawValue returns a copy of the next value; JSON null reads as nil.
func (s *scanner) rawValue() json.RawMessage {
	start, end := s.skip()
	v := s.b[start:end]
	if bytes.Equal(v, []byte("null")) {
		return nil
	}
	return bytes.Clone(v)
}

// skip passes over one value and returns its span.
func (s *scanner) skip() (start, end int) {
	s.ws()
	start = s.i
	depth := 0
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.skipString()
		case c == '{' || c == '[':
			depth++
			s.i++
		case c == '}' || c == ']':
			if depth == 0 {
				return start, s.i // the end of the enclosing value
			}
			depth--
			s.i++
		case depth == 0 && (c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return start, s.i
		default:
			s.i++
		}
		if depth == 0 && (c == '"' || c == '}' || c == ']') {
			return start, s.i
		}
	}
	return start, s.i
}

// skipString passes over a string token: to the first quote not escaped by
// an odd number of backslashes.
func (s *scanner) skipString() {
	start := s.i + 1
	s.i = start
	for {
		j := bytes.IndexByte(s.b[s.i:], '"')
		if j < 0 {
			s.i = len(s.b)
			return
		}
		s.i += j + 1
		n := 0
		for k := s.i - 2; k >= start && s.b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return
		}
	}
}
