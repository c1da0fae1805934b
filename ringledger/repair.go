package ringledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/ringledger/placement"
	"github.com/flownode/flownode/store"
	"go.uber.org/zap"
)

// subRanges is how finely a range is cut when two nodes' digests differ: a
// few lost records then cost a list of 1/64 of the range, not all of it.
const subRanges = 64

// syncLoop runs a repair round every SyncInterval, and at once when a ring
// event changed what a round depends on (shape).
func (d *Ledger) syncLoop() {
	every := d.cfg.SyncInterval
	timer := time.NewTimer(every)
	defer timer.Stop()
	var last string
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.changed:
			if now := shape(d.state(), d.k); now == last {
				continue
			}
		case <-timer.C:
		}
		last = shape(d.state(), d.k)
		if err := d.syncOnce(d.ctx); err != nil && d.ctx.Err() == nil {
			d.log.Debug("anti-entropy round incomplete", zap.Error(err))
		}
		timer.Reset(every)
	}
}

// shape summarizes what a sync round depends on: the range and the replicas.
func shape(st chord.State, k int) string {
	s := st.Status + st.Pred.ID.Hex()
	for i, p := range st.Succs {
		if i == k {
			break
		}
		s += p.ID.Hex()
	}
	return s
}

// syncOnce reconciles this node's range with each replica, both ways, then
// catches up the blocks of the branches it holds records of.
func (d *Ledger) syncOnce(ctx context.Context) error {
	st := d.ring.State()
	if st.Status != chord.StatusMember.String() {
		return nil
	}
	d.noteReplicas(st)
	d.stats.syncRounds.Add(1)
	var errs []error
	if from, to, ok := ownRange(st); ok {
		started := d.now()
		for _, t := range d.replicaTargets(st) {
			if err := d.reconcile(ctx, t, from, to, true); err != nil {
				errs = append(errs, fmt.Errorf("with %s: %w", t.Addr, err))
			}
		}
		if len(errs) == 0 {
			// Every entry held when the round started is on every replica.
			d.repairedAt.Store(started.UnixNano())
		}
	}
	if err := d.catchUpBlocks(ctx, st); err != nil {
		errs = append(errs, err)
	}
	if err := d.rebuildHistory(ctx, st); err != nil {
		errs = append(errs, fmt.Errorf("rebuild the history index: %w", err))
	}
	if err := d.dropSurplus(ctx, st); err != nil {
		errs = append(errs, fmt.Errorf("drop surplus copies: %w", err))
	}
	return errors.Join(errs...)
}

// SyncNow runs one anti-entropy round and returns when it is done.
func (d *Ledger) SyncNow(ctx context.Context) error {
	if !d.attached.Load() {
		return nil
	}
	return d.syncOnce(ctx)
}

// reconcile makes p and this node hold the same entries of (from, to]: what
// p lacks is pushed, and, when pull is set, what this node lacks is pulled.
func (d *Ledger) reconcile(ctx context.Context, p chord.Peer, from, to ledger.Key, pull bool) error {
	parts := splitRange(from, to, subRanges)
	ranges := make([]wireRange, len(parts))
	for i, r := range parts {
		ranges[i] = wireRange{From: r[0], To: r[1]}
	}
	theirs := make([]wireDigest, 0, len(ranges))
	if err := d.call(ctx, p, opDigest, digestBody{Ranges: ranges}, &theirs); err != nil {
		return err
	}
	if len(theirs) != len(ranges) {
		return fmt.Errorf("digest answer has %d ranges, want %d", len(theirs), len(ranges))
	}
	mine, err := d.digests(digestBody{Ranges: ranges})
	if err != nil {
		return err
	}
	for i, r := range ranges {
		if mine[i] == theirs[i] {
			continue
		}
		for _, kind := range entryKinds {
			if err := d.reconcileList(ctx, p, r, kind, pull); err != nil {
				return err
			}
		}
	}
	return nil
}

// entryKind is a kind of entry the ring places, copies and repairs.
type entryKind int

const (
	kindRecords  entryKind = iota // records, at their data key
	kindPointers                  // txID pointers, at txID[:20]
	kindHistory                   // history entries, at their Thing's bucket or extremes
)

var entryKinds = []entryKind{kindRecords, kindPointers, kindHistory}

