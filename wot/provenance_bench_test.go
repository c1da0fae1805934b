package wot

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/flownode/flownode/api"
)

// BenchmarkSignedPut: the end-to-end cost of a put (POST /api/v1/records, one
// client, one reading at a time, answered once durable on the owner) on one
// node: for a Thing without a device key, the same with an idempotency key
// (the resend path a signed reading takes too: the owner looks for an earlier
// record first), and for a Thing whose TD declares a key, each reading signed
// by the device beforehand (the owner's check: a cached TD lookup and the
// ed25519 verification, and the record's further verifications on its way
// to the history index).
func BenchmarkSignedPut(b *testing.B) {
	for _, mode := range []string{"unsigned", "unsigned-idempotent", "signed"} {
		signedReadings := mode == "signed"
		b.Run(mode, func(b *testing.B) {
			r := startTDRing(b, 1)
			a := r.nodes[0]
			a.n.Handle("/api/", api.NewServer(a.n, nil, nil))
			dev := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
			thing := "bench-plain"
			var key ed25519.PrivateKey
			if signedReadings {
				thing, key = "bench-signed", dev
				td := `{"@context": "https://www.w3.org/2022/wot/td/v1.1", "title": "Meter", "securityDefinitions": {"nosec": {"scheme": "nosec"}}, "security": "nosec", "flownode:deviceKey": "` +
					hex.EncodeToString(dev.Public().(ed25519.PublicKey)) + `"}`
				if got := call(b, "PUT", a.base+"/things/"+thing, ctTD, []byte(td)); got.code != 201 {
					b.Fatalf("PUT TD: %d %s", got.code, got.body)
				}
			}
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = signedBody(b, key, thing, fmt.Sprintf(`{"n":%d,"celsius":21.5}`, i))
				if mode == "unsigned-idempotent" {
					bodies[i] = append(bodies[i][:len(bodies[i])-1], fmt.Sprintf(`,"idempotencyKey":"k%d"}`, i)...)
				}
			}
			b.ResetTimer()
			start := time.Now()
			for _, body := range bodies {
				if got := call(b, "POST", a.base+"/api/v1/records", "application/json", body); got.code != 201 {
					b.Fatalf("put: %d %s", got.code, got.body)
				}
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "readings/s")
			b.Logf("%d puts in %v (GOMAXPROCS %d)", b.N, el.Round(time.Millisecond), runtime.GOMAXPROCS(0))
		})
	}
}
