package rpc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/flownode/flownode/rpc"
)

// Two nodes on an in-memory network: one asks the other for a successor.
func ExampleMemNetwork() {
	net := rpc.NewMemNetwork(rpc.MemSeed(42))
	alice := rpc.Peer{ID: "1111111111111111111111111111111111111111", Addr: "mem://alice"}
	bob := rpc.Peer{ID: "2222222222222222222222222222222222222222", Addr: "mem://bob"}

	a, _ := net.Transport(alice, func(context.Context, *rpc.Envelope) *rpc.Envelope { return nil })
	defer a.Close()
	b, _ := net.Transport(bob, func(_ context.Context, req *rpc.Envelope) *rpc.Envelope {
		if req.Type != rpc.TypeFindSuccessor {
			return nil
		}
		owner, _ := json.Marshal(map[string]any{"done": true, "owner": bob})
		return &rpc.Envelope{Type: rpc.TypeFoundSuccessor, Payload: owner}
	})
	defer b.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	reply, err := a.Call(ctx, bob.Addr, &rpc.Envelope{
		Type: rpc.TypeFindSuccessor, ID: 1, From: alice, To: bob,
		Key: "1234567890abcdef1234567890abcdef12345678",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(reply.Type, reply.ID, reply.From.Addr, string(reply.Payload))
	// Output: FOUND_SUCCESSOR 1 mem://bob {"done":true,"owner":{"id":"2222222222222222222222222222222222222222","addr":"mem://bob"}}
}
