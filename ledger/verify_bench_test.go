package ledger

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flownode/flownode/store"
)

// BenchmarkVerifyIncremental prints the cost of an incremental verification after 1k
// new records (and one block sealing them) on a 100k-record store, beside a full
// verification of that store. The store is built once, by Append in batches of 1000
// on the laptop profile, a block every 10k records. Figures only: time is never
// asserted.
func BenchmarkVerifyIncremental(b *testing.B) {
	const (
		stored = 100_000
		batch  = 1000
		added  = 1000
	)
	f := benchFixture(b)
	ctx := context.Background()
	rs := make([]Reading, batch)
	for i := range rs {
		rs[i] = Reading{Thing: fmt.Sprintf("sensor-%d", i%50), Data: payload}
	}
	var at int64
	mine := func() {
		at += int64(time.Second)
		if err := f.l.Extend(ctx, 1, time.Unix(0, time.Now().UnixNano()+at)); err != nil {
			b.Fatal(err)
		}
	}
	build := time.Now()
	for i := 0; i < stored/batch; i++ {
		if _, err := f.l.Append(ctx, rs); err != nil {
			b.Fatal(err)
		}
		if i%10 == 9 {
			mine()
		}
	}
	b.Logf("built a %d-record store in %v", stored, time.Since(build).Round(time.Millisecond))
	verify := func(full bool) (*Report, time.Duration) {
		start := time.Now()
		rep, err := VerifyIncremental(ctx, f.st, f.g, testProof, f.id.ID, full)
		if err != nil || !rep.Valid {
			b.Fatalf("%+v %v", rep, err)
		}
		return rep, time.Since(start)
	}
	b.ResetTimer()
	for range b.N {
		full, fullTime := verify(true)
		for i := 0; i < added/batch; i++ {
			if _, err := f.l.Append(ctx, rs); err != nil {
				b.Fatal(err)
			}
		}
		mine()
		inc, incTime := verify(false)
		if inc.Mode != ModeIncremental || inc.CheckedRecords != added {
			b.Fatalf("incremental run: %+v", inc)
		}
		_, idleTime := verify(false)
		count := func(prefix byte) time.Duration {
			start := time.Now()
			if _, err := f.st.Count(prefix); err != nil {
				b.Fatal(err)
			}
			return time.Since(start)
		}
		countTime, countRecords := count(store.PrefixKeyIndex), count(store.PrefixRecord)
		b.ReportMetric(float64(fullTime.Milliseconds()), "full-ms")
		b.ReportMetric(float64(incTime.Microseconds())/1000, "incremental-ms")
		b.Logf("full verify of %d records, %d blocks: %v; incremental after %d new records and %d block: %v (counting key-index entries, part of it, takes %v alone; counting record keys would take %v); again with nothing new: %v",
			full.Records, full.Blocks, fullTime.Round(time.Millisecond), inc.CheckedRecords, inc.CheckedBlocks,
			incTime.Round(time.Microsecond), countTime.Round(time.Microsecond), countRecords.Round(time.Microsecond), idleTime.Round(time.Microsecond))
	}
}

// BenchmarkStoredRead prints what checking a record before serving it adds to a read
// from the store: the read alone, the read and CheckStoredBytes for a pair checked
// before (a repeat read), and for bytes never checked (the first read).
func BenchmarkStoredRead(b *testing.B) {
	f := newFixture(b)
	rc := f.put("sensor-1", string(payload))
	read := func(b *testing.B) []byte {
		raw, err := f.st.Record(rc.TxID)
		if err != nil {
			b.Fatal(err)
		}
		return raw
	}
	b.Run("read", func(b *testing.B) {
		for b.Loop() {
			read(b)
		}
	})
	entry := store.RecordKey(rc.TxID)
	b.Run("read+check-cached", func(b *testing.B) {
		for b.Loop() {
			if err := CheckStoredBytes(f.st, entry, rc.TxID, read(b)); err != nil {
				b.Fatal(err)
			}
		}
	})
	raw := read(b)
	b.Run("check-cached", func(b *testing.B) {
		for b.Loop() {
			if err := CheckStoredBytes(f.st, entry, rc.TxID, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("read+check-uncached", func(b *testing.B) {
		for b.Loop() {
			for _, c := range []*checkedRecords{&verified, &servedChecked} {
				c.mu.Lock()
				clear(c.cur)
				clear(c.old)
				c.mu.Unlock()
			}
			if err := CheckStoredBytes(f.st, entry, rc.TxID, read(b)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
