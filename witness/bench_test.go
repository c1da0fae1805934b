package witness

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/flownode/flownode/checkpoint"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

// BenchmarkRecordProof prints what one record's proof costs on a branch of a
// thousand records sealed over many blocks: its size as served (JSON), the time to
// build it on the branch's owner, and the time to verify it offline
// (checkpoint.Proof.Verify: two ed25519 signatures, the membership's, two paths).
//
//	go test -run '^$' -bench RecordProof -benchtime 2000x ./witness/
func BenchmarkRecordProof(b *testing.B) {
	p := newPair(b)
	ctx := context.Background()
	var recs []node.Receipt
	for i := 0; i < 20; i++ {
		var rs []ledger.Reading
		for j := 0; j < 50; j++ {
			rs = append(rs, ledger.Reading{Thing: fmt.Sprintf("meter-%d", j%7), Data: []byte(fmt.Sprintf(`{"seq":%d,"temperature":21.5}`, i*50+j))})
		}
		got, err := p.owner.Put(ctx, rs, node.PutOptions{})
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, got...)
		time.Sleep(30 * time.Millisecond) // spread them over blocks
	}
	last := recs[len(recs)-1].Block.No
	for p.owner.Ledger().TreeSize() <= last {
		time.Sleep(20 * time.Millisecond)
	}
	raws := make([][]byte, len(recs))
	parsed := make([]*ledger.Record, len(recs))
	for i, r := range recs {
		raw, err := p.owner.LocalRecord(r.TxID)
		if err != nil {
			b.Fatal(err)
		}
		raws[i] = raw
		parsed[i], _ = ledger.ParseRecord(raw)
	}
	desc := p.owner.Members().Description()
	proofs := make([]*checkpoint.Proof, len(recs))
	size := 0
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		k := i % len(recs)
		pr, err := p.so.build(parsed[k], raws[k])
		if err != nil {
			b.Fatal(err)
		}
		proofs[k] = pr
		if i < len(recs) {
			j, _ := json.Marshal(pr)
			size += len(j)
		}
	}
	build := time.Since(start) / time.Duration(b.N)
	start = time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := proofs[i%len(recs)].Verify(desc); err != nil {
			b.Fatal(err)
		}
	}
	verify := time.Since(start) / time.Duration(b.N)
	b.StopTimer()
	n := min(b.N, len(recs))
	b.ReportMetric(float64(size)/float64(n), "proof-bytes")
	b.ReportMetric(float64(build.Microseconds()), "µs-build")
	b.ReportMetric(float64(verify.Microseconds()), "µs-verify")
	fmt.Printf("record proof: %d bytes (JSON), built in %v on the owner, verified offline in %v; branch of %d blocks, %d records\n",
		size/n, build, verify, p.owner.Ledger().TreeSize(), len(recs))
}
