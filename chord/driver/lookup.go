package driver

import (
	"context"

	"github.com/flownode/flownode/chord"
)

// Lookup finds successor(key): the owner and the number of remote nodes
// asked on the way.
func (d *Driver) Lookup(ctx context.Context, key chord.ID) (owner chord.Peer, hops int, err error) {
	w := make(chan chord.LookupDone, 1)
	var id uint64
	if err := d.do(ctx, func() {
		id = d.core.Lookup(key)
		d.waiters[id] = w
	}); err != nil {
		return chord.Peer{}, 0, err
	}
	select {
	case r := <-w:
		return r.Owner, r.Hops, r.Err
	case <-ctx.Done():
		// The core finishes the lookup by its own timeout; nobody reads it.
		_ = d.do(context.Background(), func() { delete(d.waiters, id) })
		return chord.Peer{}, 0, ctx.Err()
	}
}
