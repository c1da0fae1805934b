package ringledger

import (
	"context"
	"sync"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/store"
	"go.uber.org/zap"
)

// pointerWriter writes txID pointers at their owners in the background,
// many puts' pointers at a time: while one round is out, the next gathers.
type pointerWriter struct {
	d       *Ledger
	mu      sync.Mutex
	pending []store.Pointer
	wake    chan struct{}
	once    sync.Once
}

func (w *pointerWriter) add(ps []store.Pointer) {
	w.once.Do(func() {
		w.wake = make(chan struct{}, 1)
		w.d.wg.Add(1)
		go w.run()
	})
	w.d.stats.ptrPending.Add(int64(len(ps)))
	w.mu.Lock()
	w.pending = append(w.pending, ps...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *pointerWriter) run() {
	defer w.d.wg.Done()
	for {
		select {
		case <-w.d.ctx.Done():
			return
		case <-w.wake:
		}
		w.mu.Lock()
		batch := w.pending
		w.pending = nil
		w.mu.Unlock()
		if len(batch) > 0 {
			w.d.writePointers(w.d.ctx, batch)
			w.d.stats.ptrPending.Add(-int64(len(batch)))
		}
	}
}

// writePointers stores each txID pointer at its owner, retrying refusals
// with fresh lookups for a while. A pointer that cannot be written is
// counted and logged: reads by txID then fall back to asking every node.
func (d *Ledger) writePointers(ctx context.Context, ps []store.Pointer) {
	pending := ps
	for attempt := 0; len(pending) > 0 && attempt < pointerRounds; attempt++ {
		if attempt > 0 && pause(ctx, attempt) != nil {
			break
		}
		groups := map[chord.ID][]store.Pointer{}
		owners := map[chord.ID]chord.Peer{}
		var retry []store.Pointer
		for _, p := range pending {
			o, err := d.owner(ctx, keyOf(p.TxID))
			if err != nil {
				retry = append(retry, p)
				continue
			}
			groups[o.ID] = append(groups[o.ID], p)
			owners[o.ID] = o
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for id, group := range groups {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := d.pointersTo(ctx, owners[id], group); err != nil {
					d.log.Debug("pointer write failed; will retry", zap.String("owner", owners[id].Addr), zap.Error(err))
					d.ranges.forget(id)
					mu.Lock()
					retry = append(retry, group...)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		pending = retry
	}
	if len(pending) > 0 {
		d.stats.pointerFails.Add(uint64(len(pending)))
		d.log.Warn("txID pointers not written; reads by txID will search the ring", zap.Int("pointers", len(pending)))
	}
}

// pointersTo writes pointers at their owner (this node or a peer).
func (d *Ledger) pointersTo(ctx context.Context, owner chord.Peer, ps []store.Pointer) error {
	if owner.ID == d.self() {
		// One local write: listPage bounds a message, and a round can hold more.
		_, err := d.storeOwnPointers(ctx, wirePointers(ps))
		return err
	}
	for len(ps) > 0 {
		n := min(len(ps), listPage)
		var ans storedAnswer
		if err := d.call(ctx, owner, opPointers, replicateBody{Pointers: wirePointers(ps[:n])}, &ans); err != nil {
			return err
		}
		d.ranges.learn(ans.Range.From, ans.Range.To, owner, d.now())
		ps = ps[n:]
	}
	return nil
}
