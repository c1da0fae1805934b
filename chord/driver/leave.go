package driver

import (
	"context"

	"github.com/flownode/flownode/chord"
)

// Leave departs gracefully: the core tells its predecessor and successor
// (NOTIFY_EDGE), and Leave sends those messages itself, waiting for them
// (bounded by ctx), rather than leaving them to the queue that Close drops.
// Close the driver afterwards.
func (d *Driver) Leave(ctx context.Context) error {
	var rd chord.Ready
	if err := d.do(ctx, func() {
		d.core.Leave()
		rd = d.core.Ready()
		for _, e := range rd.Events {
			d.onEvent(e)
		}
	}); err != nil {
		return err
	}
	var first error
	for _, m := range rd.Messages {
		if err := d.send(ctx, m); err != nil && first == nil {
			first = err
		}
	}
	return first
}
