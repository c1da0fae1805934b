package ringledger

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/ringledger/placement"
	"github.com/flownode/flownode/store"
)

// The ring's per-Thing time index (docs/ledger-format.md, "History index").
//
// A record lives at its data key, which is random, so a Thing's records are
// spread over the whole ring. So that a Thing's history does not cost a
// question to every node, the owner of each record also writes a copy of it,
// a history entry, at two positions derived from its Thing:
//
//   - its bucket, successor(SHA-1(thing ‖ 0x00 ‖ bucket)), bucket =
//     ⌊time / HistoryBucket⌋ as 8 bytes big-endian: the Thing's records of
//     that hour, in time order;
//   - its extremes, successor(SHA-1(thing ‖ 0x00 ‖ "head")), which keeps
//     only the Thing's oldest and newest records: where a history without
//     bounds starts and ends, and LatestByThing's one question.
//
// Entries carry the signed record itself, not (time, txID, key): a history
// query then costs one lookup and one paged fetch per bucket, whatever the
// number of records, where fetching each record from its own owner would
// cost one lookup per record. The price is storage: each record is kept k
// times at its key and k times more in its bucket (plus the extremes).
//
// History entries are placed, written, replicated, handed off, repaired and
// dropped as surplus like txID pointers, by the same code (pointers.go,
// replicate.go, repair.go, surplus.go), and checked like records: every
// entry a node stores is a record that verifies on its own, whose signer was
// a member at its time, at a position recomputed from the record, sent by
// the owner of its data key (a write) or of its position (a copy).

// HistoryBucket is the width of a time bucket of the history index, a
// constant of the network: nodes that disagree on it do not find each
// other's entries. An hour keeps a day's query at 24 lookups and a week's at
// 168, and moves a busy Thing's write load to another node every hour (a
// 1 Hz device puts 3 600 entries an hour on one bucket's k holders).
const HistoryBucket = time.Hour

// MaxHistoryBuckets bounds the buckets one history query visits: a leap
// year of hours. A query that would need more without filling its limit
// fails with ErrRangeTooLong.
const MaxHistoryBuckets = 24 * 366

// historyWindow is how many buckets a query reads at once at most, and
// historyWindowRecords bounds the records a window may bring back (each
// bucket of a window is asked for every record the query still wants).
const (
	historyWindow        = 8
	historyWindowRecords = 4000
)

// historyFuture is how far ahead of this node's clock a history entry's
// time may be: the extremes would otherwise keep a far-future record as a
// Thing's newest for good.
const historyFuture = 10 * time.Minute

// maxExtremes bounds the entries read at a Thing's extremes position: it
// keeps two.
const maxExtremes = 16

// ErrRangeTooLong is returned by a history query that would visit more than
// MaxHistoryBuckets buckets without filling its limit.
var ErrRangeTooLong = fmt.Errorf("the time range spans more than %d buckets of %s (%d days) before the limit is reached: narrow from and to",
	MaxHistoryBuckets, HistoryBucket, MaxHistoryBuckets*int(HistoryBucket/time.Hour)/24)

// historyBucketOf is the bucket of a time (unix ns), rounded down.
func historyBucketOf(t int64) int64 {
	w := int64(HistoryBucket)
	b := t / w
	if t%w != 0 && t < 0 {
		b--
	}
	return b
}

// bucketPos is the ring position of a Thing's bucket.
func bucketPos(thing string, bucket int64) ledger.Key {
	return historyPos(thing, binary.BigEndian.AppendUint64(nil, uint64(bucket)))
}

// extremesPos is the ring position of a Thing's oldest and newest records.
func extremesPos(thing string) ledger.Key { return historyPos(thing, []byte("head")) }

// historyPos is SHA-1(thing ‖ 0x00 ‖ suffix). A Thing ID holds no 0x00 and
// the two suffixes differ in length, so no two inputs are the same.
func historyPos(thing string, suffix []byte) ledger.Key {
	h := sha1.New()
	h.Write([]byte(thing))
	h.Write([]byte{0})
	h.Write(suffix)
	var k ledger.Key
	copy(k[:], h.Sum(nil))
	return k
}

// historyPositions are the two positions of a record's history entries.
func historyPositions(r *ledger.Record) (bucket, extremes ledger.Key) {
	return bucketPos(r.Thing, historyBucketOf(r.Time)), extremesPos(r.Thing)
}

// historyItem is a history entry to write: at its bucket, or at its
// Thing's extremes, with the record's bytes when they are at hand (else
// they are read from the store when sent).
type historyItem struct {
	store.HistoryRef
	extremes bool
	raw      []byte
}

