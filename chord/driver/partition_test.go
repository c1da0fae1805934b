package driver_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/chord/driver"
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
	prof := localProfile(t)
	ids := randomIDs(7, 4)
	nodes := make([]*testNode, len(ids))
	for i, id := range ids {
		addr := fmt.Sprintf("mem://n%d", i)
		d, err := driver.New(driver.Config{Self: chord.Peer{ID: id, Addr: addr}, Profile: prof, OnEvent: countEvent,
			Transport: func(h rpc.Handler) (rpc.Transport, error) {
				return net.Transport(rpc.Peer{ID: id.Hex(), Addr: addr}, h)
			}})
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = &testNode{d: d}
		t.Cleanup(nodes[i].close)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nodes[0].d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[1:] {
		if err := n.d.Join(ctx, []string{"mem://n0"}); err != nil {
			t.Fatal(err)
		}
	}
	waitIdeal(t, nodes, 20*time.Second, 7)

	// Cut the node that others joined through: the hardest case, since
	// nobody else's bootstrap list names it.
	cut := nodes[0]
	for _, n := range nodes[1:] {
		net.Partition(cut.d.Self().Addr, n.d.Self().Addr)
	}
	rest := nodes[1:]
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := cut.d.State()
		alone := st.Status == chord.StatusMember.String() && len(st.Succs) == 1 && st.Succs[0].ID == st.Self.ID
		if alone && driver.IdealErr(states(rest)) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the cut: lone node %s %v, rest: %v", st.Status, st.Succs, driver.IdealErr(states(rest)))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Stay cut off for a while, as an operator's cut would: rejoin attempts
	// and probes in the meantime all fail.
	time.Sleep(120 * prof.Tick)
	net.HealAll()
	took := waitIdeal(t, nodes, 30*time.Second, 7)
	t.Logf("whole ring Ideal %v after the heal", took)
}
