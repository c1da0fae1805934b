package peercache

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// latencies is the peerstore.Metrics the routing table consults: an
// exponentially weighted moving average of round-trip samples per peer. It is
// ours rather than go-libp2p's peerstore so that the cache pulls in no more of
// libp2p than the table itself needs.
type latencies struct {
	mu   sync.Mutex
	ewma map[peer.ID]time.Duration
}

// latencySmoothing is the weight of a new sample (as libp2p's peerstore).
const latencySmoothing = 0.1

func newLatencies() *latencies { return &latencies{ewma: make(map[peer.ID]time.Duration)} }

func (l *latencies) RecordLatency(p peer.ID, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	old, ok := l.ewma[p]
	if !ok {
		l.ewma[p] = d
		return
	}
	l.ewma[p] = time.Duration((1-latencySmoothing)*float64(old) + latencySmoothing*float64(d))
}

func (l *latencies) LatencyEWMA(p peer.ID) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ewma[p]
}

func (l *latencies) RemovePeer(p peer.ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.ewma, p)
}
