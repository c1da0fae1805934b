package miner_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/flownode/flownode/miner"
)

// A verifier recomputes a block's target from its parent and checks the proof.
func ExampleParams_Check() {
	p := miner.DefaultParams()
	parent := sha256.Sum256([]byte("parent block"))
	node := [20]byte{0x42}
	parentTime := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

	// The miner's first winning attempt, made one period per attempt after the parent.
	nonce := uint64(1)
	for miner.ProofHash(parent, node, nonce) >= p.Target(parent) {
		nonce++
	}
	blockTime := parentTime + int64(nonce)*int64(p.Period())
	fmt.Println("bucket", miner.Bucket(parent), "nonce", nonce, "valid:", p.Check(parent, parentTime, node, nonce, blockTime) == nil)

	// The same attempt stamped too soon after its parent.
	err := p.Check(parent, parentTime, node, nonce, parentTime+int64(time.Millisecond))
	fmt.Println(errors.Is(err, miner.ErrNonceTooHigh))
	fmt.Println(err)
	// Output:
	// bucket 877 nonce 30 valid: true
	// true
	// nonce exceeds the attempts possible since the parent: expected at most 1 attempts in 1ms at 20/s, got nonce 30
}
