package node

import (
	"context"
	"errors"
	"sync"

	"github.com/flownode/flownode/ledger"
)

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

// Owner checks: the layers above the node say which readings may be signed
// at all. Unlike the entry hooks, they run where a reading is signed, on the
// node that owns its key (for a reading another node took from its device,
// on the RPC goroutine of that node's put): a check at the entry node alone
// would let any other node's front skip it.

// checkHooks are the functions CheckReadings registered.
type checkHooks struct {
	mu sync.RWMutex
	fs []func(context.Context, []ledger.Reading) error
}

// CheckReadings registers f, called with every batch of readings this node
// is about to sign as their owner, before anything is stored. A
// *ledger.InputError (Index: the reading of rs) refuses the batch for good:
// the client gets it as a 400 (or 4.00, or an error frame). Any other error
// fails the put, which the entry node retries while its deadline allows: f
// returns one when it cannot tell (a lookup failed), rather than accept what
// it could not check. f may read the ring; it must not put.
func (n *Node) CheckReadings(f func(ctx context.Context, rs []ledger.Reading) error) {
	n.checks.mu.Lock()
	defer n.checks.mu.Unlock()
	n.checks.fs = append(n.checks.fs, f)
}

// checkReadings is ringledger's Config.Check: every registered check.
func (n *Node) checkReadings(ctx context.Context, rs []ledger.Reading) error {
	n.checks.mu.RLock()
	fs := n.checks.fs
	n.checks.mu.RUnlock()
	if len(fs) == 0 && n.cfg.AwaitChecks {
		return errors.New("this node is starting: it signs readings once its checks are installed; retry")
	}
	for _, f := range fs {
		if err := f(ctx, rs); err != nil {
			return err
		}
	}
	return nil
}
