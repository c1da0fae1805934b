package store

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"testing"
)

func TestTimeEncodingOrder(t *testing.T) {
	times := []int64{math.MinInt64, math.MinInt64 + 1, -1e18, -2, -1, 0, 1, 2, 1e18, math.MaxInt64}
	var keys [][]byte
	for _, tm := range times {
		k, err := ThingIndexKey("th", tm, [32]byte{})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		if _, got, _, err := parseThingIndexKey(k); err != nil || got != tm {
			t.Errorf("time %d decodes as %d, %v", tm, got, err)
		}
	}
	if !slices.IsSortedFunc(keys, bytes.Compare) {
		t.Error("thing index keys do not sort in time order")
	}
}

func TestKeyLayouts(t *testing.T) {
	br := [20]byte{1}
	id := [32]byte{2}
	tk, _ := ThingIndexKey("abc", 0, id)
	for _, k := range []struct {
		key  []byte
		len  int
		kind byte
	}{
		{BlockKey(br, 1), 29, 'b'},
		{BlockHashKey(id), 33, 'h'},
		{RecordKey(id), 33, 'r'},
		{KeyIndexKey(br, id), 53, 'k'},
		{tk, 1 + 2 + 3 + 8 + 32, 't'},
		{AttachmentKey(br, 1, 2), 37, 'a'},
		{PointerKey(id), 33, 'x'},
		{MetaKey("genesis"), 8, 'm'},
	} {
		if len(k.key) != k.len || k.key[0] != k.kind {
			t.Errorf("key %q: length %d, want %d with prefix %c", k.key, len(k.key), k.len, k.kind)
		}
	}
	if b, no, err := parseBlockKey(BlockKey(br, 7)); err != nil || b != br || no != 7 {
		t.Errorf("parseBlockKey = %x %d %v", b, no, err)
	}
	if b, no, seq, err := parseAttachmentKey(AttachmentKey(br, 7, 9)); err != nil || b != br || no != 7 || seq != 9 {
		t.Errorf("parseAttachmentKey = %x %d %d %v", b, no, seq, err)
	}
	if b, no, ok := parseBlockRef(BlockRef(br, 7)); !ok || b != br || no != 7 {
		t.Errorf("parseBlockRef = %x %d %v", b, no, ok)
	}
	if _, err := ThingIndexKey(string(make([]byte, MaxThingLen+1)), 0, id); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too long thing: %v", err)
	}
}

// TestParseRejectsEveryWrongLength feeds each parser every truncation and one
// extension of a valid key: an error each time, never a panic.
func TestParseRejectsEveryWrongLength(t *testing.T) {
	tk, _ := ThingIndexKey("abc", 5, [32]byte{})
	parsers := map[string]struct {
		valid []byte
		parse func([]byte) error
	}{
		"block":      {BlockKey([20]byte{}, 1), func(k []byte) error { _, _, err := parseBlockKey(k); return err }},
		"record":     {RecordKey([32]byte{}), func(k []byte) error { _, err := parseRecordKey(k); return err }},
		"key index":  {KeyIndexKey([20]byte{}, [32]byte{}), func(k []byte) error { _, _, err := parseKeyIndexKey(k); return err }},
		"thing":      {tk, func(k []byte) error { _, _, _, err := parseThingIndexKey(k); return err }},
		"attachment": {AttachmentKey([20]byte{}, 1, 2), func(k []byte) error { _, _, _, err := parseAttachmentKey(k); return err }},
		"pointer":    {PointerKey([32]byte{}), func(k []byte) error { _, err := parsePointerKey(k); return err }},
	}
	for name, p := range parsers {
		if err := p.parse(p.valid); err != nil {
			t.Errorf("%s: valid key: %v", name, err)
		}
		for n := range len(p.valid) {
			if err := p.parse(p.valid[:n]); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: %d-byte key: %v", name, n, err)
			}
		}
		if err := p.parse(append(slices.Clone(p.valid), 0)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: long key: %v", name, err)
		}
	}
}
