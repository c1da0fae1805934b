package wot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

// The directory listing: every Thing of the ring, in id order. Each node
// answers the op "wot.things" with the registry entries it owns (keys in
// its range (predecessor, self]) from its own store, the newest per Thing,
// after a given id; the asking node merges the nodes' answers (a k-way merge,
// asking a node again when its part runs out) and pages the result. One
// round costs one call per node (plus the ring walk RingMembers caches).

const opThings = "wot.things"

// thingsQuery asks a node for the registry entries it owns.
type thingsQuery struct {
	After string `json:"after"`         // entries with ids after this one (byte order)
	Limit int    `json:"limit"`         // at most this many
	IDs   bool   `json:"ids,omitempty"` // ids only, no TDs (to skip an offset)
}

type thingsAnswer struct {
	Entries []listEntry `json:"entries"`
	More    bool        `json:"more"` // the node may own entries after the last
}

// listEntry is the newest registry record of one Thing a node owns.
type listEntry struct {
	ID      string          `json:"id"`
	Time    int64           `json:"time,string"`
	TxID    ledger.Hash     `json:"txID"`
	Deleted bool            `json:"deleted,omitempty"`
	TD      json.RawMessage `json:"td,omitempty"`
}

func (e listEntry) older(f listEntry) bool {
	if e.Time != f.Time {
		return e.Time < f.Time
	}
	return bytes.Compare(e.TxID[:], f.TxID[:]) < 0
}

const (
	// answerBudget bounds the entries of one answer (an envelope is at
	// most 64 KiB); an answer carries at least one entry.
	answerBudget = 30 << 10
	// maxAnswerEntries bounds a query's limit.
	maxAnswerEntries = 1000
	// maxListNodes bounds the nodes a listing asks; maxListCalls its calls.
	maxListNodes = 1024
	maxListCalls = 8192
	// maxPageBytes bounds the TDs of one listing page; a page that would
	// hold more ends early (its Link header names the rest).
	maxPageBytes = 8 << 20
)

// handleThings answers a peer's (or this node's) listing query.
func (r *registry) handleThings(ctx context.Context, from node.Peer, body json.RawMessage) (any, error) {
	var q thingsQuery
	if err := node.DecodeOp(opThings, body, &q); err != nil {
		return nil, err
	}
	if q.Limit < 1 || q.Limit > maxAnswerEntries || len(q.After) > 256 {
		return nil, node.Refuse(node.CodeRefused, "%s: limit must be 1 to %d and after at most 256 bytes", opThings, maxAnswerEntries)
	}
	return r.index.answer(q)
}

// localIndex is this node's view of the registry records it stores (as
// owner or replica): the newest per Thing, without the TDs (read from the
// store when answered). When the store has written records since the last
// scan, an answer scans again from 60 s before the newest record seen; a
// record that reached this node late with an older time (a handoff, a
// repair) is found by the whole scan that follows a partial one within 30 s.
type localIndex struct {
	n *node.Node

	mu       sync.Mutex
	byID     map[string]indexEntry
	sorted   []string // ids of byID, sorted
	records  uint64   // the store's record count at the last scan
	newest   int64    // the newest record time seen
	fullScan time.Time
	built    bool
	partial  bool // a partial scan ran since the last whole one
}

type indexEntry struct {
	key ledger.Key
	e   listEntry // without TD
}

const (
	indexOverlap  = int64(60 * time.Second)
	indexFullScan = 30 * time.Second
	indexPage     = 64
	// maxIndexed bounds the Things a node's index holds (about 200 bytes each).
	maxIndexed = 100_000
)

func (x *localIndex) init(n *node.Node) { x.n = n }

