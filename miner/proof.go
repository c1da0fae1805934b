package miner

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"time"
)

// NonceSlack is the tolerance of the nonce rule, in attempts: a block may carry
// floor(Rate × elapsed) + NonceSlack attempts. One attempt absorbs what an honest miner
// cannot control: its ticker runs on its own schedule, not from the parent's timestamp,
// and tick timestamps jitter by nanoseconds around it, so attempt k may be stamped a hair
// before k/Rate after the parent. The slack is worth at most 1/Rate seconds per block to
// anyone, and it is the same for every node.
const NonceSlack = 1

// Errors returned (wrapped, with expected and actual values) by Check, one per rule.
var (
	ErrInvalidParams = errors.New("invalid miner params")
	ErrNonceZero     = errors.New("nonce is 0")
	ErrTimeNotAfter  = errors.New("block time is not after its parent's")
	ErrNonceTooHigh  = errors.New("nonce exceeds the attempts possible since the parent")
	ErrProofNotBelow = errors.New("proof hash is not below the target")
	ErrNotFirstWin   = errors.New("an earlier attempt already won")
)

// ProofHash returns the first 8 bytes, big-endian, of ProofDigest(parent, branch, nonce).
// The branch (the miner's node ID) makes each node's attempts its own; the parent makes
// them specific to the block being extended.
func ProofHash(parent [32]byte, branch [20]byte, nonce uint64) uint64 {
	sum := ProofDigest(parent, branch, nonce)
	return binary.BigEndian.Uint64(sum[:8])
}

// ProofDigest returns SHA-256(parent ‖ branch ‖ nonce), nonce as 8 bytes big-endian. A
// ledger may feed a block's digest to Target for its child instead of the header hash:
// a miner can change it only by giving up a winning attempt, which costs it time.
func ProofDigest(parent [32]byte, branch [20]byte, nonce uint64) [32]byte {
	var buf [32 + 20 + 8]byte
	copy(buf[:32], parent[:])
	copy(buf[32:52], branch[:])
	binary.BigEndian.PutUint64(buf[52:], nonce)
	return sha256.Sum256(buf[:])
}

// MaxNonce returns the largest nonce allowed elapsedNs nanoseconds after the parent:
// floor(rate × elapsedNs / 10^9) + NonceSlack, in exact integer arithmetic. It returns 0
// when elapsedNs ≤ 0, because a block must come after its parent. The miner and Check
// both use it, so the miner never makes an attempt that Check would refuse.
func MaxNonce(rate uint64, elapsedNs int64) uint64 {
	if elapsedNs <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(rate, uint64(elapsedNs))
	if hi >= uint64(time.Second) { // the quotient would not fit in 64 bits
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, uint64(time.Second))
	if q > math.MaxUint64-NonceSlack {
		return math.MaxUint64
	}
	return q + NonceSlack
}

// allowedNonce is MaxNonce for a block at blockTime on a parent at parentTime (Unix ns).
func allowedNonce(rate uint64, parentTime, blockTime int64) uint64 {
	return MaxNonce(rate, elapsed(parentTime, blockTime))
}

// elapsed returns blockTime − parentTime without overflow: ≤ 0 when the block is not
// after its parent, clamped to MaxInt64 for absurd spans.
func elapsed(parentTime, blockTime int64) int64 {
	if blockTime <= parentTime {
		return 0
	}
	// Subtracting in uint64 is exact for any blockTime > parentTime.
	return int64(min(uint64(blockTime)-uint64(parentTime), math.MaxInt64))
}

// Check verifies a block's proof of work against its parent: nonce ≥ 1; blockTime after
// parentTime (both Unix nanoseconds); nonce ≤ MaxNonce(Rate, blockTime − parentTime), i.e.
// no more attempts than the fixed rate allows in the time elapsed (plus NonceSlack); and
// ProofHash(parent, branch, nonce) < Target(parent). Its errors wrap one of the Err
// values and say what was expected and what was found.
func (p Params) Check(parent [32]byte, parentTime int64, branch [20]byte, nonce uint64, blockTime int64) error {
	d, err := p.Difficulty()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidParams, err)
	}
	return d.Check(parent, parentTime, branch, nonce, blockTime)
}

// Check is Params.Check with the table already at hand.
func (d *Difficulty) Check(parent [32]byte, parentTime int64, branch [20]byte, nonce uint64, blockTime int64) error {
	if nonce == 0 {
		return fmt.Errorf("%w: expected a nonce of at least 1 (the attempt count since the parent)", ErrNonceZero)
	}
	if blockTime <= parentTime {
		return fmt.Errorf("%w: expected a time after %d ns, got %d ns", ErrTimeNotAfter, parentTime, blockTime)
	}
	if limit := allowedNonce(d.params.Rate, parentTime, blockTime); nonce > limit {
		return fmt.Errorf("%w: expected at most %d attempts in %v at %d/s, got nonce %d",
			ErrNonceTooHigh, limit, time.Duration(elapsed(parentTime, blockTime)), d.params.Rate, nonce)
	}
	target := d.Target(parent)
	if h := ProofHash(parent, branch, nonce); h >= target {
		return fmt.Errorf("%w: expected a proof hash below %#016x (bucket %d), got %#016x",
			ErrProofNotBelow, target, Bucket(parent), h)
	}
	// The block must carry the first winning attempt. Then nothing about a branch's
	// proofs is the miner's choice: the chain of seeds is fixed by genesis and the
	// branch, so there is nothing to grind. The loop is bounded by the nonce limit above.
	for k := uint64(1); k < nonce; k++ {
		if ProofHash(parent, branch, k) < target {
			return fmt.Errorf("%w: expected nonce %d (the first attempt below the target), got %d", ErrNotFirstWin, k, nonce)
		}
	}
	return nil
}
