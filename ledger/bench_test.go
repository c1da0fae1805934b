package ledger

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// benchFixture is a ledger on the laptop store profile, with real time.
func benchFixture(b *testing.B) *fixture {
	b.Helper()
	f := &fixture{dir: b.TempDir()}
	var err error
	f.g, _ = NewGenesis(Network{Name: "bench", Mining: MiningParams{Rate: 20, MeanBlockTime: time.Second, Variance: 0.2}})
	f.id, _, err = LoadOrCreateIdentity(f.dir)
	if err != nil {
		b.Fatal(err)
	}
	f.st, f.l = openBench(b, f.dir, f.g, f.id)
	b.Cleanup(func() { f.st.Close() })
	return f
}

var payload = []byte(`{"temperature":21.5,"humidity":40.25,"unit":"C","battery":3.71,"seq":12345,"site":"greenhouse-3","tags":["a","b","c"],"note":"a reading of roughly three hundred bytes once signed metadata is left out of the count, which is typical for IoT"}`)

// BenchmarkAppend measures durable, signed records per second through the ledger (no
// HTTP): one writer, 32 concurrent writers, and batches of 1000.
func BenchmarkAppend(b *testing.B) {
	cases := []struct {
		name           string
		writers, batch int
	}{{"single-1writer", 1, 1}, {"single-32writers", 32, 1}, {"batch1000-2writers", 2, 1000}}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			f := benchFixture(b)
			const total = 20000
			per := total / c.writers / c.batch
			ctx := context.Background()
			start := time.Now()
			var wg sync.WaitGroup
			for w := 0; w < c.writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rs := make([]Reading, c.batch)
					for i := range rs {
						rs[i] = Reading{Thing: fmt.Sprintf("sensor-%d", w), Data: payload}
					}
					for i := 0; i < per; i++ {
						if _, err := f.l.Append(ctx, rs); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			n := per * c.writers * c.batch
			rate := float64(n) / time.Since(start).Seconds()
			b.ReportMetric(rate, "records/s")
			b.Logf("%s: %d durable signed records in %v = %.0f records/s", c.name, n, time.Since(start).Round(time.Millisecond), rate)
		})
	}
}

// BenchmarkVerify measures how many records per second the verifier checks.
func BenchmarkVerify(b *testing.B) {
	f := benchFixture(b)
	ctx := context.Background()
	rs := make([]Reading, 1000)
	for i := range rs {
		rs[i] = Reading{Thing: "sensor", Data: payload}
	}
	var at int64 = 1
	for i := 0; i < 20; i++ {
		if _, err := f.l.Append(ctx, rs); err != nil {
			b.Fatal(err)
		}
		at += int64(time.Second)
		if err := f.l.Extend(ctx, 1, time.Unix(0, time.Now().UnixNano()+at)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	rep, err := Verify(ctx, f.st, f.g, testProof, f.id.ID)
	if err != nil || !rep.Valid {
		b.Fatalf("%+v %v", rep, err)
	}
	rate := float64(rep.Records) / time.Since(start).Seconds()
	b.ReportMetric(rate, "records/s")
	b.Logf("verified %d records and %d blocks in %v = %.0f records/s", rep.Records, rep.Blocks, time.Since(start).Round(time.Millisecond), rate)
}
