package peercache

import (
	"cmp"
	"crypto/ed25519"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	kbucket "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/flownode/flownode/chord"
)

// Defaults for New.
const (
	DefaultBucketSize = 20
	// DefaultMaxLatency rejects peers slower than this: a rejoin candidate
	// that far away is worse than none.
	DefaultMaxLatency = 10 * time.Second
)

// Entry is one remembered peer.
type Entry struct {
	Peer    chord.Peer
	PeerID  peer.ID
	PubKey  ed25519.PublicKey
	Latency time.Duration // smoothed round-trip time
}

// Cache is safe for concurrent use.
type Cache struct {
	mu      sync.Mutex
	rt      *kbucket.RoutingTable
	lat     *latencies
	entries map[peer.ID]*Entry
}

// PeerID derives the libp2p peer ID of an ed25519 public key (32 bytes).
func PeerID(pub ed25519.PublicKey) (peer.ID, error) {
	pk, err := crypto.UnmarshalEd25519PublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("peer ID from ed25519 key: %w", err)
	}
	return peer.IDFromPublicKey(pk)
}

// New returns an empty cache for the node with public key self; bucketSize 0
// takes DefaultBucketSize.
func New(self ed25519.PublicKey, bucketSize int) (*Cache, error) {
	if bucketSize <= 0 {
		bucketSize = DefaultBucketSize
	}
	id, err := PeerID(self)
	if err != nil {
		return nil, err
	}
	lat := newLatencies()
	rt, err := kbucket.NewRoutingTable(bucketSize, kbucket.ConvertPeerID(id), DefaultMaxLatency, lat, time.Hour, nil)
	if err != nil {
		return nil, fmt.Errorf("peer cache: %w", err)
	}
	return &Cache{rt: rt, lat: lat, entries: make(map[peer.ID]*Entry)}, nil
}

// Add remembers (or refreshes) a live peer with a round-trip sample; rtt 0
// means "no sample". A full bucket may refuse the peer; that is not an error.
func (c *Cache) Add(pub ed25519.PublicKey, p chord.Peer, rtt time.Duration) error {
	id, err := PeerID(pub)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if rtt > 0 {
		c.lat.RecordLatency(id, rtt)
	}
	if e := c.entries[id]; e != nil {
		e.Peer = p
		e.Latency = c.lat.LatencyEWMA(id)
		return nil
	}
	added, err := c.rt.TryAddPeer(id, true, true)
	if err != nil || !added {
		return nil // rejected (too slow, bucket full): simply not remembered
	}
	c.entries[id] = &Entry{Peer: p, PeerID: id, PubKey: slices.Clone(pub), Latency: c.lat.LatencyEWMA(id)}
	return nil
}

// Remove forgets the peer with Chord ID id.
func (c *Cache) Remove(id chord.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for pid, e := range c.entries {
		if e.Peer.ID == id {
			c.rt.RemovePeer(pid)
			c.lat.RemovePeer(pid)
			delete(c.entries, pid)
		}
	}
}

// Entries returns every remembered peer, lowest latency first (ties by peer
// ID, so the order is deterministic). The table may have evicted peers to make
// room; those are dropped here too.
func (c *Cache) Entries() []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Entry
	for _, id := range c.rt.ListPeers() {
		if e := c.entries[id]; e != nil {
			out = append(out, *e)
		}
	}
	if len(out) < len(c.entries) {
		in := make(map[peer.ID]bool, len(out))
		for _, e := range out {
			in[e.PeerID] = true
		}
		for id := range c.entries {
			if !in[id] {
				delete(c.entries, id)
			}
		}
	}
	slices.SortFunc(out, func(a, b Entry) int {
		if c := cmp.Compare(a.Latency, b.Latency); c != 0 {
			return c
		}
		return strings.Compare(string(a.PeerID), string(b.PeerID))
	})
	return out
}

// Candidates returns up to n rejoin candidates, lowest latency first,
// without the peers skip rejects (nil skips none).
func (c *Cache) Candidates(n int, skip func(chord.ID) bool) []chord.Peer {
	var out []chord.Peer
	for _, e := range c.Entries() {
		if len(out) >= n {
			break
		}
		if skip == nil || !skip(e.Peer.ID) {
			out = append(out, e.Peer)
		}
	}
	return out
}

// Len returns how many peers the cache remembers.
func (c *Cache) Len() int { return c.rt.Size() }

// Close releases the routing table.
func (c *Cache) Close() error { return c.rt.Close() }
