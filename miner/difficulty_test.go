package miner

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

// oddParams is a second, deliberately awkward network: a rate that does not divide a
// second, an off-centre mean and a wide Gaussian.
var oddParams = Params{Rate: 3, MeanBlockTime: 7 * time.Second, Mean: -0.5, Variance: 1.5}

// TestTargetVectors pins exact targets. They are consensus values: if this test fails on
// some GOARCH or Go version, nodes there would disagree with the rest of the network.
func TestTargetVectors(t *testing.T) {
	tests := []struct {
		name    string
		p       Params
		digest  string            // SHA-256 of all Buckets targets, each 8 bytes big-endian
		targets map[string]uint64 // parent = SHA-256(key) → Target
		buckets map[int]uint64
	}{
		{
			name:   "default",
			p:      DefaultParams(),
			digest: "028c23819bd87af25e72d33c7121b99c18be56458c0e3059c2e04b96aaac92b7",
			targets: map[string]uint64{
				"a": 0x26e38d4cdef3b79b, // bucket 458
				"b": 0x1d30c3f8a48cbd27, // bucket 330
				"c": 0x188078d7c0ba134e, // bucket 738
			},
			buckets: map[int]uint64{0: 0x34bec95abd93916, 511: 0x27f705cbc699f055, 512: 0x27f705cbc699f055, 1023: 0x34bec95abd93916},
		},
		{
			name:   "odd",
			p:      oddParams,
			digest: "c536f79b6f8fa16880cec749ffb8d96fc45a83e8ff0cfeddcaae215dff41e112",
			targets: map[string]uint64{
				"a": 0xe69b3942dc286a8,
				"b": 0xf13db721327cc86,
				"c": 0xb4b2a061fdb1060,
			},
			buckets: map[int]uint64{0: 0xdf98e0b7d4ea678, 511: 0xdf98e0b7d4ea678, 512: 0xdf739fad37e7953, 1023: 0x72df95fdf5de419},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.p.Difficulty()
			if err != nil {
				t.Fatal(err)
			}
			if got := tableDigest(d); got != tt.digest {
				t.Errorf("table digest = %s, want %s", got, tt.digest)
			}
			for key, want := range tt.targets {
				parent := sha256.Sum256([]byte(key))
				if got := tt.p.Target(parent); got != want {
					t.Errorf("Target(SHA-256(%q)) = %#x, want %#x", key, got, want)
				}
			}
			for i, want := range tt.buckets {
				if got := d.BucketTarget(i); got != want {
					t.Errorf("bucket %d target = %#x, want %#x", i, got, want)
				}
			}
		})
	}
}

