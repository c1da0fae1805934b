package node

import "sync"

// Entry hooks: the layers above the node (the Web of Things) learn of every
// reading that entered the ring through this node, whichever front took it
// (POST /api/v1/records, a WebSocket or CoAP device), so that observers get
// it live. Unlike Config.OnRecord (the records this node signs as owner, on
// the hook goroutine), they see what this node's clients wrote, with the
// signed records the owners answered (Receipt.Record), in the order of the
// writes of one caller.

// putHooks are the functions OnPut registered.
type putHooks struct {
	mu sync.RWMutex
	fs []func([]Receipt)
}

// OnPut registers f, called after every Put through this node that
// succeeded, with its receipts (Record filled) in the readings' order, on the
// caller's goroutine before Put returns. f must be quick and must not block:
// it runs on the write path (the Web of Things only queues updates there).
func (n *Node) OnPut(f func([]Receipt)) {
	n.puts.mu.Lock()
	defer n.puts.mu.Unlock()
	n.puts.fs = append(n.puts.fs, f)
}

// entered calls the OnPut hooks with the receipts of a successful Put.
func (n *Node) entered(rcs []Receipt) {
	n.puts.mu.RLock()
	defer n.puts.mu.RUnlock()
	for _, f := range n.puts.fs {
		f(rcs)
	}
}
