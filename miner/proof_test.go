package miner

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func TestProofHash(t *testing.T) {
	parent := sha256.Sum256([]byte("parent"))
	branch := [20]byte{1, 2, 3, 19: 0xee}
	var buf []byte
	buf = append(buf, parent[:]...)
	buf = append(buf, branch[:]...)
	buf = binary.BigEndian.AppendUint64(buf, 0x0102030405060708)
	sum := sha256.Sum256(buf)
	if got, want := ProofHash(parent, branch, 0x0102030405060708), binary.BigEndian.Uint64(sum[:8]); got != want {
		t.Fatalf("ProofHash = %#x, want %#x", got, want)
	}
	// A fixed vector, so that the layout cannot drift with the test above.
	if got := ProofHash([32]byte{}, [20]byte{}, 1); got != 0xef2fb521372225b8 {
		t.Errorf("ProofHash(0, 0, 1) = %#x, want 0xef2fb521372225b8", got)
	}
}

func TestMaxNonce(t *testing.T) {
	tests := []struct {
		rate    uint64
		elapsed int64
		want    uint64
	}{
		{20, 0, 0},
		{20, -5, 0},
		{20, 1, 1}, // floor(2e-8) + slack
		{20, int64(50*time.Millisecond) - 1, 1},
		{20, int64(50 * time.Millisecond), 2},
		{20, int64(time.Second), 21},
		{3, 999_999_999, 3},                             // floor(2.999999997) + 1: the slack absorbs the rounding of 1e9/3
		{3, 3 * 333_333_334, 4},                         // three ticks of the rounded-up period
		{MaxRate, math.MaxInt64, math.MaxInt64 + 1},     // 1e9 × (2^63−1) / 1e9, no overflow
		{math.MaxUint64, math.MaxInt64, math.MaxUint64}, // the quotient would overflow: saturate
	}
	for _, tt := range tests {
		if got := MaxNonce(tt.rate, tt.elapsed); got != tt.want {
			t.Errorf("MaxNonce(%d, %d) = %d, want %d", tt.rate, tt.elapsed, got, tt.want)
		}
	}
}

func TestPeriod(t *testing.T) {
	for _, tt := range []struct {
		rate uint64
		want time.Duration
	}{{20, 50 * time.Millisecond}, {400, 2500 * time.Microsecond}, {3, 333_333_334}, {MaxRate, 1}, {0, 0}} {
		if got := (Params{Rate: tt.rate}).Period(); got != tt.want {
			t.Errorf("Period at rate %d = %v, want %v", tt.rate, got, tt.want)
		}
	}
}

// winningNonce returns the first nonce that meets the target on parent.
func winningNonce(t *testing.T, p Params, parent [32]byte, branch [20]byte) uint64 {
	t.Helper()
	target := p.Target(parent)
	for n := uint64(1); n < 100_000; n++ {
		if ProofHash(parent, branch, n) < target {
			return n
		}
	}
	t.Fatal("no winning nonce")
	return 0
}

func TestCheck(t *testing.T) {
	p := DefaultParams()
	branch := [20]byte{0xb0}
	// A parent whose first win comes late enough to test the nonce rule around it.
	var parent [32]byte
	var win uint64
	for i := 0; win < 3; i++ {
		parent = sha256.Sum256([]byte{byte(i)})
		win = winningNonce(t, p, parent, branch)
	}
	const parentTime = int64(1_700_000_000_000_000_000)
	period := int64(p.Period())
	onTime := parentTime + int64(win)*period // when an exact ticker makes attempt win

	if err := p.Check(parent, parentTime, branch, win, onTime); err != nil {
		t.Fatalf("Check of a block made on time: %v", err)
	}
	// The slack lets attempt win land up to one period early, but no earlier.
	if err := p.Check(parent, parentTime, branch, win, onTime-period); err != nil {
		t.Errorf("Check one period early (within NonceSlack): %v", err)
	}

	tests := []struct {
		name      string
		nonce     uint64
		blockTime int64
		want      error
		says      string // expected vs actual, in words
	}{
		{"nonce zero", 0, onTime, ErrNonceZero, "expected a nonce of at least 1"},
		{"same time as parent", win, parentTime, ErrTimeNotAfter, "expected a time after 1700000000000000000 ns, got 1700000000000000000 ns"},
		{"before parent", win, parentTime - 1, ErrTimeNotAfter, "got 1699999999999999999 ns"},
		{"nonce too high for elapsed", win, onTime - period - 1, ErrNonceTooHigh, "got nonce"},
		{"proof hash not below target", win - 1, onTime, ErrProofNotBelow, "expected a proof hash below"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Check(parent, parentTime, branch, tt.nonce, tt.blockTime)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("Check = %v, want %v saying %q", err, tt.want, tt.says)
			}
		})
	}
	// A proof is bound to its branch: the same nonce on another node's branch is checked
	// against that branch's hash.
	for b := range byte(50) {
		other := [20]byte{0xc0, b}
		err := p.Check(parent, parentTime, other, win, onTime)
		if first := winningNonce(t, p, parent, other) == win; first != (err == nil) {
			t.Fatalf("Check on branch %x = %v, but nonce %d is its first win: %v", other, err, win, first)
		}
	}
	// Only the first winning attempt counts: a later winner is refused, so a miner cannot
	// pick among winners to steer the next seed.
	later := win + 1
	for ProofHash(parent, branch, later) >= p.Target(parent) {
		later++
	}
	err := p.Check(parent, parentTime, branch, later, parentTime+int64(later)*period)
	if !errors.Is(err, ErrNotFirstWin) || !strings.Contains(err.Error(), fmt.Sprintf("expected nonce %d", win)) {
		t.Fatalf("Check of a later winner = %v", err)
	}
	bad := Params{Rate: 0, MeanBlockTime: time.Second, Variance: 0.2}
	if err := bad.Check(parent, parentTime, branch, win, onTime); !errors.Is(err, ErrInvalidParams) {
		t.Errorf("Check with invalid params = %v, want ErrInvalidParams", err)
	}
}

func TestCheckExtremeTimes(t *testing.T) {
	p := DefaultParams()
	parent := sha256.Sum256([]byte("extreme"))
	branch := [20]byte{}
	win := winningNonce(t, p, parent, branch)
	// The span overflows int64: it must be clamped, not wrapped into the past.
	if err := p.Check(parent, math.MinInt64, branch, win, math.MaxInt64); err != nil {
		t.Errorf("Check across the whole int64 range: %v", err)
	}
}
