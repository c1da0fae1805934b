package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

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

// MaxDataDepth bounds how deeply a reading's JSON may nest.
const MaxDataDepth = 32

// MaxDataBytes bounds one reading's JSON: readings are sensor values, and a record is
// held in memory whole on a 128 MB gateway.
const MaxDataBytes = 64 << 10

// CanonicalData checks that data is one JSON value that survives canonicalization
// unchanged in meaning and returns its canonical bytes. It rejects numbers a double
// cannot hold exactly (integers beyond 2^53, say) rather than store a value the device
// did not send.
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

// checkNumbers checks one JSON value's nesting depth and that every number in it is
// exactly representable after JCS. json.Valid settles the syntax first, so a plain byte
// scan then finds every number literal: outside strings, only numbers start with '-' or
// a digit. (A json.Decoder token walk did the same at several times the cost.)
func checkNumbers(data []byte) error {
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v) // only to say what is wrong
		if err == nil {
			err = errors.New("invalid JSON")
		}
		if strings.Contains(err.Error(), "after top-level value") {
			return errors.New("data must be a single JSON value")
		}
		return fmt.Errorf("data is not valid JSON: %w", err)
	}
	depth := 0
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
		case c == '{' || c == '[':
			if depth++; depth > MaxDataDepth {
				return fmt.Errorf("data nests deeper than %d levels", MaxDataDepth)
			}
		case c == '}' || c == ']':
			depth--
		case c == '-' || (c >= '0' && c <= '9'):
			j := i
			for j < len(data) && strings.IndexByte("+-0123456789.eE", data[j]) >= 0 {
				j++
			}
			if err := checkNumber(json.Number(data[i:j])); err != nil {
				return err
			}
			i = j - 1
		}
	}
	return nil
}

// checkNumber refuses a number whose value would change in the canonical form: JCS
// reads it as an IEEE double and writes the shortest text that reads back as that
// double, so the two texts must name the same exact value.
func checkNumber(n json.Number) error {
	s := string(n)
	// Any decimal with at most 15 significant digits survives a double exactly.
	if len(s) <= 15 && !strings.ContainsAny(s, "eE") {
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return fmt.Errorf("number %s is out of range; send it as a string", s)
	}
	in, ok1 := new(big.Rat).SetString(s)
	out, ok2 := new(big.Rat).SetString(strconv.FormatFloat(f, 'g', -1, 64))
	if !ok1 || !ok2 || in.Cmp(out) != 0 {
		return fmt.Errorf("number %s cannot be kept exactly (a double holds about 16 significant digits, integers up to 2^53); send it as a string", s)
	}
	return nil
}
