package driver_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/chord/chordtest"
	"github.com/flownode/flownode/rpc"
)

// TestCutOffNodeComesBackAfterHeal: a node cut off from every other node
// declares them all dead and carries on as a ring of its own, while the rest
// close their ring without it; the nodes forget each other. When the network
// heals, the lone node must find its way back through the peers it joined
// by, and the whole ring must be Ideal again (the docker "network
// disconnect" drill found it stranded forever).
func TestCutOffNodeComesBackAfterHeal(t *testing.T) {
	net := rpc.NewMemNetwork()
	prof := chordtest.LocalProfile(t)
	ids := chordtest.RandomIDs(7, 4)
	nodes := make([]*chordtest.Node, len(ids))
	for i, id := range ids {
		nodes[i] = chordtest.NewNode(t, chordtest.NodeConfig{Kind: chordtest.Mem, Net: net, Addr: fmt.Sprintf("mem://n%d", i),
			ID: id, Profile: prof, Events: &events})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nodes[0].Driver.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[1:] {
		if err := n.Driver.Join(ctx, []string{"mem://n0"}); err != nil {
			t.Fatal(err)
		}
	}
	chordtest.WaitIdeal(t, nodes, 20*time.Second, 7)

	// Cut the node that others joined through: the hardest case, since
	// nobody else's bootstrap list names it.
	cut := nodes[0]
	for _, n := range nodes[1:] {
		net.Partition(cut.Driver.Self().Addr, n.Driver.Self().Addr)
	}
	rest := nodes[1:]
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := cut.Driver.State()
		alone := st.Status == chord.StatusMember.String() && len(st.Succs) == 1 && st.Succs[0].ID == st.Self.ID
		if alone && chordtest.IdealErr(chordtest.Views(rest), nil) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the cut: lone node %s %v, rest: %v", st.Status, st.Succs, chordtest.IdealErr(chordtest.Views(rest), nil))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Stay cut off for a while, as an operator's cut would: rejoin attempts
	// and probes in the meantime all fail.
	time.Sleep(120 * prof.Tick)
	net.HealAll()
	took := chordtest.WaitIdeal(t, nodes, 30*time.Second, 7)
	t.Logf("whole ring Ideal %v after the heal", took)
}
