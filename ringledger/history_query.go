package ringledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"go.uber.org/zap"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/store"
)

// Reading a Thing's history from the history index (history.go).
//
// Cost, for a query over B buckets on a ring of N nodes (h = Chord lookup
// hops, about ½·log2 N; a lookup is skipped when the range cache knows the
// owner): one lookup of the Thing's extremes (h + 1 round trips) when a
// bound is open or the range is long, then per bucket one lookup (h) and one
// get per page of up to 40 KiB (about 40 records), historyWindow buckets at
// a time, stopping at the limit. The old query asked all N nodes.

// handleGetHistory answers a get of history entries at one position, from
// this node's store only, in time order (newest first with desc), after the
// cursor. The reader checks each record it gets (readBucket).
func (d *Ledger) handleGetHistory(q getBody) (getAnswer, error) {
	out := getAnswer{Records: []json.RawMessage{}}
	switch {
	case q.History == nil || q.TxID != nil || q.Key != nil || q.Skip != 0:
		return out, refuse(CodeRefused, "a history get names a position and a thing, and pages with after, not skip")
	case q.Limit < 0 || q.Limit > maxGetLimit:
		return out, refuse(CodeRefused, "limit must be 0 to %d", maxGetLimit)
	case q.After != nil && q.After.Pos != *q.History:
		return out, refuse(CodeRefused, "the cursor is at another position")
	}
	if err := ledger.ValidThingID(q.Thing); err != nil {
		return out, refuse(CodeRefused, "%v", err)
	}
	hq := store.HistoryQuery{Pos: *q.History, From: q.From, To: q.To, Desc: q.Desc, Limit: q.Limit, MaxBytes: maxPayload}
	if q.After != nil {
		ref := historyRefOf(*q.After)
		hq.After = &ref
	}
	var es []store.HistoryEntry
	var more bool
	var err error
	if *q.History == extremesPos(q.Thing) && q.From == 0 && q.To == 0 && q.After == nil && (q.Limit == 0 || q.Limit >= 2) {
		// A Thing's extremes position holds its two ends: read them by key
		// (store.HistoryEnds), not by a walk over every entry they replaced,
		// between the writes of the position (its lock, as its writers).
		unlock := d.extremesLocks.lock([]ledger.Key{*q.History})
		es, err = d.store.HistoryEnds(*q.History)
		unlock()
		if q.Desc {
			slices.Reverse(es)
		}
	} else {
		es, more, err = d.store.History(hq)
	}
	if err != nil {
		return out, err
	}
	for _, e := range es {
		if err := d.checkStored(store.HistoryKey(e.Pos, e.Time, e.TxID), e.TxID, e.Value, ledger.Location{Thing: q.Thing}); err != nil {
			return out, err
		}
		out.Records = append(out.Records, e.Value)
	}
	out.More = more
	return out, nil
}

// historyQuery is one Thing's history query, as the client asked it.
type historyQuery struct {
	thing    string
	from, to int64 // from ≤ time < to; to 0: no bound
	limit    int
	desc     bool
}

// RecordsByThing returns a Thing's records with from ≤ time < to (to 0: no
// bound), oldest first, at most limit (≤ 0: maxGetLimit), from the ring's
// history index. ErrRangeTooLong: the range spans more than
// MaxHistoryBuckets buckets before the limit is reached.
func (d *Ledger) RecordsByThing(ctx context.Context, thing string, from, to int64, limit int) ([][]byte, error) {
	return d.thingHistory(ctx, historyQuery{thing: thing, from: from, to: to, limit: limit})
}

// RecordsByThingNewestFirst is RecordsByThing, newest record first.
func (d *Ledger) RecordsByThingNewestFirst(ctx context.Context, thing string, from, to int64, limit int) ([][]byte, error) {
	return d.thingHistory(ctx, historyQuery{thing: thing, from: from, to: to, limit: limit, desc: true})
}

// LatestByThing returns the newest record of a Thing, checked, from its
// extremes entry (one lookup and one get), or ErrNotFound.
func (d *Ledger) LatestByThing(ctx context.Context, thing string) ([]byte, error) {
	if err := ledger.ValidThingID(thing); err != nil {
		return nil, &ledger.InputError{Index: -1, Err: err}
	}
	_, newest, err := d.thingExtremes(ctx, thing)
	if err != nil {
		return nil, err
	}
	if newest == nil {
		return nil, ErrNotFound
	}
	return newest.raw, nil
}

