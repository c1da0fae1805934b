package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/gowebpki/jcs"
)

// Canonical returns the RFC 8785 (JCS) canonical form of a JSON value: the bytes that
// are hashed and signed everywhere in the ledger.
func Canonical(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jcs.Transform(raw)
}

// maxExactInt is the largest integer an IEEE double holds exactly. JCS reads every
// number as a double, so a larger integer would silently change in a signed record.
const maxExactInt = 1 << 53

// MaxDataDepth bounds how deeply a reading's JSON may nest.
const MaxDataDepth = 32

// MaxDataBytes bounds one reading's JSON: readings are sensor values, and a record is
// held in memory whole on a 128 MB gateway.
const MaxDataBytes = 64 << 10

// CanonicalData checks that data is one JSON value that survives canonicalization
// unchanged in meaning and returns its canonical bytes. It rejects integers beyond
// 2^53 and numbers out of double range rather than store a value the device did not send.
func CanonicalData(data []byte) ([]byte, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, errors.New("data is empty; send a JSON value")
	}
	if len(data) > MaxDataBytes {
		return nil, fmt.Errorf("data is %d bytes; a reading may hold at most %d", len(data), MaxDataBytes)
	}
	if err := checkNumbers(data); err != nil {
		return nil, err
	}
	out, err := jcs.Transform(data)
	if err != nil {
		return nil, fmt.Errorf("data is not valid JSON: %w", err)
	}
	return out, nil
}

// checkNumbers walks the JSON tokens once, checking nesting depth and that every
// number is exactly representable after JCS.
func checkNumbers(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	depth := 0
	values := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("data is not valid JSON: %w", err)
		}
		switch t := tok.(type) {
		case json.Delim:
			if t == '{' || t == '[' {
				if depth == 0 {
					values++
				}
				depth++
				if depth > MaxDataDepth {
					return fmt.Errorf("data nests deeper than %d levels", MaxDataDepth)
				}
			} else {
				depth--
			}
		case json.Number:
			if depth == 0 {
				values++
			}
			if err := checkNumber(t); err != nil {
				return err
			}
		default:
			if depth == 0 {
				values++
			}
		}
		if values > 1 {
			return errors.New("data must be a single JSON value")
		}
	}
	return nil
}

func checkNumber(n json.Number) error {
	s := string(n)
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		if i > maxExactInt || i < -maxExactInt {
			return fmt.Errorf("number %s is too large to keep exactly (limit ±2^53); send it as a string", s)
		}
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		// ParseInt failed too: an integer beyond int64 or a float out of range.
		return fmt.Errorf("number %s is too large to keep exactly (limit ±2^53); send it as a string", s)
	}
	if f == math.Trunc(f) && math.Abs(f) > maxExactInt {
		return fmt.Errorf("number %s is too large to keep exactly (limit ±2^53); send it as a string", s)
	}
	return nil
}