// historyItems are the two history entries of a record of thing at time t.
func historyItems(thing string, t int64, txID ledger.Hash, raw []byte) []historyItem {
	return []historyItem{
		{HistoryRef: store.HistoryRef{Pos: bucketPos(thing, historyBucketOf(t)), Time: t, TxID: txID}, raw: raw},
		{HistoryRef: store.HistoryRef{Pos: extremesPos(thing), Time: t, TxID: txID}, extremes: true, raw: raw},
	}
}

// historyEntry is a checked history entry on its way to the store, and
// whether it is at its Thing's extremes.
type historyEntry struct {
	store.HistoryEntry
	extremes bool
}

// historyRule says which sender may hand this node a history entry.
type historyRule int

const (
	// ruleWriter: a write to the position's owner, from the owner of the
	// record's data key (it signed or holds the record as primary).
	ruleWriter historyRule = iota
	// ruleCopy: a copy from the owner of the entry's position.
	ruleCopy
	// rulePulled: an entry this node asked for (repair); the caller checked
	// it lies in the range asked for.
	rulePulled
)

// checkHistory checks history entries a peer sent: each is a record that
// verifies on its own (signature, hData, txID), at one of its two positions
// recomputed here, not stamped too far in the future, sent by a node that
// may send it (rule, placement.MayOwn as this node knows the ring), and
// signed by a node that was a member at the record's time. It returns the
// entries to store.
func (d *Ledger) checkHistory(ctx context.Context, st chord.State, sender chord.Peer, ws []wireHistory, rule historyRule) ([]historyEntry, error) {
	out := make([]historyEntry, len(ws))
	recs := make([]*ledger.Record, len(ws))
	late := d.now().Add(historyFuture).UnixNano()
	peer := sender.ID != d.self()
	view := placement.NewView(st)
	for i, w := range ws {
		r, ok := ledger.Checked(w.Record)
		var err error
		if !ok {
			r, err = ledger.ParseRecord(w.Record)
			if err == nil && !d.holdsBytes(r, w) {
				err = r.CheckSelf(w.Record)
			}
		}
		if err != nil {
			return nil, refuse(CodeRefused, "history entry %d: %v", i, err)
		}
		b, e := historyPositions(r)
		switch {
		case w.Pos != b && w.Pos != e:
			return nil, refuse(CodeRefused, "history entry %s: position %s is neither its Thing's bucket nor its extremes", r.TxID, w.Pos)
		case r.Time > late:
			return nil, refuse(CodeRefused, "history entry %s: its time is more than %s ahead of this node's clock", r.TxID, historyFuture)
		case peer && rule == ruleWriter && !view.MayOwn(sender.ID, r.Key):
			return nil, refuse(CodeRefused, "history entry %s: its data key %s is not the sender's as this node knows the ring", r.TxID, r.Key)
		case peer && rule == ruleCopy && !view.MayOwn(sender.ID, w.Pos):
			return nil, refuse(CodeRefused, "history entry %s: position %s is not the sender's as this node knows the ring", r.TxID, w.Pos)
		}
		recs[i] = r
		out[i] = historyEntry{HistoryEntry: store.HistoryEntry{HistoryRef: store.HistoryRef{Pos: w.Pos, Time: r.Time, TxID: r.TxID}, Value: w.Record}, extremes: w.Pos == e}
	}
	if err := d.signers(ctx, sender, recs); err != nil {
		return nil, err
	}
	return out, nil
}

// holdsBytes reports whether this node already stores these very bytes, as
// the record or as this history entry: they were checked when stored, so
// their signature need not be checked again (the bucket's holders often
// hold the record too: k of N nodes do).
func (d *Ledger) holdsBytes(r *ledger.Record, w wireHistory) bool {
	if raw, err := d.store.Record(r.TxID); err == nil && bytes.Equal(raw, w.Record) {
		return true
	}
	raw, err := d.store.HistoryEntryValue(store.HistoryRef{Pos: w.Pos, Time: r.Time, TxID: r.TxID})
	return err == nil && bytes.Equal(raw, w.Record)
}

// storeIndex stores checked txID pointers and history entries in one
// durable write. At a Thing's extremes position only the oldest and the
// newest entry are kept: the others there are dropped in the same write,
// and an entry between the two held already is not written at all.
func (d *Ledger) storeIndex(ctx context.Context, ps []store.Pointer, es []historyEntry) error {
	if len(es) == 0 {
		if len(ps) == 0 {
			return nil
		}
		return d.ledger.PutPointers(ctx, ps)
	}
	var put []store.HistoryEntry
	atExtremes := map[ledger.Key][]store.HistoryEntry{}
	for _, e := range es {
		switch _, err := d.store.HistoryEntryValue(e.HistoryRef); {
		case e.extremes:
			atExtremes[e.Pos] = append(atExtremes[e.Pos], e.HistoryEntry)
		case errors.Is(err, store.ErrNotFound):
			put = append(put, e.HistoryEntry)
		case err != nil:
			return err
		}
		// A bucket entry held already is not written again.
	}
	if len(atExtremes) == 0 {
		if len(put)+len(ps) == 0 {
			return nil
		}
		return d.ledger.PutHistory(ctx, ps, put, nil)
	}
	// Writes of extremes positions are serialized, from the read to the
	// durable write, so that they never leave more than two entries there.
	// Those that arrive while one is being written share the next write
	// (group commit): a busy Thing's extremes take a write from every
	// owner of its records at once.
	w := &indexWrite{ctx: ctx, pointers: ps, put: put, atExtremes: atExtremes}
	d.indexWrites.Do(w, d.writeIndexGroup)
	return w.err
}

