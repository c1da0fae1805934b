package rpc

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// memRun sends n one-way messages from a to b under faults and returns how
// many b handled.
func memRun(t *testing.T, seed uint64, f Faults, n int) (handled int64, net *MemNetwork) {
	t.Helper()
	net = NewMemNetwork(MemSeed(seed))
	net.SetFaults(f)
	var got atomic.Int64
	a, err := net.Transport(Peer{ID: nodeID(1), Addr: "mem://a"}, echo)
	if err != nil {
		t.Fatal(err)
	}
	b, err := net.Transport(Peer{ID: nodeID(2), Addr: "mem://b"}, func(context.Context, *Envelope) *Envelope {
		got.Add(1)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, 10*time.Second)
	for i := range n {
		if err := a.Send(ctx, "mem://b", &Envelope{Type: TypeNotifySuccessor, ID: uint64(i), From: a.self}); err != nil {
			t.Fatal(err)
		}
	}
	// Wait for the delayed frames: every frame not dropped arrives, once
	// or twice.
	want := int64(n) - int64(net.Dropped()) + int64(net.Duplicated())
	for deadline := time.Now().Add(5 * time.Second); got.Load() < want && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	a.Close()
	b.Close()
	return got.Load(), net
}

func TestMemFaultsAreSeeded(t *testing.T) {
	f := Faults{Drop: 0.3, Duplicate: 0.2, Delay: time.Millisecond, Jitter: time.Millisecond}
	h1, n1 := memRun(t, 7, f, 500)
	h2, n2 := memRun(t, 7, f, 500)
	if h1 != h2 || n1.Dropped() != n2.Dropped() || n1.Duplicated() != n2.Duplicated() {
		t.Fatalf("same seed, different runs: %d/%d/%d vs %d/%d/%d",
			h1, n1.Dropped(), n1.Duplicated(), h2, n2.Dropped(), n2.Duplicated())
	}
	if d := n1.Dropped(); d < 100 || d > 200 {
		t.Errorf("dropped %d of 500 at 30%%", d)
	}
	if want := 500 - int64(n1.Dropped()) + int64(n1.Duplicated()); h1 != want {
		t.Errorf("handled %d, want 500 - dropped + duplicated = %d", h1, want)
	}
	h3, n3 := memRun(t, 8, f, 500)
	if h3 == h1 && n3.Dropped() == n1.Dropped() && n3.Duplicated() == n1.Duplicated() {
		t.Errorf("another seed gave the very same faults")
	}
}

func TestMemPartition(t *testing.T) {
	net := NewMemNetwork(MemCall(CallOptions{Timeout: 50 * time.Millisecond, Retries: -1}))
	a, _ := net.Transport(Peer{ID: nodeID(1), Addr: "mem://a"}, echo)
	b, _ := net.Transport(Peer{ID: nodeID(2), Addr: "mem://b"}, echo)
	t.Cleanup(func() { a.Close(); b.Close() })
	ctx := context.Background()
	net.Partition("mem://b", "mem://a")
	if _, err := a.Call(ctx, "mem://b", request(a.self, 1, `1`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call across a partition: %v", err)
	}
	net.Heal("mem://a", "mem://b")
	if _, err := a.Call(ctx, "mem://b", request(a.self, 2, `1`)); err != nil {
		t.Fatalf("call after healing: %v", err)
	}
	net.Partition("mem://a", "mem://b")
	net.HealAll()
	if _, err := a.Call(ctx, "mem://b", request(a.self, 3, `1`)); err != nil {
		t.Fatalf("call after HealAll: %v", err)
	}
	if _, err := a.Call(ctx, "mem://nobody", request(a.self, 4, `1`)); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("call to nobody: %v", err)
	}
	if _, err := net.Transport(Peer{ID: nodeID(3), Addr: "mem://a"}, echo); err == nil {
		t.Error("two transports at one address")
	}
	if _, err := net.Transport(Peer{ID: nodeID(3), Addr: "ws://a:1"}, echo); err == nil {
		t.Error("mem transport at a ws:// address")
	}
}

// TestMemLossyCallsRetry: with replies lost at random, calls without a
// deadline still succeed through their retries.
func TestMemLossyCallsRetry(t *testing.T) {
	net := NewMemNetwork(MemSeed(3), MemCall(CallOptions{Timeout: 20 * time.Millisecond, Retries: 6, Backoff: time.Millisecond}))
	a, _ := net.Transport(Peer{ID: nodeID(1), Addr: "mem://a"}, echo)
	b, _ := net.Transport(Peer{ID: nodeID(2), Addr: "mem://b"}, echo)
	t.Cleanup(func() { a.Close(); b.Close() })
	net.SetFaults(Faults{Drop: 0.2})
	for i := range 50 {
		if r, err := a.Call(context.Background(), "mem://b", request(a.self, uint64(i), `1`)); err != nil || r.ID != uint64(i) {
			t.Fatalf("call %d: %v %v", i, r, err)
		}
	}
	if s := a.Stats(); s.Retries == 0 {
		t.Errorf("no retries at 20%% loss: %+v", s)
	}
}