func (d *Ledger) thingHistory(ctx context.Context, q historyQuery) ([][]byte, error) {
	if err := ledger.ValidThingID(q.thing); err != nil {
		return nil, &ledger.InputError{Index: -1, Err: err}
	}
	if q.to != 0 && q.to <= q.from {
		return [][]byte{}, nil
	}
	if q.limit <= 0 || q.limit > maxGetLimit {
		q.limit = maxGetLimit
	}
	lo, hi := q.from, q.to
	// An open bound, or a long range, is narrowed to the Thing's oldest and
	// newest records, which the extremes entry knows.
	if lo == 0 || hi == 0 || historyBucketOf(hi-1)-historyBucketOf(lo) >= historyWindow {
		oldest, newest, err := d.thingExtremes(ctx, q.thing)
		switch {
		case err != nil && (!d.attached.Load() || tampered(err)):
			return nil, err
		case err != nil:
			d.log.Info("the history index's extremes did not answer; asking every node", zap.String("thing", q.thing), zap.Error(err))
			return d.recordsByThingEveryNode(ctx, q)
		case newest == nil:
			return [][]byte{}, nil // no record of the Thing is indexed
		}
		lo = max(lo, oldest.time)
		if hi == 0 || hi > newest.time {
			hi = newest.time + 1
		}
		if hi <= lo {
			return [][]byte{}, nil
		}
	}
	first, last := historyBucketOf(lo), historyBucketOf(hi-1)
	n := last - first + 1
	var out [][]byte
	// The window grows from one bucket while buckets come back short: a
	// dense Thing's first bucket may fill the limit alone, a sparse Thing's
	// week is read 8 buckets at a time.
	window := int64(1)
	for done := int64(0); done < n && len(out) < q.limit; window = min(2*window, historyWindow) {
		if done >= MaxHistoryBuckets {
			return nil, ErrRangeTooLong
		}
		// A window holds up to its buckets times the records still wanted:
		// a large limit reads fewer buckets at once.
		w := min(window, n-done, MaxHistoryBuckets-done, max(1, int64(historyWindowRecords/(q.limit-len(out)))))
		pages := make([][]recordAt, w)
		errs := make([]error, w)
		var wg sync.WaitGroup
		for i := int64(0); i < w; i++ {
			b := first + done + i
			if q.desc {
				b = last - done - i
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				pages[i], errs[i] = d.readBucket(ctx, q, b, lo, hi, q.limit-len(out))
			}()
		}
		wg.Wait()
		for i := range w {
			if errs[i] != nil && (!d.attached.Load() || tampered(errs[i])) {
				return nil, errs[i]
			}
			if errs[i] != nil {
				d.stats.indexFallbacks.Add(1)
				d.log.Info("no holder of a history bucket answered; asking every node", zap.String("thing", q.thing), zap.Error(errs[i]))
				return d.recordsByThingEveryNode(ctx, q)
			}
			for _, r := range pages[i] {
				if len(out) < q.limit {
					out = append(out, r.raw)
				}
			}
		}
		done += w
	}
	if out == nil {
		out = [][]byte{}
	}
	return out, nil
}

// thingExtremes returns a Thing's oldest and newest records as its extremes
// entry holds them (both nil when it holds none), checked.
func (d *Ledger) thingExtremes(ctx context.Context, thing string) (oldest, newest *recordAt, err error) {
	pos := extremesPos(thing)
	keep := func(r *ledger.Record) bool { return r.Thing == thing && extremesPos(r.Thing) == pos }
	got, err := d.readAt(ctx, pos, getBody{Thing: thing, Limit: maxExtremes}, maxExtremes, keep)
	if err != nil || len(got) == 0 {
		return nil, nil, err
	}
	return &got[0], &got[len(got)-1], nil
}

// readBucket returns the checked records of a Thing's bucket b with
// lo ≤ time < hi, in the query's order, at most limit.
func (d *Ledger) readBucket(ctx context.Context, q historyQuery, b, lo, hi int64, limit int) ([]recordAt, error) {
	keep := func(r *ledger.Record) bool {
		return r.Thing == q.thing && r.Time >= lo && r.Time < hi && historyBucketOf(r.Time) == b
	}
	got, err := d.readAt(ctx, bucketPos(q.thing, b), getBody{Thing: q.thing, From: lo, To: hi, Desc: q.desc, Limit: min(limit, maxGetLimit)}, limit, keep)
	if q.desc {
		for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
			got[i], got[j] = got[j], got[i]
		}
	}
	return got, err
}

// readAt pages through the history entries at pos that q selects, from the
// position's owner, or, when it fails, from the next holders of its copies
// (successor(owner+1), ...), going on at the cursor where the last one
// stopped. Every record is checked (peerRecord: signature, txID, signer's
// membership) and kept only if keep says so; what comes back is sorted
// oldest first, without duplicates, at most limit.
func (d *Ledger) readAt(ctx context.Context, pos ledger.Key, q getBody, limit int, keep func(*ledger.Record) bool) ([]recordAt, error) {
	q.History = &pos
	got := map[ledger.Hash]recordAt{}
	p, err := d.cfg.Self, error(nil) // a ring of one owns every position
	if d.attached.Load() {
		p, err = d.owner(ctx, pos)
	}
	for tries := 0; ; tries++ {
		if err == nil {
			if err = d.pageAt(ctx, p, &q, limit, keep, got); err == nil {
				break
			}
			if tampered(err) {
				return nil, err
			}
			if refusalOf(err) == nil && ctx.Err() == nil {
				d.ranges.forget(p.ID)
			}
		}
		if tries == d.k-1 || ctx.Err() != nil || !d.attached.Load() {
			return nil, fmt.Errorf("history at %s: none of %d holders answered: %w", pos, tries+1, err)
		}
		// The next holder of the position's copies: the failed node's successor.
		if p.IsZero() {
			return nil, err
		}
		p, _, err = d.ring.Lookup(ctx, nextKey(p.ID))
	}
	out := make([]recordAt, 0, len(got))
	for _, r := range got {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].time != out[j].time {
			return out[i].time < out[j].time
		}
		return bytes.Compare(out[i].txID[:], out[j].txID[:]) < 0
	})
	if q.Desc && len(out) > limit {
		out = out[len(out)-limit:]
	} else if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// pageAt reads from p the pages of q after its cursor, which it moves on,
