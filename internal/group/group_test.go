package group

import (
	"sync"
	"sync/atomic"
	"testing"
)

// Every request runs exactly once, batches never overlap, and requests that
// arrive during a batch share the next one.
func TestSerial(t *testing.T) {
	var g Serial[int]
	var running, batches atomic.Int32
	seen := make([]atomic.Int32, 400)
	var wg sync.WaitGroup
	for i := range seen {
		wg.Go(func() {
			g.Do(i, func(vs []int) {
				if running.Add(1) != 1 {
					t.Error("two batches ran at once")
				}
				batches.Add(1)
				for _, v := range vs {
					seen[v].Add(1)
				}
				running.Add(-1)
			})
			if seen[i].Load() != 1 {
				t.Errorf("request %d returned before its batch ran", i)
			}
		})
	}
	wg.Wait()
	for i := range seen {
		if n := seen[i].Load(); n != 1 {
			t.Fatalf("request %d ran %d times", i, n)
		}
	}
	t.Logf("%d requests in %d batches", len(seen), batches.Load())
}
