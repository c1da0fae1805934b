package ringledger

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/ringledger/placement"
	"github.com/flownode/flownode/store"
)

// Surplus copies. After a join, the nodes that held a range's copies before
// still hold them, though k others now do: without this they would keep them
// forever. A node learns which ranges it holds copies of from the owners'
// repair rounds (each asks its replicas for digests of its range, handleDigest);
// a copy outside its own range and outside every range assigned to it within
// the grace period is surplus (placement.Surplus). It is dropped only once
// the ring around the node has been quiet for the grace period, and only if
// the entry's owner says it holds the entry, does not count this node among
// its replicas, and completed a repair round with all of them within the grace
// period: so a dropped copy is never the last one, nor one of the k.

// maxAssigners bounds the owners remembered as having assigned ranges.
const maxAssigners = 64

// maxSurplus bounds the entries one repair round examines for dropping.
const maxSurplus = 5000

type assignment struct {
	r  placement.Range
	at time.Time
}

type assignments struct {
	mu sync.Mutex
	by map[chord.ID]assignment
}

// grace is how long a copy must have been surplus, and the ring quiet,
// before it is dropped: six repair intervals.
func (d *Ledger) grace() time.Duration { return 6 * d.cfg.SyncInterval }

// noteAssigned records that owner named this node a holder of copies of r.
func (d *Ledger) noteAssigned(owner chord.ID, r placement.Range) {
	a := &d.assigned
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.by == nil {
		a.by = map[chord.ID]assignment{}
	}
	if _, ok := a.by[owner]; !ok && len(a.by) >= maxAssigners {
		var oldest chord.ID
		var at time.Time
		for id, e := range a.by {
			if at.IsZero() || e.at.Before(at) {
				oldest, at = id, e.at
			}
		}
		delete(a.by, oldest)
	}
	a.by[owner] = assignment{r: r, at: d.now()}
}

// assignedRanges are the ranges assigned within the grace period.
func (d *Ledger) assignedRanges(now time.Time, grace time.Duration) []placement.Range {
	a := &d.assigned
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []placement.Range
	for _, e := range a.by {
		if now.Sub(e.at) < grace {
			out = append(out, e.r)
		}
	}
	return out
}

// surplusEntry is a copy that may be dropped: a record at its data key, a
// pointer at txID[:20], or a history entry at its position (and time).
type surplusEntry struct {
	pos  ledger.Key
	txID ledger.Hash
	time int64
}

// dropSurplus drops the surplus copies the entries' owners confirm (see the
// comment at the top of the file).
func (d *Ledger) dropSurplus(ctx context.Context, st chord.State) error {
	now, grace := d.now(), d.grace()
	if now.Sub(time.Unix(0, d.changedAt.Load())) < grace || now.Sub(d.attachedAt) < grace || placement.Alone(st) {
		return nil
	}
	own, ok := placement.Own(st)
	if !ok {
		return nil
	}
	assigned := d.assignedRanges(now, grace)
	stop := errors.New("enough")
	var recs, ptrs, hist []surplusEntry
	// Everything outside the own range (pred, self] is in (self, pred].
	err := d.store.EachKeyInRange(own.To, own.From, func(key [20]byte, txID [32]byte) error {
		if placement.Surplus(st, assigned, key) {
			recs = append(recs, surplusEntry{pos: key, txID: txID})
		}
		if len(recs) >= maxSurplus {
			return stop
		}
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		return err
	}
	err = d.store.EachPointerInRange(own.To, own.From, func(txID [32]byte, key [20]byte) error {
		if pos := keyOf(txID); placement.Surplus(st, assigned, pos) {
			ptrs = append(ptrs, surplusEntry{pos: pos, txID: txID})
		}
		if len(ptrs) >= maxSurplus {
			return stop
		}
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		return err
	}
	err = d.store.EachHistoryInRange(own.To, own.From, func(ref store.HistoryRef) error {
		if placement.Surplus(st, assigned, ref.Pos) {
			hist = append(hist, surplusEntry{pos: ref.Pos, txID: ref.TxID, time: ref.Time})
		}
		if len(hist) >= maxSurplus {
			return stop
		}
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		return err
	}
	dropRecs, err := d.confirmSurplus(ctx, recs, kindRecords)
	if err != nil {
		return err
	}
	dropPtrs, err := d.confirmSurplus(ctx, ptrs, kindPointers)
	if err != nil {
		return err
	}
	dropHist, err := d.confirmSurplus(ctx, hist, kindHistory)
	if err != nil {
		return err
	}
	txIDs := func(es []surplusEntry) [][32]byte {
		out := make([][32]byte, len(es))
		for i, e := range es {
			out[i] = e.txID
		}
		return out
	}
	refs := make([]store.HistoryRef, len(dropHist))
	for i, e := range dropHist {
		refs[i] = store.HistoryRef{Pos: e.pos, Time: e.time, TxID: e.txID}
	}
	n, err := d.ledger.DropCopies(ctx, txIDs(dropRecs), txIDs(dropPtrs), refs)
	if err != nil {
		return err
	}
	if n+len(dropPtrs)+len(refs) > 0 {
		d.stats.dropped.Add(uint64(n + len(dropPtrs) + len(refs)))
		d.log.Debug("dropped surplus copies", zap.Int("records", n), zap.Int("pointers", len(dropPtrs)), zap.Int("history", len(refs)))
	}
	return nil
}

// confirmSurplus asks the owners of entries (in ring order) which they hold,
// and returns the entries that may be dropped.
func (d *Ledger) confirmSurplus(ctx context.Context, entries []surplusEntry, kind entryKind) ([]surplusEntry, error) {
	var out []surplusEntry
	self := d.self()
	for i := 0; i < len(entries); {
		owner, err := d.owner(ctx, entries[i].pos)
		if err != nil {
			return out, err
		}
		if owner.ID == d.self() {
			i++ // the ring moved since the entries were listed
			continue
		}
		batch := entries[i:min(len(entries), i+listPage)]
		var q hasBody
		for _, e := range batch {
			if kind == kindHistory {
				q.History = append(q.History, wireCursor{Pos: e.pos, Time: e.time, TxID: e.txID})
			} else {
				q.TxIDs = append(q.TxIDs, e.txID)
			}
		}
		q.Pointers = kind == kindPointers
		var ans hasAnswer
		if err := d.call(ctx, owner, opHas, q, &ans); err != nil {
			return out, err
		}
		if len(ans.Held) != len(batch) {
			return out, errors.New("has answer of the wrong length")
		}
		mine := time.Duration(ans.RepairedMs)*time.Millisecond < d.grace()
		for _, r := range ans.Replicas {
			mine = mine && r != self
		}
		// The answer's range decides which copies may go: only one that
		// agrees with this node's view of the ring is believed.
		agrees := placement.Agrees(d.state(), owner.ID, placement.Range{From: ans.Range.From, To: ans.Range.To})
		if !agrees {
			d.stats.badAnswers.Add(1)
		}
		covered := 0
		for j, e := range batch {
			if !agrees {
				break
			}
			if !inRange(ans.Range.From, e.pos, ans.Range.To) {
				break
			}
			covered++
			if mine && ans.Held[j] {
				out = append(out, e)
			}
		}
		if covered == 0 {
			d.ranges.forget(owner.ID) // a stale cached range: look up again
			covered = 1
		} else {
			d.learnRange(owner, ans.Range)
		}
		i += covered
	}
	return out, nil
}