// until limit records were kept or p has no more.
func (d *Ledger) pageAt(ctx context.Context, p chord.Peer, q *getBody, limit int, keep func(*ledger.Record) bool, got map[ledger.Hash]recordAt) error {
	for len(got) < limit {
		ans, err := d.getFrom(ctx, p, *q)
		if err != nil {
			return err
		}
		var last *ledger.Record
		for _, raw := range ans.Records {
			r := d.peerRecord(ctx, p, raw)
			if r == nil {
				return fmt.Errorf("%s answered a history entry that does not check: %w", p.Addr, ErrBadAnswer)
			}
			if !keep(r) {
				d.stats.badAnswers.Add(1)
				d.log.Debug("a peer answered a history entry outside the query", zap.String("peer", p.Addr), zap.Stringer("txID", r.TxID))
			} else if len(got) < limit {
				got[r.TxID] = recordAt{time: r.Time, txID: r.TxID, raw: raw}
			}
			last = r
		}
		if !ans.More || last == nil {
			return nil
		}
		next := &wireCursor{Pos: *q.History, Time: last.Time, TxID: last.TxID}
		if q.After != nil && !cursorMoves(*q.After, *next, q.Desc) {
			return fmt.Errorf("%s pages history backwards: %w", p.Addr, ErrBadAnswer)
		}
		q.After = next
	}
	return nil
}

// cursorMoves reports whether next lies after prev in the walk's direction,
// so a peer cannot keep a reader paging for ever.
func cursorMoves(prev, next wireCursor, desc bool) bool {
	a := store.HistoryRef{Time: prev.Time, TxID: prev.TxID}
	b := store.HistoryRef{Time: next.Time, TxID: next.TxID}
	if desc {
		return refLess(b, a)
	}
	return refLess(a, b)
}

// nextKey is k+1 on the ring: successor(k+1) is the node after k.
func nextKey(k ledger.Key) ledger.Key {
	for i := len(k) - 1; i >= 0; i-- {
		k[i]++
		if k[i] != 0 {
			break
		}
	}
	return k
}

// recordsByThingEveryNode is the query without the index: every node is
// asked at once for the Thing's records it stores (N round trips in
// parallel, at most limit records each), and the answers are merged in time
// order. It answers while the holders of a bucket are all unreachable.
// Each node answers its oldest records, so newest first it is exact only
// while the Thing has at most limit records in the range.
func (d *Ledger) recordsByThingEveryNode(ctx context.Context, q historyQuery) ([][]byte, error) {
	gq := getBody{Thing: q.thing, From: q.from, To: q.to, Limit: q.limit}
	keep := func(r *ledger.Record) bool {
		return r.Thing == q.thing && r.Time >= q.from && (q.to == 0 || r.Time < q.to)
	}
	got := map[ledger.Hash]recordAt{}
	var mu sync.Mutex
	answered := 0
	err := d.everyNode(ctx, func(ctx context.Context, p chord.Peer) bool {
		err := d.getAll(ctx, p, gq, q.limit, func(raws []json.RawMessage) { d.checkedRecords(ctx, p, raws, keep, &mu, got) })
		if err == nil {
			mu.Lock()
			answered++
			mu.Unlock()
		}
		return false
	})
	if err != nil && answered == 0 {
		return nil, err
	}
	if answered == 0 {
		return nil, errors.New("no node answered")
	}
	all := ordered(got, 0, func(a, b recordAt) bool {
		if a.time != b.time {
			return a.time < b.time
		}
		return bytes.Compare(a.txID[:], b.txID[:]) < 0
	})
	if q.desc {
		for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
			all[i], all[j] = all[j], all[i]
		}
	}
	if len(all) > q.limit {
		all = all[:q.limit]
	}
	return all, nil
}

// RecordsByThingEveryNode is the history query without the index, asking
// every node: for comparison (benchmarks) and for records no index holds.
func (d *Ledger) RecordsByThingEveryNode(ctx context.Context, thing string, from, to int64, limit int) ([][]byte, error) {
	if err := ledger.ValidThingID(thing); err != nil {
		return nil, &ledger.InputError{Index: -1, Err: err}
	}
	if limit <= 0 || limit > maxGetLimit {
		limit = maxGetLimit
	}
	if !d.attached.Load() {
		return d.localByThing(thing, from, to, limit)
	}
	return d.recordsByThingEveryNode(ctx, historyQuery{thing: thing, from: from, to: to, limit: limit})
}
