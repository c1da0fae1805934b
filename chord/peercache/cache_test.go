package peercache

import (
	"crypto/ed25519"
	"crypto/sha1"
	"fmt"
	"testing"
	"time"

	"github.com/flownode/flownode/chord"
)

func key(i int) ed25519.PublicKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0], seed[1] = byte(i), byte(i>>8)
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
}

func peerOf(pub ed25519.PublicKey) chord.Peer {
	return chord.Peer{ID: chord.ID(sha1.Sum(pub)), Addr: fmt.Sprintf("ws://%x", pub[:4])}
}

func TestPeerIDIsStableAndDistinct(t *testing.T) {
	a1, err := PeerID(key(1))
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := PeerID(key(1))
	b, _ := PeerID(key(2))
	if a1 != a2 || a1 == b {
		t.Fatalf("peer IDs: %s %s %s", a1, a2, b)
	}
	if _, err := PeerID(ed25519.PublicKey{1, 2, 3}); err == nil {
		t.Fatal("a 3-byte key gave a peer ID")
	}
}

func TestCandidatesPreferLowLatency(t *testing.T) {
	c, err := New(key(0), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lat := map[int]time.Duration{1: 30 * time.Millisecond, 2: 5 * time.Millisecond, 3: 80 * time.Millisecond, 4: 12 * time.Millisecond}
	for i := 1; i <= 4; i++ {
		if err := c.Add(key(i), peerOf(key(i)), lat[i]); err != nil {
			t.Fatal(err)
		}
	}
	got := c.Candidates(3, nil)
	want := []chord.Peer{peerOf(key(2)), peerOf(key(4)), peerOf(key(1))}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("candidates %v, want %v", got, want)
	}
	skip := func(id chord.ID) bool { return id == peerOf(key(2)).ID }
	if got := c.Candidates(1, skip); got[0] != peerOf(key(4)) {
		t.Fatalf("with skip: %v", got)
	}
	c.Remove(peerOf(key(4)).ID)
	if c.Len() != 3 || len(c.Candidates(10, nil)) != 3 {
		t.Fatalf("after remove: len %d", c.Len())
	}
	// Too slow to be worth rejoining through.
	c.Add(key(9), peerOf(key(9)), time.Minute)
	if c.Len() != 3 {
		t.Fatalf("a peer with a 1-minute RTT was accepted")
	}
}