// listed is what identifies an entry of a list answer: a record or pointer
// by its txID (a pointer's data key is its value), a history entry by its
// position, time and txID.
func listed(kind entryKind, e wirePointer) wirePointer {
	if kind == kindHistory {
		return e
	}
	return wirePointer{TxID: e.TxID}
}

// reconcileList compares the entries of one kind in one range on both
// sides and moves what is missing.
func (d *Ledger) reconcileList(ctx context.Context, p chord.Peer, r wireRange, kind entryKind, pull bool) error {
	theirs := map[wirePointer]wirePointer{}
	q := listBody{Range: r, Pointers: kind == kindPointers, History: kind == kindHistory}
	for {
		var ans listAnswer
		if err := d.call(ctx, p, opList, q, &ans); err != nil {
			return err
		}
		if len(theirs)+len(ans.Entries) > maxListed {
			return fmt.Errorf("%s lists more than %d entries in one sub-range", p.Addr, maxListed)
		}
		for _, e := range ans.Entries {
			theirs[listed(kind, e)] = e
		}
		if !ans.More || len(ans.Entries) == 0 {
			break
		}
		last := ans.Entries[len(ans.Entries)-1]
		pos := last.Key
		if kind == kindPointers {
			pos = keyOf(last.TxID)
		}
		q.After = &wireCursor{Pos: pos, TxID: last.TxID, Time: last.Time}
	}
	var mine []wirePointer
	collect := func(e wirePointer) error {
		if _, ok := theirs[listed(kind, e)]; ok {
			delete(theirs, listed(kind, e)) // both hold it
			return nil
		}
		mine = append(mine, e)
		return nil
	}
	var err error
	switch kind {
	case kindHistory:
		err = d.store.EachHistoryInRange(r.From, r.To, func(ref store.HistoryRef) error {
			return collect(wirePointer{TxID: ref.TxID, Key: ref.Pos, Time: ref.Time})
		})
	case kindPointers:
		err = d.store.EachPointerInRange(r.From, r.To, func(txID [32]byte, key [20]byte) error {
			return collect(wirePointer{TxID: txID, Key: key})
		})
	default:
		err = d.store.EachKeyInRange(r.From, r.To, func(key [20]byte, txID [32]byte) error {
			return collect(wirePointer{TxID: txID, Key: key})
		})
	}
	if err != nil {
		return err
	}
	// mine: only here, to push; theirs: only there, to pull.
	if len(mine) > 0 {
		if err := d.push(ctx, p, mine, kind); err != nil {
			return fmt.Errorf("push: %w", err)
		}
	}
	if pull && len(theirs) > 0 {
		want := make([]wirePointer, 0, len(theirs))
		for _, e := range theirs {
			want = append(want, e)
		}
		if err := d.pull(ctx, p, r, want, kind); err != nil {
			return fmt.Errorf("pull: %w", err)
		}
	}
	return nil
}

// maxListed bounds what one sub-range's list may hold in memory: a peer
// cannot make this node gather an endless list.
const maxListed = 1 << 18

// push sends p the entries it lacks.
func (d *Ledger) push(ctx context.Context, p chord.Peer, entries []wirePointer, kind entryKind) error {
	var jobs []*replJob
	switch kind {
	case kindPointers:
		ps := make([]store.Pointer, len(entries))
		for i, e := range entries {
			ps[i] = store.Pointer{TxID: e.TxID, Key: e.Key}
		}
		jobs = splitJob(nil, ps, nil)
	case kindHistory:
		// A page at a time: entries carry records.
		for len(entries) > 0 {
			n := min(len(entries), listPage)
			refs := make([]store.HistoryRef, n)
			for i, e := range entries[:n] {
				refs[i] = store.HistoryRef{Pos: e.Key, Time: e.Time, TxID: e.TxID}
			}
			refs, err := d.tidyExtremes(ctx, refs)
			if err != nil {
				return err
			}
			hs, err := d.wireHistoryOf(refs)
			if err != nil {
				return err
			}
			for _, j := range splitJob(nil, nil, hs) {
				if err := d.call(ctx, p, opReplicate, replicateBody{History: j.history}, nil); err != nil {
					return err
				}
			}
			entries = entries[n:]
			d.stats.pushed.Add(uint64(n))
		}
		return nil
	default:
		recs := make([][]byte, 0, len(entries))
		for _, e := range entries {
			raw, err := d.store.Record(e.TxID)
			if err != nil {
				return err
			}
			recs = append(recs, raw)
		}
		jobs = splitJob(recs, nil, nil)
	}
	for _, j := range jobs {
		body := replicateBody{Records: make([]json.RawMessage, len(j.records)), Pointers: wirePointers(j.pointers)}
		for i, r := range j.records {
			body.Records[i] = r
		}
		if err := d.call(ctx, p, opReplicate, body, nil); err != nil {
			return err
		}
	}
	d.stats.pushed.Add(uint64(len(entries)))
	return nil
}