// refresh scans the store's registry records as the index needs.
func (x *localIndex) refresh() error {
	written := x.n.StoreStats().Records
	full := !x.built || x.partial && time.Since(x.fullScan) >= indexFullScan
	if !full && written == x.records {
		return nil
	}
	from := int64(0)
	if full {
		x.byID, x.fullScan, x.partial = map[string]indexEntry{}, time.Now(), false
	} else {
		from, x.partial = max(0, x.newest-indexOverlap), true
	}
	for {
		recs, err := x.n.LocalRecordsByThing(registryThing, from, 0, indexPage)
		if err != nil {
			return err
		}
		last := from
		for _, raw := range recs {
			if at, ok := x.take(raw); ok {
				last = max(last, at)
			}
		}
		if len(recs) < indexPage {
			break
		}
		if last == from {
			last++ // a whole page at one instant: step past it
		}
		from = last
	}
	x.sorted = x.sorted[:0]
	for id := range x.byID {
		x.sorted = append(x.sorted, id)
	}
	sort.Strings(x.sorted)
	x.records, x.built = written, true
	return nil
}

// take indexes one stored record if it is a registry record newer than the
// one indexed for its Thing; it returns the record's time.
func (x *localIndex) take(raw []byte) (at int64, ok bool) {
	rec, err := ledger.ParseRecord(raw)
	if err != nil {
		return 0, false
	}
	e, ok := entryOf(rec)
	if rec.Thing != registryThing || !ok || rec.Key != registryKey(e.ID) {
		return rec.Time, true
	}
	x.newest = max(x.newest, rec.Time)
	le := listEntry{ID: e.ID, Time: rec.Time, TxID: rec.TxID, Deleted: e.Op == opDelete}
	cur, known := x.byID[e.ID]
	switch {
	case known && !cur.e.older(le):
	case !known && len(x.byID) >= maxIndexed:
	default:
		x.byID[e.ID] = indexEntry{key: rec.Key, e: le}
	}
	return rec.Time, true
}

// answer lists the entries this node owns with ids after q.After.
func (x *localIndex) answer(q thingsQuery) (thingsAnswer, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := thingsAnswer{Entries: []listEntry{}}
	if err := x.refresh(); err != nil {
		return out, err
	}
	own, ok := x.n.OwnRange()
	if !ok {
		return out, node.Refuse(node.CodeUnavailable, "this node does not know its range yet")
	}
	size := 0
	start := sort.Search(len(x.sorted), func(i int) bool { return x.sorted[i] > q.After })
	for _, id := range x.sorted[start:] {
		ie := x.byID[id]
		if !own.Contains(ie.key) {
			continue
		}
		if len(out.Entries) == q.Limit {
			out.More = true
			break
		}
		e := ie.e
		if !q.IDs && !e.Deleted {
			raw, err := x.n.LocalRecord(e.TxID)
			if err != nil {
				continue // dropped since the scan: the next one indexes again
			}
			v, ok := versionOf(raw, id, ie.key)
			if !ok {
				continue
			}
			e.TD = v.td
		}
		size += len(e.ID) + len(e.TD) + 160
		if size > answerBudget && len(out.Entries) > 0 {
			out.More = true
			break
		}
		out.Entries = append(out.Entries, e)
	}
	return out, nil
}

// listSource is one node's part of a listing, as the merge reads it.
type listSource struct {
	peer  node.Peer
	after string
	buf   []listEntry
	done  bool
}

// listMerger merges the nodes' sorted answers into one sorted list, newest
// entry per id.
type listMerger struct {
	r     *registry
	srcs  []*listSource
	ids   bool
	limit int
	calls int
}

// list returns page of the ring's TDs (id order, deleted Things left out)
// after skipping offset, and whether more may follow.
func (r *registry) list(ctx context.Context, offset, limit int) (page []listEntry, more bool, err error) {
	peers, err := r.t.node.RingMembers(ctx)
	if err != nil {
		return nil, false, err
	}
	m := &listMerger{r: r, ids: offset > 0, limit: min(maxAnswerEntries, max(limit, offset)+1)}
	for _, p := range peers[:min(len(peers), maxListNodes)] {
		m.srcs = append(m.srcs, &listSource{peer: p})
	}
	// Skip offset Things by their ids alone, then read TDs after the last.
	for skipped, last := 0, ""; skipped < offset; {
		e, ok, err := m.next(ctx)
		if err != nil || !ok {
			return nil, false, err
		}
		if !e.Deleted {
			skipped, last = skipped+1, e.ID
		}
		if skipped == offset {
			m.restart(last)
		}
	}
	m.limit = min(maxAnswerEntries, limit+1)
	size := 0
	for len(page) < limit && size <= maxPageBytes {
		e, ok, err := m.next(ctx)
		if err != nil {
			return nil, false, err
		}
		if !ok {
			return page, false, nil
		}
		if !e.Deleted {
			page = append(page, e)
			size += len(e.TD)
		}
	}
	return page, m.pending(), nil
}

