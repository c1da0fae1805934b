package miner

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"sync"
	"sync/atomic"
)

// Buckets is K, the number of points at which the Gaussian is sampled. It is part of the
// consensus rules: changing it changes every target.
const Buckets = 1024

const (
	log2Buckets = 10 // Buckets == 1 << log2Buckets: the bucket points are exact binary fractions

	// precision is the mantissa size, in bits, of every big.Float in the table. Each
	// operation is correctly rounded to it, so the result does not depend on the word
	// size or the floating-point unit of the machine.
	precision = 128

	// expTerms Taylor terms of e^r for r < 2^-8 leave an error below 2^-148, far under
	// the 2^-128 rounding of each step.
	expTerms = 16

	// maxExponent bounds e^(y_i − y_min): beyond it the bucket's probability would be
	// below e^-45 < 2^-64 even for the easiest bucket at probability 1, so its target
	// is 0 and the parameters are invalid anyway. The bound keeps exp cheap and finite.
	maxExponent = 45

	// maxCached bounds the table cache; a network has one Params, tests a few dozen.
	maxCached = 64
)

// Difficulty is the precomputed target table of one Params: Target_i for each bucket i.
// Build it once (Params.Difficulty caches it): looking up a target is then an index.
type Difficulty struct {
	params  Params
	targets [Buckets]uint64
}

// Bucket returns the bucket a parent hash draws: the first 8 bytes of the hash, big-endian,
// modulo Buckets. Every verifier recomputes it from the parent alone.
func Bucket(parent [32]byte) int {
	return int(binary.BigEndian.Uint64(parent[:8]) % Buckets)
}

// BucketX returns x_i = −1 + (2i+1)/K, the midpoint of bucket i of [−1, 1], at which the
// Gaussian density is sampled. It is exact in binary because K is a power of two.
func BucketX(i int) float64 {
	return float64(2*i+1-Buckets) / Buckets
}

// Target returns the target of the bucket parent draws: an attempt succeeds when its
// ProofHash is below it. It returns 0 (nothing succeeds) when the parameters are invalid;
// Validate says why.
func (p Params) Target(parent [32]byte) uint64 {
	d, err := p.Difficulty()
	if err != nil {
		return 0
	}
	return d.Target(parent)
}

// Target returns the target for a block whose parent hash is parent.
func (d *Difficulty) Target(parent [32]byte) uint64 {
	return d.targets[Bucket(parent)]
}

// BucketTarget returns Target_i for bucket i in [0, Buckets).
func (d *Difficulty) BucketTarget(i int) uint64 {
	return d.targets[i]
}

// Params returns the parameters the table was built from.
func (d *Difficulty) Params() Params {
	return d.params
}

type cacheKey struct {
	rate           uint64
	meanBlockTime  int64
	mean, variance uint64 // bit patterns: exact, and comparable without float semantics
}

type cacheEntry struct {
	once sync.Once
	d    *Difficulty
	err  error
}

var (
	cache    sync.Map // cacheKey → *cacheEntry
	cacheLen atomic.Int32
)

// Difficulty returns the target table of p, building it on first use and caching it,
// because Target is on the verifier's hot path and a build costs thousands of
// multiple-precision operations. It returns Validate's error for unusable parameters.
func (p Params) Difficulty() (*Difficulty, error) {
	if err := p.validateFields(); err != nil {
		return nil, err // cheap to find again: not worth a cache slot
	}
	key := cacheKey{p.Rate, int64(p.MeanBlockTime), math.Float64bits(p.Mean), math.Float64bits(p.Variance)}
	v, ok := cache.Load(key)
	if !ok {
		if cacheLen.Load() >= maxCached {
			return newDifficulty(p)
		}
		var loaded bool
		if v, loaded = cache.LoadOrStore(key, &cacheEntry{}); !loaded {
			cacheLen.Add(1)
		}
	}
	e := v.(*cacheEntry)
	e.once.Do(func() { e.d, e.err = newDifficulty(p) })
	return e.d, e.err
}

