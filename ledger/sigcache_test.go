package ledger

import (
	"bytes"
	"crypto/sha256"
	"testing"
)

func sha256Of(b []byte) [sha256.Size]byte { return sha256.Sum256(b) }

// TestCheckedRecordsSkipOnlyIdenticalBytes: bytes whose signature verified
// once pass again without a second verify, and any other bytes — a flipped
// bit in the signature or in the data, even right after the good ones were
// seen — are checked in full and refused.
func TestCheckedRecordsSkipOnlyIdenticalBytes(t *testing.T) {
	f := newFixture(t)
	rc := f.put("sensor-1", `{"t":21.5}`)
	raw, err := f.st.Record(rc.TxID)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the second time from the cache
		r, err := ParseRecord(raw)
		if err != nil || r.CheckSelf(raw) != nil {
			t.Fatalf("round %d: a good record: %v", i, err)
		}
	}
	sum := sha256Of(raw)
	if !verified.has(sum) {
		t.Fatal("a checked record is not remembered")
	}
	sigAt := bytes.Index(raw, []byte(`"signature":"`)) + len(`"signature":"`)
	for name, at := range map[string]int{"signature": sigAt, "data": bytes.Index(raw, []byte(`21.5`)) + 1} {
		bad := bytes.Clone(raw)
		if bad[at] == '1' {
			bad[at] = '2'
		} else {
			bad[at] = '1'
		}
		r, err := ParseRecord(bad)
		if err != nil {
			continue // refused before any signature check
		}
		if err := r.CheckSelf(bad); err == nil {
			t.Errorf("a record with a changed %s passed", name)
		}
		if verified.has(sha256Of(bad)) {
			t.Errorf("a record with a changed %s was remembered", name)
		}
	}
	// A record parsed from other bytes cannot borrow the good bytes' pass.
	r, _ := ParseRecord(raw)
	r.Thing = "sensor-2"
	if r.CheckSelf(raw) == nil {
		t.Error("a record that is not the bytes passed on the bytes' hash")
	}
}

// BenchmarkCheckSelf prints the cost of checking a record the first time and
// again (the replicas' and history holders' common case).
func BenchmarkCheckSelf(b *testing.B) {
	f := newFixture(b)
	rc := f.put("sensor-1", `{"t":21.5,"rh":40}`)
	raw, _ := f.st.Record(rc.TxID)
	r, _ := ParseRecord(raw)
	sum := sha256Of(raw)
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			verified.mu.Lock()
			delete(verified.cur, sum)
			delete(verified.old, sum)
			verified.mu.Unlock()
			if err := r.CheckSelf(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("again", func(b *testing.B) {
		for b.Loop() {
			if err := r.CheckSelf(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
