package driver_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/flownode/flownode/chord/chordtest"
)

// TestCloseEndsGoroutines: closing every driver (and its listeners) ends
// every goroutine they started.
func TestCloseEndsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	nodes := startRing(t, chordtest.Mixed, 4, 21, chordtest.LocalProfile(t))
	chordtest.WaitIdeal(t, nodes, 20*time.Second, 21)
	for _, n := range nodes {
		n.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after Close:\n%s", before, g, buf[:runtime.Stack(buf, true)])
	}
}