// indexWrite is a storeIndex call with entries at extremes positions.
type indexWrite struct {
	ctx        context.Context
	pointers   []store.Pointer
	put        []store.HistoryEntry // bucket entries, not held yet
	atExtremes map[ledger.Key][]store.HistoryEntry
	err        error
}

// writeIndexGroup writes the entries of index writes that arrived together
// in one durable write, with what they change at their extremes positions
// read and decided together. The positions' extremesLocks are held until it
// is durable, against the puts that write their own index (ownindex.go).
func (d *Ledger) writeIndexGroup(ws []*indexWrite) {
	all := map[ledger.Key][]store.HistoryEntry{}
	var ps []store.Pointer
	var put []store.HistoryEntry
	for _, w := range ws {
		for pos, es := range w.atExtremes {
			all[pos] = append(all[pos], es...)
		}
		ps = append(ps, w.pointers...)
		put = append(put, w.put...)
	}
	poss := make([]ledger.Key, 0, len(all))
	for pos := range all {
		poss = append(poss, pos)
	}
	unlock := d.extremesLocks.lock(poss)
	keep, drop, err := d.extremesChanges(all)
	if err == nil && len(put)+len(keep)+len(drop)+len(ps) > 0 {
		// The write is everyone's: one caller's cancellation does not stop it.
		err = d.ledger.PutHistory(context.WithoutCancel(ws[0].ctx), ps, append(put, keep...), drop)
	}
	unlock()
	for _, w := range ws {
		w.err = err
	}
}

// extremesChanges says what storing news at their extremes positions changes
// there: the entries to put (new oldest or newest) and the held ones they
// replace. The caller holds the positions' extremesLocks until the changes
// are durable. Only the two ends held are read (store.HistoryEnds): entries
// between them, left by a store written before the two-entry rule, are
// dropped by repair (tidyExtremes).
func (d *Ledger) extremesChanges(atExtremes map[ledger.Key][]store.HistoryEntry) (put []store.HistoryEntry, drop []store.HistoryRef, err error) {
	for pos, news := range atExtremes {
		held, err := d.store.HistoryEnds(pos)
		if err != nil {
			return nil, nil, err
		}
		keep, gone := extremes(append(held, news...))
		for _, e := range keep {
			if !containsRef(held, e.HistoryRef) {
				put = append(put, e)
			}
		}
		for _, e := range gone {
			if containsRef(held, e.HistoryRef) {
				drop = append(drop, e.HistoryRef)
			}
		}
	}
	return put, drop, nil
}

// tidyExtremes drops, at the extremes positions among refs, what lies
// between the oldest and the newest entry there (none should: storeIndex
// serializes their writes; a store written before that rule may hold
// some), and returns refs without what it dropped, so that a repair round
// never pushes entries its peer would not keep.
func (d *Ledger) tidyExtremes(ctx context.Context, refs []store.HistoryRef) ([]store.HistoryRef, error) {
	gone := map[store.HistoryRef]bool{}
	seen := map[ledger.Key]bool{}
	var drop []store.HistoryRef
	for _, ref := range refs {
		if seen[ref.Pos] {
			continue
		}
		seen[ref.Pos] = true
		held, _, err := d.store.History(store.HistoryQuery{Pos: ref.Pos, Limit: maxExtremes})
		if err != nil {
			return nil, err
		}
		if len(held) <= 2 {
			continue
		}
		r, err := ledger.ParseRecord(held[0].Value)
		if err != nil || extremesPos(r.Thing) != ref.Pos {
			continue // a bucket keeps every entry
		}
		_, rest := extremes(held)
		for _, e := range rest {
			gone[e.HistoryRef] = true
			drop = append(drop, e.HistoryRef)
		}
	}
	if len(drop) == 0 {
		return refs, nil
	}
	if err := d.ledger.PutHistory(ctx, nil, nil, drop); err != nil {
		return nil, err
	}
	out := refs[:0:0]
	for _, ref := range refs {
		if !gone[ref] {
			out = append(out, ref)
		}
	}
	return out, nil
}