// pull takes from p the entries this node lacks. Entries must lie in the
// range asked for; records and history entries are checked like any copy.
func (d *Ledger) pull(ctx context.Context, p chord.Peer, r wireRange, want []wirePointer, kind entryKind) error {
	switch kind {
	case kindPointers:
		var ws []wirePointer
		for _, w := range want {
			if inRange(r.From, keyOf(w.TxID), r.To) {
				ws = append(ws, wirePointer{TxID: w.TxID, Key: w.Key})
			}
		}
		if _, err := d.acceptReplicas(ctx, p, replicateBody{Pointers: ws}, true); err != nil {
			return err
		}
		d.stats.pulled.Add(uint64(len(ws)))
		return nil
	case kindHistory:
		return d.pullHistory(ctx, p, r, want)
	}
	ids := make([]ledger.Hash, 0, len(want))
	for _, w := range want {
		if inRange(r.From, w.Key, r.To) {
			ids = append(ids, w.TxID)
		}
	}
	for len(ids) > 0 {
		n := min(len(ids), listPage)
		var ans rawList
		if err := d.call(ctx, p, opFetch, fetchBody{TxIDs: ids[:n]}, &ans); err != nil {
			return err
		}
		got := map[ledger.Hash]bool{}
		body := replicateBody{}
		for _, raw := range ans.Items {
			rec, err := ledger.ParseRecord(raw)
			if err != nil || !inRange(r.From, rec.Key, r.To) {
				return fmt.Errorf("%s sent a record outside the range asked for", p.Addr)
			}
			got[rec.TxID] = true
			body.Records = append(body.Records, raw)
		}
		if len(body.Records) > 0 {
			stored, err := d.acceptReplicas(ctx, p, body, true)
			if err != nil {
				return err
			}
			d.stats.pulled.Add(uint64(stored))
		}
		// Ask again for what did not fit; drop what p no longer has.
		rest := ids[:0]
		if ans.More {
			for _, id := range ids[:n] {
				if !got[id] {
					rest = append(rest, id)
				}
			}
		}
		ids = append(rest, ids[n:]...)
		if ans.More && len(ans.Items) == 0 {
			return errors.New("fetch made no progress")
		}
	}
	return nil
}

// pullHistory takes from p the history entries of want in the range r: each
// must be one asked for, and is checked like a copy (checkHistory).
func (d *Ledger) pullHistory(ctx context.Context, p chord.Peer, r wireRange, want []wirePointer) error {
	var refs []wireCursor
	for _, w := range want {
		if inRange(r.From, w.Key, r.To) {
			refs = append(refs, wireCursor{Pos: w.Key, Time: w.Time, TxID: w.TxID})
		}
	}
	for len(refs) > 0 {
		n := min(len(refs), listPage)
		asked := map[wireCursor]bool{}
		for _, c := range refs[:n] {
			asked[c] = true
		}
		var ans rawList
		if err := d.call(ctx, p, opFetch, fetchBody{History: refs[:n]}, &ans); err != nil {
			return err
		}
		var body replicateBody
		got := map[wireCursor]bool{}
		for _, raw := range ans.Items {
			var h wireHistory
			if err := decodeStrict(raw, &h); err != nil {
				return fmt.Errorf("%s sent a malformed history entry: %w", p.Addr, err)
			}
			rec, err := ledger.ParseRecord(h.Record)
			if err != nil {
				return fmt.Errorf("%s sent a history entry that is not a record: %w", p.Addr, err)
			}
			c := wireCursor{Pos: h.Pos, Time: rec.Time, TxID: rec.TxID}
			if !asked[c] {
				return fmt.Errorf("%s sent a history entry not asked for", p.Addr)
			}
			got[c] = true
			body.History = append(body.History, h)
		}
		if len(body.History) > 0 {
			stored, err := d.acceptReplicas(ctx, p, body, true)
			if err != nil {
				return err
			}
			d.stats.pulled.Add(uint64(stored))
		}
		rest := refs[:0]
		if ans.More {
			for _, c := range refs[:n] {
				if !got[c] {
					rest = append(rest, c)
				}
			}
		}
		refs = append(rest, refs[n:]...)
		if ans.More && len(ans.Items) == 0 {
			return errors.New("fetch made no progress")
		}
	}
	return nil
}

