package miner

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// MaxRate bounds Params.Rate so that the tick period is at least one nanosecond and the
// nonce rule's 128-bit product never overflows.
const MaxRate = uint64(time.Second)

// Params are network-wide (they go into the genesis block), so every verifier agrees.
type Params struct {
	Rate           uint64        // hash attempts per second per node (default 20)
	MeanBlockTime  time.Duration // calibrated mean time between blocks (default 1s)
	Mean, Variance float64       // the Gaussian (default 0, 0.2)
}

// DefaultParams returns Flowchain's settings: 20 attempts per second (a 50 ms ticker), a
// one-second mean block time and the Gaussian N(0, 0.2).
func DefaultParams() Params {
	return Params{Rate: 20, MeanBlockTime: time.Second, Mean: 0, Variance: 0.2}
}

// Validate reports whether the parameters give a usable difficulty table: a positive rate
// and block time, a finite Gaussian, and a calibration in which every bucket's success
// probability lies in [2^-64, 1).
func (p Params) Validate() error {
	_, err := p.Difficulty()
	return err
}

// validateFields checks what can be checked without building the table; newDifficulty
// relies on it having passed.
func (p Params) validateFields() error {
	switch {
	case p.Rate == 0:
		return errors.New("miner: Rate is 0 attempts per second; set it to at least 1 (Flowchain uses 20)")
	case p.Rate > MaxRate:
		return fmt.Errorf("miner: Rate %d exceeds %d attempts per second; lower it", p.Rate, MaxRate)
	case p.MeanBlockTime <= 0:
		return fmt.Errorf("miner: MeanBlockTime %v is not positive; set it to the wanted mean time between blocks", p.MeanBlockTime)
	case math.IsNaN(p.Mean) || math.IsInf(p.Mean, 0):
		return fmt.Errorf("miner: Mean %v is not a finite number; set it to a value such as 0", p.Mean)
	case math.IsNaN(p.Variance) || math.IsInf(p.Variance, 0) || p.Variance <= 0:
		return fmt.Errorf("miner: Variance %v is not a positive finite number; set it to a value such as 0.2", p.Variance)
	}
	return nil
}

// Period is the time between two attempts: 1/Rate, rounded up to a whole nanosecond so
// that k ticks never take less than k/Rate seconds and the nonce rule holds for a miner
// that makes one attempt per tick.
func (p Params) Period() time.Duration {
	if p.Rate == 0 {
		return 0
	}
	return time.Duration((uint64(time.Second) + p.Rate - 1) / p.Rate)
}

// AttemptsPerBlock is Rate × MeanBlockTime, the mean number of attempts a block takes
// once calibrated. It is for display and tests: the verified path never uses float64.
func (p Params) AttemptsPerBlock() float64 {
	return float64(p.Rate) * p.MeanBlockTime.Seconds()
}
