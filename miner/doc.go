// Package miner is the fixed-rate, Gaussian-difficulty proof-of-stake miner: every node
// makes the same number of hash attempts per second, against a target that any verifier
// recomputes from the parent block, so more CPU buys nothing.
package miner
