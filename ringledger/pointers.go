package ringledger

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/ringledger/placement"
	"github.com/flownode/flownode/store"
	"go.uber.org/zap"
)

// pointerWriter writes txID pointers and history entries at their owners in
// the background, many puts' at a time: while one round is out, the next
// gathers. History entries are queued as references (position, time, txID)
// and read from the store when sent, so a slow owner costs 60 bytes of
// memory per entry, not a record; beyond maxIndexPending of them the oldest
// are let go and the history index is rebuilt from the store (rebuild.go).
type pointerWriter struct {
	d       *Ledger
	mu      sync.Mutex
	pending []store.Pointer
	history []historyItem
	raw     int // bytes of the records the history items hold
	waiters []chan error
	wake    chan struct{}
	once    sync.Once
}

// maxIndexPending bounds the history entries waiting to be written, and
// maxPendingBytes the record bytes they keep at hand: past it, entries are
// queued without them, and read from the store when sent.
const (
	maxIndexPending = 100_000
	maxPendingBytes = 8 << 20
)

// add queues pointers and history entries and returns a function that
// waits until the round that writes them ended, with an error if some of
// them could not be written.
func (w *pointerWriter) add(ps []store.Pointer, hs []historyItem) func(context.Context) error {
	w.once.Do(func() {
		w.wake = make(chan struct{}, 1)
		w.d.spawn(&w.d.wg, w.run)
	})
	done := make(chan error, 1)
	w.d.stats.ptrPending.Add(int64(len(ps)))
	w.d.stats.histPending.Add(int64(len(hs)))
	w.mu.Lock()
	w.pending = append(w.pending, ps...)
	for _, h := range hs {
		if h.raw != nil && w.raw+len(h.raw) > maxPendingBytes {
			h.raw = nil
		}
		w.raw += len(h.raw)
		w.history = append(w.history, h)
	}
	over := len(w.history) - maxIndexPending
	if over > 0 {
		for _, h := range w.history[:over] {
			w.raw -= len(h.raw)
		}
		w.history = w.history[over:]
	}
	w.waiters = append(w.waiters, done)
	w.mu.Unlock()
	if over > 0 {
		w.d.stats.histPending.Add(-int64(over))
		w.d.stats.historyFails.Add(uint64(over))
		w.d.needHistoryRebuild()
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return func(ctx context.Context) error {
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (w *pointerWriter) run() {
	sem := make(chan struct{}, indexInflight)
	var rounds sync.WaitGroup
	defer rounds.Wait()
	fail := func(waiters []chan error) {
		w.mu.Lock()
		waiters = append(waiters, w.waiters...)
		w.waiters = nil
		w.mu.Unlock()
		for _, c := range waiters {
			c <- w.d.ctx.Err()
		}
	}
	for {
		select {
		case <-w.d.ctx.Done():
			fail(nil)
			return
		case <-w.wake:
		}
		w.mu.Lock()
		batch, hist, waiters := w.pending, w.history, w.waiters
		w.pending, w.history, w.waiters, w.raw = nil, nil, nil, 0
		w.mu.Unlock()
		if len(batch)+len(hist) == 0 {
			for _, c := range waiters {
				c <- nil
			}
			continue
		}
		// Up to indexInflight rounds are out at once: a put waiting for
		// its history entries does not wait for the round before it.
		select {
		case sem <- struct{}{}:
		case <-w.d.ctx.Done():
			fail(waiters)
			return
		}
		rounds.Add(1)
		go func() {
			defer rounds.Done()
			defer func() { <-sem }()
			err := w.d.writeIndex(w.d.ctx, batch, hist)
			w.d.stats.ptrPending.Add(-int64(len(batch)))
			w.d.stats.histPending.Add(-int64(len(hist)))
			for _, c := range waiters {
				c <- err
			}
		}()
	}
}

// indexInflight bounds the index write rounds out at once.
const indexInflight = 4

// indexItem is a pointer or a history entry on its way to the owner of its
// position.
type indexItem struct {
	pos ledger.Key
	ptr *store.Pointer
	his *historyItem
}

// writeIndex stores each txID pointer and history entry at its owner,
// retrying refusals with fresh lookups for a while. A pointer that cannot be
// written is counted and logged: reads by txID then fall back to asking every
// node. A history entry that cannot be written is counted and makes this
// node rebuild the history index of its range (rebuild.go); the error says
// so, for a put that waits for its replicas.
func (d *Ledger) writeIndex(ctx context.Context, ps []store.Pointer, hs []historyItem) error {
	pending := make([]indexItem, 0, len(ps)+len(hs))
	for i := range ps {
		pending = append(pending, indexItem{pos: keyOf(ps[i].TxID), ptr: &ps[i]})
	}
	for _, h := range dedupeExtremes(hs) {
		h := h
		pending = append(pending, indexItem{pos: h.Pos, his: &h})
	}
	for attempt := 0; len(pending) > 0 && attempt < pointerRounds; attempt++ {
		if attempt > 0 && pause(ctx, attempt) != nil {
			break
		}
		groups := map[chord.ID][]indexItem{}
		owners := map[chord.ID]chord.Peer{}
		var retry []indexItem
		for _, it := range pending {
			o, err := d.owner(ctx, it.pos)
			if err != nil {
				retry = append(retry, it)
				continue
			}
			groups[o.ID] = append(groups[o.ID], it)
			owners[o.ID] = o
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for id, group := range groups {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := d.indexTo(ctx, owners[id], group); err != nil {
					d.log.Debug("index write failed; will retry", zap.String("owner", owners[id].Addr), zap.Error(err))
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
	var ptrFails, histFails int
	for _, it := range pending {
		if it.ptr != nil {
			ptrFails++
		} else {
			histFails++
		}
	}
	if ptrFails > 0 {
		d.stats.pointerFails.Add(uint64(ptrFails))
		d.log.Warn("txID pointers not written; reads by txID will search the ring", zap.Int("pointers", ptrFails))
	}
	if histFails > 0 {
		d.stats.historyFails.Add(uint64(histFails))
		d.needHistoryRebuild()
		d.log.Warn("history entries not written; this node will rebuild the history index of its range", zap.Int("entries", histFails))
		return fmt.Errorf("%d history entries not written", histFails)
	}
	return nil
}

// dedupeExtremes keeps, of the entries bound for one extremes position, the
// oldest and the newest only (the position keeps no others), and every
// bucket entry.
func dedupeExtremes(hs []historyItem) []historyItem {
	out := make([]historyItem, 0, len(hs))
	type span struct{ lo, hi historyItem }
	spans := map[ledger.Key]*span{}
	var order []ledger.Key
	for _, h := range hs {
		if !h.extremes {
			out = append(out, h)
			continue
		}
		sp := spans[h.Pos]
		if sp == nil {
			spans[h.Pos] = &span{h, h}
			order = append(order, h.Pos)
			continue
		}
		if refLess(h.HistoryRef, sp.lo.HistoryRef) {
			sp.lo = h
		}
		if refLess(sp.hi.HistoryRef, h.HistoryRef) {
			sp.hi = h
		}
	}
	for _, pos := range order {
		sp := spans[pos]
		out = append(out, sp.lo)
		if sp.hi.HistoryRef != sp.lo.HistoryRef {
			out = append(out, sp.hi)
		}
	}
	return out
}

// indexTo writes pointers and history entries at their owner (this node or
// a peer), in messages that fit.
func (d *Ledger) indexTo(ctx context.Context, owner chord.Peer, items []indexItem) error {
	var ps []store.Pointer
	var his []historyItem
	for _, it := range items {
		if it.ptr != nil {
			ps = append(ps, *it.ptr)
		} else {
			his = append(his, *it.his)
		}
	}
	hs, err := d.historyFromRecords(his)
	if err != nil {
		return err
	}
	if owner.ID == d.self() {
		// One local write: listPage bounds a message, and a round can hold more.
		_, err := d.storeOwnIndex(ctx, d.cfg.Self, replicateBody{Pointers: wirePointers(ps), History: hs})
		return err
	}
	for _, j := range splitJob(nil, ps, hs) {
		body := replicateBody{Pointers: wirePointers(j.pointers), History: j.history}
		var ans storedAnswer
		if err := d.call(ctx, owner, opPointers, body, &ans); err != nil {
			return err
		}
		d.learnRange(owner, ans.Range)
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
	view := placement.NewView(st)
	for _, w := range ws {
		if mustOwn != nil && sender.ID != d.self() && !view.MayOwn(sender.ID, mustOwn(w)) {
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