// newDifficulty builds the table (see the package doc for the formula):
//
//	y_i    = (x_i − Mean)² / (2·Variance)
//	E_i    = e^(y_i − min_j y_j)                 1/d_i up to a common factor, ≥ 1
//	S      = Σ_i E_i                              summed in bucket order
//	Target_i = floor( S · 10^9 · 2^64 / (K · Rate · MeanBlockTime_ns · E_i) )
//
// so that p_i = Target_i/2^64 = c·d_i and (1/K)·Σ 1/p_i = Rate × MeanBlockTime. Every step
// is a correctly rounded big.Float operation at a fixed precision, in a fixed order:
// never float64, whose math.Exp and fused multiply-adds differ between GOARCHes.
func newDifficulty(p Params) (*Difficulty, error) {
	twoVar := newFloat().SetFloat64(p.Variance)
	twoVar.SetMantExp(twoVar, 1)
	mean := newFloat().SetFloat64(p.Mean)

	var y [Buckets]*big.Float
	ymin := 0
	for i := range Buckets {
		dx := newFloat().Sub(bucketPoint(i), mean)
		y[i] = newFloat().Mul(dx, dx)
		y[i].Quo(y[i], twoVar)
		if y[i].Cmp(y[ymin]) < 0 {
			ymin = i
		}
	}

	limit := newFloat().SetInt64(maxExponent)
	var e [Buckets]*big.Float
	sum := newFloat()
	for i := range Buckets {
		yi := newFloat().Sub(y[i], y[ymin])
		if yi.Cmp(limit) > 0 {
			return nil, fmt.Errorf("miner: Variance %g is too narrow around Mean %g: the bucket at x=%.4f would succeed with probability below 2^-64 and never yield a block; widen Variance", p.Variance, p.Mean, BucketX(i))
		}
		e[i] = expFloat(yi)
		sum.Add(sum, e[i])
	}

	// num = S · 10^9 · 2^64 / K; den_i = Rate · MeanBlockTime_ns · E_i.
	num := newFloat().Mul(sum, newFloat().SetUint64(1e9))
	num.SetMantExp(num, 64-log2Buckets)
	rateTime := new(big.Int).Mul(new(big.Int).SetUint64(p.Rate), big.NewInt(int64(p.MeanBlockTime)))
	rt := newFloat().SetInt(rateTime)
	two64 := newFloat().SetMantExp(newFloat().SetInt64(1), 64)

	d := &Difficulty{params: p}
	q := newFloat()
	for i := range Buckets {
		q.Mul(rt, e[i])
		q.Quo(num, q)
		if q.Cmp(two64) >= 0 {
			minAttempts, _ := newFloat().Quo(sum, newFloat().SetInt64(Buckets)).Float64()
			return nil, fmt.Errorf("miner: Rate×MeanBlockTime = %d/s × %v = %.4g attempts per block is too few for the Gaussian N(%g, %g): its likeliest bucket would succeed with probability above 1; raise Rate or MeanBlockTime above %.4g attempts per block",
				p.Rate, p.MeanBlockTime, p.AttemptsPerBlock(), p.Mean, p.Variance, minAttempts)
		}
		t, _ := q.Uint64() // truncates toward zero: the floor of a non-negative value
		if t == 0 {
			return nil, fmt.Errorf("miner: the bucket at x=%.4f would succeed with probability below 2^-64 and never yield a block; widen Variance (%g) or lower Rate×MeanBlockTime (%.4g attempts per block)", BucketX(i), p.Variance, p.AttemptsPerBlock())
		}
		d.targets[i] = t
	}
	return d, nil
}

func newFloat() *big.Float {
	return new(big.Float).SetPrec(precision).SetMode(big.ToNearestEven)
}

// bucketPoint returns x_i = (2i+1−K)/K exactly.
func bucketPoint(i int) *big.Float {
	x := newFloat().SetInt64(int64(2*i + 1 - Buckets))
	return x.SetMantExp(x, -log2Buckets)
}

// expFloat returns e^y for 0 ≤ y ≤ maxExponent using only +, ×, ÷ at the fixed precision:
// halve y k times until r = y/2^k < 2^-8, sum expTerms Taylor terms of e^r by Horner's
// rule, then square k times. The steps depend only on y, so every platform gets the same
// bits.
func expFloat(y *big.Float) *big.Float {
	k := 0
	if y.Sign() > 0 {
		// y = mant·2^exp with 0.5 ≤ mant < 1, so y < 2^exp and y/2^(exp+8) < 2^-8.
		k = max(0, y.MantExp(nil)+8)
	}
	r := newFloat().SetMantExp(y, -k)

	s := newFloat().SetInt64(1)
	one := newFloat().SetInt64(1)
	n := newFloat()
	for i := expTerms; i >= 1; i-- {
		s.Mul(s, r)
		s.Quo(s, n.SetInt64(int64(i)))
		s.Add(s, one)
	}
	for range k {
		s.Mul(s, s)
	}
	return s
}
