package store

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchValue is a 300-byte record, the payload size the store was first measured with.
var benchValue = recordValue([32]byte{})

// benchRecord is cheap to make, so that the benchmarks measure the store.
func benchRecord(i uint64) Record {
	var r Record
	binary.BigEndian.PutUint64(r.TxID[:], i)
	binary.BigEndian.PutUint64(r.Key[:], i%1000)
	r.Thing = "urn:dev:bench"
	r.Time = int64(i)
	r.Branch = branchID(1)
	r.BlockNo, r.Seq = i/1000, i%1000
	r.Value = benchValue
	return r
}

func openBench(b *testing.B, o Options) *Store {
	s, err := Open(b.TempDir(), o, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// report prints durable records/s, Badger commits (each synced) per second
// and how many Writes shared one commit.
func report(b *testing.B, s *Store, records int) {
	st := s.Stats()
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "rec/s")
	b.ReportMetric(float64(st.Groups)/b.Elapsed().Seconds(), "syncs/s")
	b.ReportMetric(st.MeanGroupSize, "writes/sync")
}

// BenchmarkWrite measures durable ingest: every Write returns only after its
// records are synced to disk.
func BenchmarkWrite(b *testing.B) {
	ctx := context.Background()
	for _, o := range []Options{GatewayOptions(), LaptopOptions()} {
		profile := o.Profile
		// One writer, one record per Write: one sync per record.
		b.Run(profile+"/single", func(b *testing.B) {
			s := openBench(b, o)
			for i := range uint64(b.N) {
				if err := s.Write(ctx, Write{Records: []Record{benchRecord(i)}}); err != nil {
					b.Fatal(err)
				}
			}
			report(b, s, b.N)
		})
		// 32 writers, one record per Write: group commit shares the syncs.
		b.Run(profile+"/concurrent32", func(b *testing.B) {
			s := openBench(b, o)
			var next atomic.Uint64
			var wg sync.WaitGroup
			for range 32 {
				wg.Go(func() {
					for i := next.Add(1); i <= uint64(b.N); i = next.Add(1) {
						if err := s.Write(ctx, Write{Records: []Record{benchRecord(i)}}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			report(b, s, b.N)
		})
		// One writer, 1000 records per Write.
		b.Run(profile+"/batch1000", func(b *testing.B) {
			s := openBench(b, o)
			recs := make([]Record, 1000)
			for n := range uint64(b.N) {
				for i := range recs {
					recs[i] = benchRecord(n*1000 + uint64(i))
				}
				if err := s.Write(ctx, Write{Records: recs}); err != nil {
					b.Fatal(err)
				}
			}
			report(b, s, b.N*len(recs))
		})
	}
}

// BenchmarkFsync measures the floor under every durable write on this disk:
// one op appends a record-sized value to a file in the benchmark's temporary
// directory (where BenchmarkWrite's stores live) and syncs it. It prints the
// median and 99th percentile time of one append+fsync and fsyncs/s; make bench
// holds single-put latency to it (scripts/benchtable).
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.Close() })
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := f.Write(benchValue); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsync/s")
	b.ReportMetric(float64(lat[len(lat)/2])/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e3, "p99-µs")
}
