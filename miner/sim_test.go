package miner_test

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/flownode/flownode/miner"
)

// TestSimulatedAttemptsPerBlock mines tens of thousands of blocks without a miner or a clock, with the
// real Target and ProofHash, each parent the hash of the previous block, and checks that
// the mean attempts per block is Rate × MeanBlockTime. It is deterministic: the same
// hashes every run.
func TestSimulatedAttemptsPerBlock(t *testing.T) {
	for _, tt := range []struct {
		p      miner.Params
		blocks int
	}{
		{miner.DefaultParams(), 50000}, // σ ≈ 31.5 attempts: the 4σ bound is ±2.8%
		{miner.Params{Rate: 3, MeanBlockTime: 7 * time.Second, Mean: -0.5, Variance: 1.5}, 20000},
		{miner.Params{Rate: 20, MeanBlockTime: 5 * time.Second, Mean: 0.3, Variance: 0.3}, 5000},
	} {
		p, blocks := tt.p, tt.blocks
		if err := p.Validate(); err != nil {
			t.Fatal(err) // Target would be 0 and nothing would ever be mined
		}
		parent := sha256.Sum256([]byte("simulation seed"))
		var total uint64
		for range blocks {
			target := p.Target(parent)
			n := uint64(1)
			for miner.ProofHash(parent, branch, n) >= target {
				n++
			}
			total += n
			var next [40]byte
			copy(next[:], parent[:])
			binary.BigEndian.PutUint64(next[32:], n)
			parent = sha256.Sum256(next[:])
		}
		mean := float64(total) / float64(blocks)
		want := p.AttemptsPerBlock()
		tol := 4 * attemptsStdDev(t, p) / math.Sqrt(float64(blocks)) / want
		if rel := (mean - want) / want; math.Abs(rel) > tol {
			t.Errorf("%+v: mean attempts per block = %.3f, want %.3f ± %.1f%%", p, mean, want, 100*tol)
		}
		t.Logf("%+v: mean attempts per block %.3f, want %.3f ± %.1f%% (σ = %.1f attempts)", p, mean, want, 100*tol, attemptsStdDev(t, p))
	}
}