// extremesLocks serialize the writes of extremes positions, by stripe: one
// lock would hold every peer's history write to this node behind one fsync
// after another, and the Chord checks waiting for the same RPC workers.
type extremesLocks [64]sync.Mutex

// lock takes the stripes of poss, in order, and returns their unlock.
func (l *extremesLocks) lock(poss []ledger.Key) func() {
	var idx []int
	for _, p := range poss {
		i := int(p[0]) % len(l)
		if !slices.Contains(idx, i) {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	for _, i := range idx {
		l[i].Lock()
	}
	return func() {
		for _, i := range idx {
			l[i].Unlock()
		}
	}
}

// extremes splits entries of one position into the oldest and newest (by
// time, then txID) and the rest.
func extremes(es []store.HistoryEntry) (keep, rest []store.HistoryEntry) {
	if len(es) == 0 {
		return nil, nil
	}
	lo, hi := 0, 0
	for i, e := range es {
		if refLess(e.HistoryRef, es[lo].HistoryRef) {
			lo = i
		}
		if refLess(es[hi].HistoryRef, e.HistoryRef) {
			hi = i
		}
	}
	keep = []store.HistoryEntry{es[lo]}
	if es[hi].HistoryRef != es[lo].HistoryRef {
		keep = append(keep, es[hi])
	}
	for _, e := range es {
		if e.HistoryRef != es[lo].HistoryRef && e.HistoryRef != es[hi].HistoryRef {
			rest = append(rest, e)
		}
	}
	return keep, rest
}

// refLess orders history entries at one position: time, then txID.
func refLess(a, b store.HistoryRef) bool {
	if a.Time != b.Time {
		return a.Time < b.Time
	}
	return bytes.Compare(a.TxID[:], b.TxID[:]) < 0
}

func containsRef(es []store.HistoryEntry, r store.HistoryRef) bool {
	for _, e := range es {
		if e.HistoryRef == r {
			return true
		}
	}
	return false
}

// holdsHistory reports whether this node holds a history entry, or, at a
// Thing's extremes position, entries older and newer that supersede it (a
// node about to drop its surplus copy of an old extreme asks).
func (d *Ledger) holdsHistory(ref store.HistoryRef) (bool, error) {
	_, err := d.store.HistoryEntryValue(ref)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	held, _, err := d.store.History(store.HistoryQuery{Pos: ref.Pos, Limit: maxExtremes})
	if err != nil || len(held) < 2 {
		return false, err
	}
	r, err := ledger.ParseRecord(held[0].Value)
	if err != nil || extremesPos(r.Thing) != ref.Pos {
		return false, nil // a bucket: every entry is kept, so it is not held
	}
	return !refLess(ref, held[0].HistoryRef) && !refLess(held[len(held)-1].HistoryRef, ref), nil
}

// wireHistoryOf reads history entries from this node's store for sending;
// entries no longer held are left out.
func (d *Ledger) wireHistoryOf(refs []store.HistoryRef) ([]wireHistory, error) {
	out := make([]wireHistory, 0, len(refs))
	for _, ref := range refs {
		raw, err := d.store.HistoryEntryValue(ref)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err == nil {
			err = d.checkStored(store.HistoryKey(ref.Pos, ref.Time, ref.TxID), ref.TxID, raw, ledger.Location{})
		}
		if err != nil {
			return nil, err
		}
		out = append(out, wireHistory{Pos: ref.Pos, Record: raw})
	}
	return out, nil
}

// historyFromRecords makes history entries of records this node holds (it
// signed them, or owns their keys), reading from the store the records not
// at hand; records no longer held are left out.
func (d *Ledger) historyFromRecords(items []historyItem) ([]wireHistory, error) {
	out := make([]wireHistory, 0, len(items))
	for _, it := range items {
		if it.raw != nil {
			out = append(out, wireHistory{Pos: it.Pos, Record: it.raw})
			continue
		}
		raw, err := d.checkedRecord(it.TxID, ledger.Location{})
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, wireHistory{Pos: it.Pos, Record: raw})
	}
	return out, nil
}

func historyRefOf(c wireCursor) store.HistoryRef {
	return store.HistoryRef{Pos: c.Pos, Time: c.Time, TxID: c.TxID}
}

// HistoryBucketPosition is the ring position of the hour bucket that holds a
// Thing's records of time t (unix ns): successor of it holds them.
func HistoryBucketPosition(thing string, t int64) ledger.Key {
	return bucketPos(thing, historyBucketOf(t))
}

// HistoryExtremesPosition is the ring position of a Thing's oldest and
// newest records.
func HistoryExtremesPosition(thing string) ledger.Key { return extremesPos(thing) }
