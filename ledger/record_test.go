package ledger

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gowebpki/jcs"
)

// randomData makes JSON values that stress canonicalization: unordered and non-ASCII
// keys, escapes, HTML characters, number forms.
func randomData(r *rand.Rand, depth int) string {
	switch k := r.IntN(8); {
	case depth > 3 || k == 0:
		nums := []string{"0", "-0", "1e3", "1.50", "-2.5e-7", "123456789", "9007199254740992", "0.1", "1E+2"}
		return nums[r.IntN(len(nums))]
	case k == 1:
		strs := []string{`"a<b>&c"`, `"\u00e9t\u00e9"`, `"line\nbreak\ttab"`, `"quote\"back\\slash"`, `"\ud83d\ude00"`, `"\u0001"`, `"/"`, `"€"`}
		return strs[r.IntN(len(strs))]
	case k == 2:
		return []string{"true", "false", "null"}[r.IntN(3)]
	case k < 5:
		n := r.IntN(4)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = randomData(r, depth+1)
		}
		return "[ " + strings.Join(parts, " , ") + " ]"
	default:
		keys := []string{"b", "a", "é", "€", "\u00e9", "aa", "A", "10", "1", "ä", "z<"}
		n := r.IntN(4)
		parts := []string{}
		seen := map[string]bool{}
		for i := 0; i < n; i++ {
			key := keys[r.IntN(len(keys))]
			if seen[key] {
				continue
			}
			seen[key] = true
			parts = append(parts, fmt.Sprintf("%q : %s", key, randomData(r, depth+1)))
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	}
}

// TestRecordEncodingIsJCS holds the record encoder to a general RFC 8785 implementation
// over random records: the fast path must produce exactly the canonical bytes.
func TestRecordEncodingIsJCS(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	id, _ := NewIdentity(bytes.Repeat([]byte{7}, 32))
	things := []string{"sensor-1", "urn:dev:ops:32473-WoTLamp-1234", "a.b_c~d", "Z9"}
	device := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32))
	for i := 0; i < 2000; i++ {
		data, err := CanonicalData([]byte(randomData(r, 0)))
		if err != nil {
			t.Fatal(err)
		}
		rec := &Record{Key: Key{byte(i)}, HData: Key{1, byte(i)}, Salt: bytes.Repeat([]byte{byte(i)}, SaltSize),
			Thing: things[i%len(things)], Time: r.Int64() - r.Int64(), Block: BlockRef{Branch: id.ID, No: r.Uint64(), Hash: Hash{3}},
			Seq: r.Uint64(), Data: data, TxID: Hash{byte(i), 9}}
		if i%2 == 1 { // format 2: a device signature, between data and hData
			rec.Device, err = SignDevice(device, rec.Thing, data)
			if err != nil {
				t.Fatal(err)
			}
			msg := DeviceMessage(rec.Thing, data)
			if want, err := jcs.Transform(msg); err != nil || !bytes.Equal(msg, want) {
				t.Fatalf("device message %d is not canonical (%v):\n got %s\nwant %s", i, err, msg, want)
			}
		}
		raw, err := SignRecord(rec, id)
		if err != nil {
			t.Fatal(err)
		}
		want, err := jcs.Transform(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, want) {
			t.Fatalf("record %d is not canonical:\n got %s\nwant %s", i, raw, want)
		}
		parsed, err := ParseRecord(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := parsed.CheckSelf(raw); err != nil && !strings.Contains(err.Error(), "hData") {
			t.Fatalf("record %d: %v", i, err)
		}
	}
}

// TestNonCanonicalDataIsRejected: a record whose data is valid JSON but not in
// canonical form fails CheckSelf even if everything else were re-signed.
func TestNonCanonicalDataIsRejected(t *testing.T) {
	id, _ := NewIdentity(bytes.Repeat([]byte{7}, 32))
	rec := &Record{Thing: "t", Salt: make([]byte, SaltSize), Block: BlockRef{Branch: id.ID}, Data: []byte(`{"b":1,"a":2}`)}
	rec.HData = DataHash(rec.Data, rec.Time, rec.Salt)
	rec.TxID = TxID(rec.Block.Hash, rec.HData)
	raw, err := SignRecord(rec, id)
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := ParseRecord(raw)
	if err := parsed.CheckSelf(raw); err == nil || !strings.Contains(err.Error(), "record data") {
		t.Fatalf("err = %v", err)
	}
}
