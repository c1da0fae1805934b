package driver_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/chord/chordtest"
	"github.com/flownode/flownode/chord/driver"
	"github.com/flownode/flownode/rpc"
)

// TestRing forms a 16-node ring over each transport (and a mix of both), waits
// for Ideal, closes three nodes abruptly and waits for Ideal again.
func TestRing(t *testing.T) {
	for i, k := range []chordtest.Kind{chordtest.WS, chordtest.WSTLS, chordtest.CoAP, chordtest.CoAPS, chordtest.Mixed} {
		t.Run(string(k), func(t *testing.T) {
			seed := uint64(100 + i)
			// CoAP rings need no extra slack: a reply lost to a full UDP
			// buffer comes back with the retransmission, after the core's
			// request timeout, and the core still uses it (chord's
			// onLateReply).
			prof := chordtest.LocalProfile(t)
			nodes := startRing(t, k, 16, seed, prof)
			took := chordtest.WaitIdeal(t, nodes, 40*time.Second, seed)
			t.Logf("%s: 16 nodes Ideal %v after the joins returned", k, took.Round(time.Millisecond))

			for _, j := range []int{3, 4, 11} { // two neighbours in ID order are likely among them
				nodes[j].Close()
			}
			live := append(append(append([]*chordtest.Node{}, nodes[:3]...), nodes[5:11]...), nodes[12:]...)
			took = chordtest.WaitIdeal(t, live, 40*time.Second, seed+1)
			t.Logf("%s: 13 nodes Ideal again %v after 3 abrupt failures", k, took.Round(time.Millisecond))
		})
	}
}

// TestWalk walks a small mixed ring by successors, asking each node.
func TestWalk(t *testing.T) {
	nodes := startRing(t, chordtest.Mixed, 5, 7, chordtest.LocalProfile(t))
	chordtest.WaitIdeal(t, nodes, 20*time.Second, 7)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ring, err := nodes[2].Driver.Walk(ctx, 64)
	if err != nil || len(ring) != 5 {
		t.Fatalf("walk: %d nodes, %v", len(ring), err)
	}
	for i := 1; i < len(ring); i++ {
		if !chord.Between(ring[i-1].ID, ring[i].ID, ring[(i+1)%len(ring)].ID) && len(ring) > 2 {
			t.Errorf("walk out of ring order at %d: %v", i, ring)
		}
	}
}

// TestLeave: a node that leaves gracefully is spliced out by its neighbours
// at once (NOTIFY_EDGE), and the ring is Ideal without it.
func TestLeave(t *testing.T) {
	nodes := startRing(t, chordtest.WS, 6, 11, chordtest.LocalProfile(t))
	chordtest.WaitIdeal(t, nodes, 20*time.Second, 11)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := nodes[2].Driver.Leave(ctx); err != nil {
		t.Fatalf("leave: %v", err)
	}
	nodes[2].Close()
	live := append(append([]*chordtest.Node{}, nodes[:2]...), nodes[3:]...)
	took := chordtest.WaitIdeal(t, live, 20*time.Second, 12)
	t.Logf("5 nodes Ideal %v after a graceful leave", took.Round(time.Millisecond))
}

// TestJoinNobody: a join through addresses where nobody answers fails with
// ErrNoBootstrap, and the node can still create a ring.
func TestJoinNobody(t *testing.T) {
	n := chordtest.NewNode(t, chordtest.NodeConfig{Kind: chordtest.WS, ID: chordtest.RandomIDs(3, 1)[0], Advertise: rpc.SchemeWS, Profile: chordtest.LocalProfile(t), Events: &events})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := n.Driver.Join(ctx, []string{"ws://127.0.0.1:1", "coap://127.0.0.1:1"})
	if !errors.Is(err, driver.ErrNoBootstrap) {
		t.Fatalf("join through nobody: %v, want ErrNoBootstrap", err)
	}
	if err := n.Driver.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := chordtest.IdealErr(chordtest.Views([]*chordtest.Node{n}), nil); err != nil {
		t.Fatalf("lone ring: %v", err)
	}
}
