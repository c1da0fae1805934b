package ledger

import (
	"crypto/ed25519"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// signsPerOp is how many signatures (or verifications) one op of
// BenchmarkEd25519 makes: enough for a steady figure at -benchtime 1x, which
// is how make bench runs this package (about a second for both sub-benchmarks
// on two cores).
const signsPerOp = 16384

// BenchmarkEd25519 measures this machine's ed25519 sign and verify rates on
// every core: GOMAXPROCS goroutines share signsPerOp operations over the
// unsigned bytes of a typical record (what SignRecord and CheckSelf sign and
// verify). These are the limits make bench holds the ingest figures to
// (scripts/benchtable): a node signs every record it takes in, each replica
// verifies it.
func BenchmarkEd25519(b *testing.B) {
	id, err := NewIdentity(make([]byte, ed25519.SeedSize))
	if err != nil {
		b.Fatal(err)
	}
	msg := benchUnsignedRecord(b, id)
	sig := ed25519.Sign(id.Private, msg)
	b.Run("sign", func(b *testing.B) {
		rate := onAllCores(b, func() bool { return len(ed25519.Sign(id.Private, msg)) == ed25519.SignatureSize })
		b.ReportMetric(rate, "sign/s")
		b.ReportMetric(float64(len(msg)), "msg-bytes")
	})
	b.Run("verify", func(b *testing.B) {
		rate := onAllCores(b, func() bool { return ed25519.Verify(id.Public, msg, sig) })
		b.ReportMetric(rate, "verify/s")
		b.ReportMetric(float64(len(msg)), "msg-bytes")
	})
}

// benchUnsignedRecord is the bytes a node signs for a reading of the ledger
// benchmarks' payload: the record's canonical JSON without its signature.
func benchUnsignedRecord(b *testing.B, id *Identity) []byte {
	now := time.Now().UnixNano()
	salt := make([]byte, SaltSize)
	hData := DataHash(payload, now, salt)
	r := &Record{
		Block:  BlockRef{Branch: id.ID, No: 12345},
		Data:   payload,
		HData:  hData,
		Key:    hData,
		Salt:   salt,
		Seq:    42,
		Thing:  "urn:dev:bench-sensor-0001",
		Time:   now,
		TxID:   TxID(Hash{}, hData),
		Signer: PubKey(id.Public),
	}
	r.Context, r.Type = ContextPath, RecordType
	msg, err := encodeRecord(r)
	if err != nil {
		b.Fatal(err)
	}
	return msg
}

// onAllCores runs op signsPerOp times per benchmark op on GOMAXPROCS
// goroutines and returns operations per second of wall time. op reports
// whether its result was right; a wrong one fails the benchmark.
func onAllCores(b *testing.B, op func() bool) float64 {
	total := int64(b.N) * signsPerOp
	var next atomic.Int64
	var wrong atomic.Bool
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for next.Add(1) <= total {
				if !op() {
					wrong.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if wrong.Load() {
		b.Fatal("an ed25519 operation gave a wrong result")
	}
	b.ReportMetric(0, "ns/op")
	return float64(total) / elapsed.Seconds()
}
