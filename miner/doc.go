// Package miner is the fixed-rate, Gaussian-difficulty proof-of-stake miner: every node
// makes the same number of hash attempts per second, against a target that any verifier
// recomputes from the parent block, so more CPU buys nothing.
//
// # Fixed work
//
// A Miner makes one attempt per tick of a ticker with period 1/Rate (Flowchain: 50 ms,
// 20 attempts per second) while it has something to seal (see Idle below). Attempt n on
// a parent block succeeds when
//
//	ProofHash(parent, branch, n) < Target(parent)
//
// where ProofHash is the first 8 bytes, big-endian, of SHA-256(parent ‖ branch ‖ n) and
// branch is the miner's 20-byte node ID. The nonce n is the number of attempts made since
// the parent, and Check refuses a block whose nonce exceeds what the rate allows in the
// time since its parent:
//
//	1 ≤ nonce ≤ floor(Rate × (blockTime − parentTime)) + NonceSlack,  blockTime > parentTime
//
// so a faster CPU cannot make more attempts than a gateway's. NonceSlack (one attempt)
// absorbs the jitter between a ticker's own schedule and each parent's timestamp. The miner
// checks the same rule (MaxNonce) before every attempt, so a late, early or dropped tick
// never yields a block that Check refuses.
//
// # Idle
//
// A block costs disk on its owner and on every replica (about 1 KB with its branch-tree
// nodes), so a node that mined one a second whatever happened would grow by some 70 MB a
// day per branch it holds with nothing to record. A Chain that is also a Backlog (the
// ledger is) says whether records wait for a seal; while none do, ticks make no attempt
// (Stats.Idle) and the round on the head simply stays open. The rule above counts time,
// not ticks: once records arrive, the next tick (or at once, on Backlog.Arrivals) makes
// every attempt the rate has allowed since the parent, floor(Rate × elapsed), stopping
// at the first win, at most MaxAttemptsPerTick per tick. These are the very attempts a
// miner that never idled would have made, in the same order, so the block carries the
// same first winning nonce and passes Check unchanged; only its time (and so what it
// seals) differs. After an idle spell longer than the attempts to the first win take at
// the rate (about a mean block time), a reading is sealed within a tick of its arrival;
// under steady load the miner never idles and the mean block time is MeanBlockTime. A
// tick that follows dropped ticks catches up on their attempts the same way. Nothing is
// gained by idling on purpose: the seed chain fixes every attempt, and the rate bounds
// them by the time elapsed, however they are spread.
//
// # Gaussian difficulty
//
// The parent hash draws one of K = Buckets = 1024 buckets: i = (first 8 bytes of the parent
// hash, big-endian) mod K. Bucket i samples the Gaussian density at the midpoint
// x_i = −1 + (2i+1)/K of [−1, 1]:
//
//	d_i = exp(−(x_i − Mean)² / (2·Variance))
//
// An attempt in bucket i succeeds with probability p_i = c·d_i: likelier near the mean,
// rarer in the tails. The number of attempts a block takes is geometric with mean 1/p_i,
// so choosing c such that
//
//	(1/K) · Σ_i 1/p_i = Rate × MeanBlockTime
//
// makes the mean block time exactly MeanBlockTime (over uniformly drawn buckets). With
// E_i = e^(y_i − min_j y_j), y_i = (x_i − Mean)²/(2·Variance), and S = Σ_i E_i, that gives
//
//	Target_i = floor(p_i · 2^64) = floor(S · 10^9 · 2^64 / (K · Rate · MeanBlockTime_ns · E_i))
//
// Params.Validate refuses parameters for which some p_i ≥ 1 (Rate × MeanBlockTime below the
// mean of E_i, about 3.12 attempts for N(0, 0.2)) or some Target_i = 0 (a Gaussian so narrow
// that a bucket could never succeed).
//
// # Determinism
//
// Every verifier must compute the same Target bit for bit, on amd64, arm64, 386 and mipsle
// with soft float. float64 cannot promise that: math.Exp has per-architecture assembly and
// the compiler may fuse multiply-adds on some architectures. The table is therefore built
// only with math/big.Float at a fixed 128-bit precision, round-to-nearest-even, in a fixed
// order: each operation is correctly rounded, so its result does not depend on the word
// size or the FPU. e^y is computed by the package's own series (halve y below 2^-8, sum 16
// Taylor terms, square back). The float64 inputs Mean and Variance convert to big.Float
// exactly; the bucket points are exact binary fractions. Fixed test vectors (single
// targets and a digest of the whole table) pin the result, so any platform or toolchain
// that disagreed would fail them. The table is built once per Params and cached: looking
// up a target is an index.
//
// # Grinding
//
// Target depends only on the hash it is given, so what the ledger passes as "parent"
// matters. The ledger passes a seed, not the header hash: each block carries
// proof = ProofDigest(parent's proof, branch, nonce), starting from the genesis hash, and
// Check requires the nonce to be the first winning attempt. A header hash commits to
// fields the miner could vary freely (its time, which records it seals) and would let
// spare CPU grind for an easy next bucket; the seed chain leaves no choice at all.
package miner
