package ringledger

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/store"
)

// Rebuilding the history index from the records a node owns.
//
// Two things leave records out of their Thing's history: a data directory
// from before the index existed, and history entries whose owner did not
// take them after the writer's retries (pointers.go). In both cases the
// node walks the records of its own range (pred, self] — those it owns as
// primary, so the history owners accept them from it — and writes their
// history entries again, a chunk per repair round; writing an entry that is
// there already changes nothing. The store's meta entry historyMeta says
// whether the walk is owed, so that it survives a restart.

// historyMeta is the store's meta entry: historyBuilt, or historyOwed.
const historyMeta = "history-index"

var (
	historyBuilt = []byte("built")
	historyOwed  = []byte("owed")
)

// rebuildChunk is how many records are indexed at once, and
// rebuildPerRound how many one repair round indexes at most.
const (
	rebuildChunk    = 1000
	rebuildPerRound = 20 * rebuildChunk
)

type historyRebuild struct {
	owed     atomic.Bool
	failures atomic.Uint64 // history writes that failed, ever
	mu       sync.Mutex    // one walk at a time
	walking  bool          // a walk is under way: at is where it goes on
	at       ledger.Key
	startF   uint64 // failures when the walk began
}

// loadHistoryState reads whether a rebuild is owed: after a failure (the
// meta says so), or for a store that holds records but was never indexed.
func (d *Ledger) loadHistoryState() {
	v, err := d.store.Meta(historyMeta)
	switch {
	case err == nil:
		d.rebuild.owed.Store(string(v) != string(historyBuilt))
	case errors.Is(err, store.ErrNotFound):
		any := false
		stop := errors.New("found one")
		err := d.store.EachKeyIndex(func([20]byte, [32]byte) error { any = true; return stop })
		if err != nil && !errors.Is(err, stop) {
			d.log.Warn("cannot tell whether the history index is owed; rebuilding it", zap.Error(err))
			any = true
		}
		if any {
			d.rebuild.owed.Store(true)
			return
		}
		d.setHistoryMeta(historyBuilt)
	default:
		d.log.Warn("cannot read the history index state; rebuilding it", zap.Error(err))
		d.rebuild.owed.Store(true)
	}
}

func (d *Ledger) setHistoryMeta(v []byte) {
	if err := d.store.Write(d.ctx, store.Write{Meta: map[string][]byte{historyMeta: v}}); err != nil && d.ctx.Err() == nil {
		d.log.Warn("cannot record the history index state", zap.Error(err))
	}
}

// needHistoryRebuild records that history entries were lost on their way:
// the node's range is indexed again.
func (d *Ledger) needHistoryRebuild() {
	d.rebuild.failures.Add(1)
	if d.rebuild.owed.CompareAndSwap(false, true) {
		d.setHistoryMeta(historyOwed)
	}
}

// HistoryOwed reports whether this node still owes the history entries of
// some records of its range (a rebuild is under way or due).
func (d *Ledger) HistoryOwed() bool { return d.rebuild.owed.Load() }

// rebuildHistory indexes up to rebuildPerRound records of this node's range
// from where the walk stopped; once a whole walk went without a failed
// write, the rebuild is done.
func (d *Ledger) rebuildHistory(ctx context.Context, st chord.State) error {
	if !d.rebuild.owed.Load() {
		return nil
	}
	from, to, ok := ownRange(st)
	if !ok {
		return nil
	}
	rb := &d.rebuild
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if !rb.walking {
		rb.walking, rb.at, rb.startF = true, from, rb.failures.Load()
	}
	if !inRange(from, rb.at, to) {
		rb.at = from // the range moved: start again within it
	}
	done := 0
	for done < rebuildPerRound {
		var items []historyItem
		var last ledger.Key
		n := 0
		stop := errors.New("chunk full")
		err := d.store.EachKeyInRange(rb.at, to, func(key [20]byte, txID [32]byte) error {
			if n == rebuildChunk && ledger.Key(key) != last {
				return stop // whole keys per chunk: the cursor is a key
			}
			raw, err := d.store.Record(txID)
			if err != nil {
				return err
			}
			r, err := ledger.ParseRecord(raw)
			if err != nil {
				return err
			}
			items = append(items, historyItems(r.Thing, r.Time, r.TxID, nil)...)
			last = key
			n++
			return nil
		})
		if err != nil && !errors.Is(err, stop) {
			return err
		}
		if len(items) > 0 {
			if err := d.ptrs.add(nil, items)(ctx); err != nil {
				return err
			}
		}
		done += n
		if !errors.Is(err, stop) {
			// The walk reached the end of the range.
			rb.walking = false
			if rb.failures.Load() == rb.startF {
				rb.owed.Store(false)
				d.setHistoryMeta(historyBuilt)
				d.log.Info("history index of this node's range written")
			}
			return nil
		}
		rb.at = last
	}
	return nil
}
