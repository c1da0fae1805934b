package node

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/ringledger"
)

// Ops of the layers above the node (the Web of Things) travel between nodes in
// the ledger's envelope and are answered the same way; the node hands each to
// the handler registered for its op name.

// An OpHandler answers one op a peer sent: from is the authenticated sender
// (a member now), body the op's body; its answer is encoded as JSON. Return a
// *ringledger.Refusal (Refuse) to refuse with a reason.
type OpHandler func(ctx context.Context, from Peer, body json.RawMessage) (any, error)

// Refusal codes for op handlers (see ringledger.Code).
const (
	CodeRefused     = ringledger.CodeRefused
	CodeMisrouted   = ringledger.CodeMisrouted
	CodeUnavailable = ringledger.CodeUnavailable
)

// Refuse makes a refusal for an OpHandler to return.
func Refuse(code ringledger.Code, format string, args ...any) error {
	return ringledger.Refuse(code, format, args...)
}

// DecodeOp decodes an op's body strictly, as a refusal when it does not.
func DecodeOp(op string, body json.RawMessage, v any) error {
	return ringledger.DecodeOpBody(op, body, v)
}

type opTable struct {
	mu sync.RWMutex
	h  map[string]OpHandler
}

// HandleOp registers h for op. Op names are the layer's own ("wot.subscribe");
// registering the ledger's names, or one twice, panics: it is a programming error.
func (n *Node) HandleOp(op string, h OpHandler) {
	n.ops.mu.Lock()
	defer n.ops.mu.Unlock()
	if n.ops.h == nil {
		n.ops.h = map[string]OpHandler{}
	}
	if _, dup := n.ops.h[op]; dup || op == opRevocations || op == "" {
		panic(fmt.Sprintf("node: op %q registered twice or reserved", op))
	}
	n.ops.h[op] = h
}

// handler returns the handler registered for op, if any.
func (n *Node) opHandler(op string) (OpHandler, bool) {
	n.ops.mu.RLock()
	defer n.ops.mu.RUnlock()
	h, ok := n.ops.h[op]
	return h, ok
}

// CallOp sends op with body to p and decodes its answer into out (nil:
// ignore it). A refusal comes back as an error wrapping *ringledger.Refusal.
func (n *Node) CallOp(ctx context.Context, p Peer, op string, body, out any) error {
	if p.ID == n.ID() {
		h, ok := n.opHandler(op)
		if !ok {
			return fmt.Errorf("no handler for op %q", op)
		}
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		ans, err := h(ctx, p, b)
		if err != nil || out == nil {
			return err
		}
		raw, err := json.Marshal(ans)
		if err != nil {
			return err
		}
		return json.Unmarshal(raw, out)
	}
	return n.dist.CallOp(ctx, p, op, body, out)
}

// Owner returns the node that owns key now: successor(key).
func (n *Node) Owner(ctx context.Context, key ledger.Key) (Peer, error) {
	return n.dist.Owner(ctx, key)
}

// RingMembers lists the ring's nodes (a walk by successors, cached for a
// sync interval; a ring of one before the ring is attached).
func (n *Node) RingMembers(ctx context.Context) ([]Peer, error) {
	return n.dist.Members(ctx)
}
