package httpguard

import (
	"context"
	"sync"
)

// budget is a weighted semaphore over body bytes. Unlike a FIFO one, a
// waiter that fits is let in at once: a small reading never queues behind a
// large batch that does not fit yet (each waiter's wait is bounded anyway).
type budget struct {
	mu   sync.Mutex
	cap  int64
	used int64
	wake chan struct{} // closed and replaced on every release
}

func newBudget(capacity int64) *budget {
	return &budget{cap: capacity, wake: make(chan struct{})}
}

// acquire takes n bytes, waiting until they fit or ctx ends. n above the
// capacity is clamped to it, so one maximal body always fits alone.
func (b *budget) acquire(ctx context.Context, n int64) (int64, error) {
	n = min(n, b.cap)
	for {
		b.mu.Lock()
		if b.used+n <= b.cap {
			b.used += n
			b.mu.Unlock()
			return n, nil
		}
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}

// inUse is the bytes held now.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
