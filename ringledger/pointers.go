package ringledger

import (
	"context"
	"errors"
	"sync"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/ringledger/placement"
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
		w.d.spawn(&w.d.wg, w.run)
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
		_, err := d.storeOwnPointers(ctx, d.cfg.Self, wirePointers(ps))
		return err
	}
	for len(ps) > 0 {
		n := min(len(ps), listPage)
		var ans storedAnswer
		if err := d.call(ctx, owner, opPointers, replicateBody{Pointers: wirePointers(ps[:n])}, &ans); err != nil {
			return err
		}
		d.learnRange(owner, ans.Range)
		ps = ps[n:]
	}
	return nil
}

// checkPointers refuses pointers that contradict what this node holds: a
// stored pointer of the same txID to another key (a pointer is never
// rewritten), a stored record of that txID under another key, or two keys
// for one txID in the message. When mustOwn is set and sender is a peer, the
// sender must own the position mustOwn names as this node knows the ring (the
// data key for a pointer write, the pointer's position for a copy).
func (d *Ledger) checkPointers(st chord.State, sender chord.Peer, ws []wirePointer, mustOwn func(wirePointer) ledger.Key) error {
	seen := make(map[ledger.Hash]ledger.Key, len(ws))
	for _, w := range ws {
		if mustOwn != nil && sender.ID != d.self() && !placement.MayOwn(st, sender.ID, mustOwn(w)) {
			return refuse(CodeRefused, "pointer %s: position %s is not the sender's as this node knows the ring", w.TxID, mustOwn(w))
		}
		if k, ok := seen[w.TxID]; ok && k != w.Key {
			return refuse(CodeRefused, "pointer %s is sent with two keys", w.TxID)
		}
		seen[w.TxID] = w.Key
		key, err := d.store.Pointer(w.TxID)
		switch {
		case err == nil && ledger.Key(key) != w.Key:
			return refuse(CodeRefused, "pointer %s would overwrite the stored one (key %s) with key %s", w.TxID, ledger.Key(key), w.Key)
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return err
		}
		raw, err := d.store.Record(w.TxID)
		switch {
		case err == nil:
			if r, perr := ledger.ParseRecord(raw); perr == nil && r.Key != w.Key {
				return refuse(CodeRefused, "pointer %s names key %s; the record this node holds has key %s", w.TxID, w.Key, r.Key)
			}
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
	}
	return nil
}