func tableDigest(d *Difficulty) string {
	h := sha256.New()
	var b [8]byte
	for i := range Buckets {
		binary.BigEndian.PutUint64(b[:], d.BucketTarget(i))
		h.Write(b[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestCalibration checks the defining property: with a uniformly drawn bucket the mean of
// the geometric mean attempts 1/p_i = 2^64/Target_i is Rate × MeanBlockTime.
func TestCalibration(t *testing.T) {
	for _, p := range []Params{
		DefaultParams(),
		oddParams,
		{Rate: 400, MeanBlockTime: 50 * time.Millisecond, Mean: 0, Variance: 0.2},
		{Rate: 20, MeanBlockTime: 10 * time.Minute, Mean: 0.3, Variance: 0.1},
		{Rate: 1, MeanBlockTime: 5 * time.Second, Mean: 0, Variance: 1e6},
	} {
		d, err := p.Difficulty()
		if err != nil {
			t.Fatalf("%+v: %v", p, err)
		}
		var sum big.Float // exact enough: 1024 terms at the default 53+ bits would do, use more
		sum.SetPrec(200)
		two64 := new(big.Float).SetPrec(200).SetMantExp(big.NewFloat(1), 64)
		for i := range Buckets {
			q := new(big.Float).SetPrec(200).SetUint64(d.BucketTarget(i))
			sum.Add(&sum, q.Quo(two64, q))
		}
		mean, _ := sum.Quo(&sum, big.NewFloat(Buckets)).Float64()
		want := p.AttemptsPerBlock()
		if rel := math.Abs(mean-want) / want; rel > 1e-6 {
			t.Errorf("%+v: mean attempts per block = %.9g, want %.9g (relative error %.2g)", p, mean, want, rel)
		}
	}
}

// TestTableMatchesFloat64 checks the big.Float table against the formula evaluated in
// float64 with math.Exp: the two must agree to float64 accuracy (the table is the
// consensus value; this only guards against a mistake in the series or the formula).
func TestTableMatchesFloat64(t *testing.T) {
	for _, p := range []Params{DefaultParams(), oddParams} {
		d, err := p.Difficulty()
		if err != nil {
			t.Fatal(err)
		}
		var dens [Buckets]float64
		var sumInv float64
		for i := range Buckets {
			x := BucketX(i) - p.Mean
			dens[i] = math.Exp(-x * x / (2 * p.Variance))
			sumInv += 1 / dens[i]
		}
		c := sumInv / (Buckets * p.AttemptsPerBlock())
		for i := range Buckets {
			want := c * dens[i]
			got := float64(d.BucketTarget(i)) / (1 << 64)
			if rel := math.Abs(got-want) / want; rel > 1e-12 {
				t.Fatalf("%+v bucket %d: p = %.17g, float64 formula gives %.17g", p, i, got, want)
			}
		}
	}
}

func TestExpFloat(t *testing.T) {
	for _, y := range []float64{0, 1e-9, 0.001, 0.5, 1, 2.5, 10, 31.25, 44.9} {
		got, _ := expFloat(newFloat().SetFloat64(y)).Float64()
		if want := math.Exp(y); math.Abs(got-want)/want > 1e-15 {
			t.Errorf("expFloat(%g) = %.17g, want %.17g", y, got, want)
		}
	}
}

func TestBucket(t *testing.T) {
	var parent [32]byte
	binary.BigEndian.PutUint64(parent[:8], 5*Buckets+17)
	parent[8] = 0xff // only the first 8 bytes count
	if got := Bucket(parent); got != 17 {
		t.Errorf("Bucket = %d, want 17", got)
	}
	if BucketX(0) != -1+1.0/Buckets || BucketX(Buckets-1) != 1-1.0/Buckets || BucketX(Buckets/2) != 1.0/Buckets {
		t.Errorf("bucket points: x_0=%g x_K-1=%g x_K/2=%g", BucketX(0), BucketX(Buckets-1), BucketX(Buckets/2))
	}
}

func TestValidate(t *testing.T) {
	good := []Params{
		DefaultParams(),
		oddParams,
		{Rate: 400, MeanBlockTime: 50 * time.Millisecond, Mean: 0, Variance: 0.2},
		{Rate: 1, MeanBlockTime: 4 * time.Second, Mean: 0, Variance: 0.2}, // just above the 3.12-attempt floor
	}
	for _, p := range good {
		if err := p.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", p, err)
		}
	}
	bad := []struct {
		p    Params
		want string
	}{
		{Params{Rate: 0, MeanBlockTime: time.Second, Variance: 0.2}, "Rate is 0"},
		{Params{Rate: MaxRate + 1, MeanBlockTime: time.Second, Variance: 0.2}, "exceeds"},
		{Params{Rate: 20, MeanBlockTime: 0, Variance: 0.2}, "MeanBlockTime 0s is not positive"},
		{Params{Rate: 20, MeanBlockTime: -time.Second, Variance: 0.2}, "not positive"},
		{Params{Rate: 20, MeanBlockTime: time.Second, Mean: math.NaN(), Variance: 0.2}, "Mean NaN"},
		{Params{Rate: 20, MeanBlockTime: time.Second, Mean: math.Inf(1), Variance: 0.2}, "Mean +Inf"},
		{Params{Rate: 20, MeanBlockTime: time.Second, Variance: 0}, "Variance 0"},
		{Params{Rate: 20, MeanBlockTime: time.Second, Variance: -1}, "Variance -1"},
		{Params{Rate: 20, MeanBlockTime: time.Second, Variance: math.NaN()}, "Variance NaN"},
		// Rate×MeanBlockTime = 3 < mean(1/d) ≈ 3.12: the likeliest bucket would need p > 1.
		{Params{Rate: 3, MeanBlockTime: time.Second, Variance: 0.2}, "too few"},
		{Params{Rate: 20, MeanBlockTime: 100 * time.Millisecond, Variance: 0.2}, "raise Rate or MeanBlockTime"},
		// So narrow that the tails are beyond 2^-64.
		{Params{Rate: 20, MeanBlockTime: time.Second, Variance: 0.001}, "too narrow"},
		{Params{Rate: 20, MeanBlockTime: time.Second, Variance: 1e-300}, "too narrow"},
		// Narrow enough that, once the likeliest bucket is below probability 1, the tails
		// (e^-44 below it) round to target 0.
		{Params{Rate: MaxRate, MeanBlockTime: 1e9 * time.Second, Variance: 1.0 / 88}, "below 2^-64"},
	}
	for _, tt := range bad {
		err := tt.p.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want an error containing %q", tt.p, err, tt.want)
			continue
		}
		if got := tt.p.Target([32]byte{}); got != 0 {
			t.Errorf("Target with invalid %+v = %#x, want 0", tt.p, got)
		}
	}
}

func TestDifficultyCached(t *testing.T) {
	p := Params{Rate: 21, MeanBlockTime: 3 * time.Second, Mean: 0.1, Variance: 0.3}
	var wg sync.WaitGroup
	got := make([]*Difficulty, 8)
	for i := range got {
		wg.Go(func() {
			d, err := p.Difficulty()
			if err != nil {
				t.Error(err)
			}
			got[i] = d
		})
	}
	wg.Wait()
	for _, d := range got {
		if d != got[0] {
			t.Fatal("concurrent Difficulty calls built the table more than once")
		}
	}
}

// BenchmarkBuildDifficulty is the one-off cost of a table (Params.Difficulty caches it).
func BenchmarkBuildDifficulty(b *testing.B) {
	p := DefaultParams()
	for b.Loop() {
		if _, err := newDifficulty(p); err != nil {
			b.Fatal(err)
		}
	}
}
