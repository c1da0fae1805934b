package rpc

import (
	"errors"
	"fmt"
)

// Fields returns the raw values of the named top-level fields of the JSON
// object data, in the order of names (nil for an absent field or a null),
// aliasing data. It refuses what a strict decoder would: invalid JSON,
// trailing data, a value that is not an object, an unknown or a repeated
// field (names match exactly, not case-insensitively as encoding/json's do).
//
// It is for the layers above the envelope that route a message on one field
// and hand another on: one fast pass, where json.Unmarshal into
// json.RawMessage fields scans the nested data three times (validation,
// decoding, skipping) with encoding/json's slower scanner.
func Fields(data []byte, names ...string) ([][]byte, error) {
	if !validJSON(data) {
		return nil, errors.New("not valid JSON (or trailing data after it)")
	}
	s := &scanner{b: data}
	if err := s.enter("message"); err != nil {
		return nil, err
	}
	out := make([][]byte, len(names))
	seen := make([]bool, len(names))
	for first := true; ; first = false {
		key, more, err := s.next(first)
		if err != nil {
			return nil, err
		}
		if !more {
			return out, nil
		}
		i := indexOf(names, key)
		if i < 0 {
			return nil, fmt.Errorf("unknown field %q", clip(string(key)))
		}
		if seen[i] {
			return nil, fmt.Errorf("field %q appears twice", key)
		}
		seen[i] = true
		start, end := s.skip()
		if v := data[start:end]; string(v) != "null" {
			out[i] = v
		}
	}
}

// Elements returns the raw elements of the JSON array data, aliasing data;
// null is an empty array. It refuses invalid JSON, trailing data and any
// other value.
func Elements(data []byte) ([][]byte, error) {
	if !validJSON(data) {
		return nil, errors.New("not valid JSON (or trailing data after it)")
	}
	s := &scanner{b: data}
	switch s.peek() {
	case 'n':
		return nil, nil
	case '[':
		s.i++
	default:
		return nil, errors.New("want a JSON array")
	}
	var out [][]byte
	if s.peek() == ']' {
		return out, nil
	}
	for {
		start, end := s.skip()
		out = append(out, data[start:end])
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			return out, nil
		default:
			return nil, errTruncated
		}
	}
}

func indexOf(names []string, key []byte) int {
	for i, n := range names {
		if n == string(key) {
			return i
		}
	}
	return -1
}