// catchUpBlocks fetches, from each branch's own node, the blocks this node
// lacks of the branches it holds records of, so that their seals arrive.
func (d *Ledger) catchUpBlocks(ctx context.Context, st chord.State) error {
	branches, err := d.store.Branches()
	if err != nil {
		return err
	}
	var errs []error
	for _, b := range branches {
		branch := ledger.Key(b)
		if branch == st.Self.ID {
			continue
		}
		// A branch's node is the owner of its own ID, while it lives.
		o, err := d.owner(ctx, branch)
		if err != nil || o.ID != branch {
			continue
		}
		top, _, err := d.store.Head(branch)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		bs, err := d.fetchBlocks(ctx, o, branch, top+1, 0)
		if err != nil {
			errs = append(errs, fmt.Errorf("blocks of %s: %w", branch, err))
			continue
		}
		if len(bs) == 0 {
			continue
		}
		got, err := d.ledger.Ingest(ctx, bs, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("blocks of %s: %w", branch, err))
			continue
		}
		d.stats.blocksIn.Add(uint64(got.Blocks))
	}
	return errors.Join(errs...)
}

// Leave hands this node's range to its successor and leaves the ring. New
// readings for the range are refused meanwhile ("leaving"), so their entry
// nodes retry and reach the successor once it has taken over.
func (d *Ledger) Leave(ctx context.Context) error {
	if !d.attached.Load() {
		return nil
	}
	d.leaving.Store(true)
	st := d.ring.State()
	var handErr error
	if from, to, ok := ownRange(st); ok && !placement.Alone(st) {
		// Every replica, not only the successor: the ring then keeps k
		// copies of the range without waiting for a round.
		for i, t := range d.replicaTargets(st) {
			if err := d.reconcile(ctx, t, from, to, false); err != nil && i == 0 {
				handErr = fmt.Errorf("hand the range to %s: %w", t.Addr, err)
			}
		}
	}
	err := d.ring.Leave(ctx)
	d.Close()
	if handErr != nil {
		return handErr
	}
	return err
}

// missingBlocks fetches from p the blocks of each branch that recs need and
// this node does not hold yet: from its highest stored block to the highest
// block a record is attached to.
func (d *Ledger) missingBlocks(ctx context.Context, p chord.Peer, recs []*ledger.Record) ([][]byte, error) {
	need := map[ledger.Key]uint64{}
	for _, r := range recs {
		if r.Block.No > need[r.Block.Branch] {
			need[r.Block.Branch] = r.Block.No
		}
	}
	var out [][]byte
	for branch, upTo := range need {
		top, _, err := d.store.Head(branch)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if top >= upTo {
			continue
		}
		bs, err := d.fetchBlocks(ctx, p, branch, top+1, upTo)
		if err != nil {
			return nil, fmt.Errorf("blocks %d-%d of branch %s from %s: %w", top+1, upTo, branch, p.Addr, err)
		}
		out = append(out, bs...)
	}
	return out, nil
}

// fetchBlocks asks p for blocks from..to (to 0: up to its head) of a branch.
func (d *Ledger) fetchBlocks(ctx context.Context, p chord.Peer, branch ledger.Key, from, to uint64) ([][]byte, error) {
	var out [][]byte
	for {
		var ans rawList
		if err := d.call(ctx, p, opBlocks, blocksBody{Branch: branch, From: from, To: to}, &ans); err != nil {
			return nil, err
		}
		for _, raw := range ans.Items {
			out = append(out, raw)
		}
		from += uint64(len(ans.Items))
		if !ans.More || len(ans.Items) == 0 || (to != 0 && from > to) || len(out) >= maxCatchUp {
			return out, nil
		}
	}
}

// maxCatchUp bounds the blocks fetched in one go (a node long gone has many
// to catch up; the next round goes on).
const maxCatchUp = 4096