// restart makes the merge read TDs from after id on.
func (m *listMerger) restart(after string) {
	m.ids = false
	for _, s := range m.srcs {
		s.done = s.done && len(s.buf) == 0
		s.buf, s.after = nil, after
	}
}

// pending reports whether any node may have entries left.
func (m *listMerger) pending() bool {
	for _, s := range m.srcs {
		if len(s.buf) > 0 || !s.done {
			return true
		}
	}
	return false
}

// next returns the entry with the smallest id left, the newest of those
// nodes gave for it; ok is false when none is left.
func (m *listMerger) next(ctx context.Context) (listEntry, bool, error) {
	if err := m.fill(ctx); err != nil {
		return listEntry{}, false, err
	}
	var best *listEntry
	for _, s := range m.srcs {
		if len(s.buf) > 0 && (best == nil || s.buf[0].ID < best.ID) {
			best = &s.buf[0]
		}
	}
	if best == nil {
		return listEntry{}, false, nil
	}
	e := *best
	for _, s := range m.srcs {
		if len(s.buf) > 0 && s.buf[0].ID == e.ID {
			if e.older(s.buf[0]) {
				e = s.buf[0]
			}
			s.buf = s.buf[1:]
		}
	}
	return e, true, nil
}

// fill asks, at once, every node whose part ran out for its next entries,
// each up to listAttempts times. A listing that misses a node's part fails
// (503: retry) rather than answer without it: after a crash, until the ring
// walk drops the node (a sync interval), listings fail.
func (m *listMerger) fill(ctx context.Context) error {
	var ask []*listSource
	for _, s := range m.srcs {
		if len(s.buf) == 0 && !s.done {
			ask = append(ask, s)
		}
	}
	if len(ask) == 0 {
		return nil
	}
	if m.calls += len(ask); m.calls > maxListCalls {
		return fmt.Errorf("%w: the listing took more than %d calls; ask for a smaller offset or limit", ErrBadInput, maxListCalls)
	}
	errs := make([]error, len(ask))
	var wg sync.WaitGroup
	for i, s := range ask {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.ask(ctx, s)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("node %s did not answer the Things listing: %w", ask[i].peer.Addr, err)
		}
	}
	return nil
}

// listAttempts is how often a node is asked before the listing fails.
const listAttempts = 3

// ask reads a node's next entries into its source.
func (m *listMerger) ask(ctx context.Context, s *listSource) error {
	q := thingsQuery{After: s.after, Limit: m.limit, IDs: m.ids}
	var err error
	for attempt := 0; attempt < listAttempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		var ans thingsAnswer
		if err = m.r.t.node.CallOp(ctx, s.peer, opThings, q, &ans); err != nil {
			continue
		}
		s.buf, s.done = validEntries(ans.Entries, s.after, m.ids), !ans.More
		if len(s.buf) > 0 {
			s.after = s.buf[len(s.buf)-1].ID
		} else {
			s.done = true // an answer without entries has none more
		}
		return nil
	}
	return err
}

// validEntries keeps what a node's answer claims in order: ids after after,
// strictly increasing, each a Thing id, with a TD object unless deleted or
// asked for ids only. A peer's word is checked before use.
func validEntries(es []listEntry, after string, idsOnly bool) []listEntry {
	out := es[:0]
	last := after
	for _, e := range es {
		if e.ID <= last || checkThingID(e.ID) != nil {
			continue
		}
		if !e.Deleted && !idsOnly && (len(e.TD) == 0 || e.TD[0] != '{') {
			continue
		}
		out = append(out, e)
		last = e.ID
	}
	return out
}
