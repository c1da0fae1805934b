package node_test

import (
	"context"
	"fmt"
	"os"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

// Example embeds a node in a Go program: one Config starts it in-process (a
// ring of its own here; set Join to enter another), the program puts a
// reading and reads its record back, and the hooks see the record signed and
// the query answered.
func Example() {
	dir, err := os.MkdirTemp("", "flownode-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	// The hooks run on a goroutine of the node's; Stop delivers every queued
	// call before it returns.
	var recorded []node.Receipt
	var queries []node.Query
	ctx := context.Background()
	n, err := node.Start(ctx, node.Config{
		DataDir:    dir,
		Profile:    node.LocalProfile(),
		Listen:     "127.0.0.1:0", // HTTP and WebSocket RPC; mount more with n.Handle
		CoAPListen: "127.0.0.1:0",
		OnRecord:   func(rc node.Receipt, record []byte) { recorded = append(recorded, rc) },
		OnQuery:    func(q node.Query) { queries = append(queries, q) },
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	rcs, err := n.Put(ctx, []ledger.Reading{{Thing: "greenhouse-1", Data: []byte(`{"celsius":21.5}`)}}, node.PutOptions{})
	var raw []byte
	if err == nil {
		raw, err = n.Record(ctx, rcs[0].TxID)
	}
	// Stop leaves the ring (a ring of one: nothing to hand on) and closes.
	if err := n.Stop(ctx); err != nil {
		fmt.Println(err)
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	rec, err := ledger.ParseRecord(raw)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("record of %s: %s\n", rec.Thing, rec.Data)
	fmt.Println("signed by this node:", rcs[0].Owner.ID == n.ID())
	fmt.Println("OnRecord calls:", len(recorded), recorded[0].TxID == rcs[0].TxID)
	fmt.Println("OnQuery calls:", len(queries), queries[0].Kind, queries[0].TxID == rcs[0].TxID, queries[0].Found)
	// Output:
	// record of greenhouse-1: {"celsius":21.5}
	// signed by this node: true
	// OnRecord calls: 1 true
	// OnQuery calls: 1 record true 1
}
