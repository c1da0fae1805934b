package ringledger

import (
	"bytes"
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

// HandleMessage answers a peer's application MESSAGE (the driver's
// Config.Messages). The reply is always an answer or a structured refusal
// (wire.go); bad input is refused with a logged reason and changes nothing.
// Before Attach every message is refused as "leaving" (the node is
// starting), so the asking node retries elsewhere or later. With
// Config.Members, every op needs a sender that is a member now: the
// transport authenticated from.ID, and a connection may outlive the
// membership (revoked or expired) it was opened with.
func (d *Ledger) HandleMessage(ctx context.Context, from chord.Peer, data json.RawMessage) (json.RawMessage, error) {
	var out any
	var err error
	if d.attached.Load() {
		out, err = d.handle(ctx, from, data)
	} else {
		err = refuse(CodeLeaving, "this node is starting")
	}
	if err == nil {
		return json.Marshal(reply{Answer: out})
	}
	r := refusalOf(err)
	if r == nil {
		r = refuse(CodeUnavailable, "%v", err)
	}
	if r.Code == CodeRefused {
		d.stats.rejected.Add(1)
		d.log.Warn("refused a peer's message", zap.String("from", from.Addr), zap.Error(r))
	}
	return json.Marshal(reply{Refusal: r})
}

func (d *Ledger) handle(ctx context.Context, from chord.Peer, data json.RawMessage) (any, error) {
	var req peerRequest
	var err error
	if req.Op, req.Body, err = SplitRequest(data); err != nil {
		return nil, refuse(CodeRefused, "malformed message: %v", err)
	}
	// The transport authenticated from.ID; a connection may outlive the
	// membership it was opened with.
	if err := d.memberNow(from.ID); err != nil {
		return nil, err
	}
	body := func(v any) error {
		if err := decodeStrict(req.Body, v); err != nil {
			return refuse(CodeRefused, "malformed %s body: %v", req.Op, err)
		}
		return nil
	}
	switch req.Op {
	case opPut:
		var b putBody
		if err := body(&b); err != nil {
			return nil, err
		}
		return d.handlePut(ctx, b)
	case opReplicate:
		b, err := decodeReplicateBody(req.Body)
		if err != nil {
			return nil, refuse(CodeRefused, "malformed %s body: %v", req.Op, err)
		}
		return d.handleReplicate(ctx, from, b)
	case opPointers:
		b, err := decodeReplicateBody(req.Body)
		if err != nil {
			return nil, refuse(CodeRefused, "malformed %s body: %v", req.Op, err)
		}
		return d.handlePointers(ctx, from, b)
	case opBlocks:
		var b blocksBody
		if err := body(&b); err != nil {
			return nil, err
		}
		return d.handleBlocks(b)
	case opDigest:
		var b digestBody
		if err := body(&b); err != nil {
			return nil, err
		}
		return d.handleDigest(from, b)
	case opList:
		var b listBody
		if err := body(&b); err != nil {
			return nil, err
		}
		return d.handleList(b)
	case opFetch:
		var b fetchBody
		if err := body(&b); err != nil {
			return nil, err
		}
		return d.handleFetch(b)
	case opHas:
		var b hasBody
		if err := body(&b); err != nil {
			return nil, err
		}
		return d.handleHas(b)
	case opGet:
		var b getBody
		if err := body(&b); err != nil {
			return nil, err
		}
		return d.handleGet(b)
	case opMembership:
		var b membershipBody
		if err := body(&b); err != nil {
			return nil, err
		}
		return d.handleMembership(b)
	}
	return nil, refuse(CodeRefused, "unknown op %q", clip(req.Op))
}

// handlePut answers opPut from a member (HandleMessage checked it): each key
// must be in this node's range (ownerPutReadings). The answer carries the
// signed records, which the entry node checks (client.go checkPut).
func (d *Ledger) handlePut(ctx context.Context, b putBody) (putAnswer, error) {
	if len(b.Readings) == 0 || len(b.Readings) > maxPutReadings {
		return putAnswer{}, refuse(CodeRefused, "%d readings in one put; 1 to %d", len(b.Readings), maxPutReadings)
	}
	rs := make([]ledger.Reading, len(b.Readings))
	for i, w := range b.Readings {
		if w.Time == 0 || len(w.Salt) == 0 {
			return putAnswer{}, refuse(CodeRefused, "reading %d is not stamped (time, salt)", i)
		}
		rs[i] = ledger.Reading{Thing: w.Thing, Data: w.Data, Key: w.Key, Time: w.Time, Salt: w.Salt, Resend: w.Resend, Device: w.Device}
	}
	op, err := d.ownerPutReadings(ctx, rs, b.Wait)
	var ie *ledger.InputError
	if errors.As(err, &ie) {
		return putAnswer{}, &Refusal{Code: CodeInput, Index: &ie.Index, Reason: ie.Err.Error()}
	}
	if err != nil {
		return putAnswer{}, err
	}
	ans := putAnswer{Records: make([]json.RawMessage, len(op.records)), Replicas: op.replicas, Range: op.rng}
	for i, r := range op.records {
		ans.Records[i] = r
	}
	return ans, nil
}

// ownerPut is what an owner's put produced: the receipts and the signed
// records, in the readings' order, the replicas and the range it owns.
type ownerPut struct {
	receipts []Receipt
	records  [][]byte
	replicas []Peer
	rng      wireRange
}

// takingRange returns the range this node takes new entries for, or the
// refusal to answer when it takes none.
func (d *Ledger) takingRange() (st chord.State, from, to ledger.Key, err error) {
	if d.leaving.Load() {
		return st, from, to, refuse(CodeLeaving, "this node is leaving the ring")
	}
	st = d.state()
	from, to, ok := ownRange(st)
	if !ok {
		return st, from, to, refuse(CodeMisrouted, "this node does not know its range yet")
	}
	return st, from, to, nil
}

// ownerPutReadings signs readings this node owns, stores them, writes their
// pointers and replicates them.
func (d *Ledger) ownerPutReadings(ctx context.Context, rs []ledger.Reading, waitReplicas bool) (ownerPut, error) {
	st, from, to, err := d.takingRange()
	if err != nil {
		return ownerPut{}, err
	}
	if err := ledger.Canonicalize(rs); err != nil {
		return ownerPut{}, err
	}
	for i := range rs {
		k, err := ledger.ReadingKey(rs[i])
		if err != nil {
			return ownerPut{}, &ledger.InputError{Index: i, Err: err}
		}
		if !inRange(from, k, to) {
			return ownerPut{}, refuse(CodeMisrouted, "key %s is outside this node's range (%s, %s]", k, from, to)
		}
	}
	// wait=replicas promises k copies. A node cut off from the others
	// believes them dead and owns the whole ring: acknowledging with the
	// replicas it can still see would acknowledge data only it holds (the
	// partition drill lost such readings). Refuse before signing anything;
	// the entry node retries while the ring heals. A ring that never had k
	// nodes (a lone dev node) gives what it has.
	targets := d.replicaTargets(st)
	if waitReplicas && len(targets) < d.k-1 && d.hadReplicas.Load() {
		return ownerPut{}, refuse(CodeReplicas, "only %d of the %d replicas are in this node's successor list: the readings would not survive its loss", len(targets), d.k-1)
	}
	if err := d.check(ctx, rs); err != nil {
		return ownerPut{}, err
	}
	own := newOwnIndex(d, func(k ledger.Key) bool { return inRange(from, k, to) })
	lrs, err := d.ledger.AppendIndexed(ctx, rs, own.index)
	if err != nil {
		return ownerPut{}, err
	}
	d.stats.owned.Add(uint64(len(lrs)))
	d.recorded(lrs, st.Self, PeerList(targets))
	records := make([][]byte, len(lrs))
	for i, r := range lrs {
		records[i] = r.Record
	}
	// Replication and the remote index writes start now; the index entries
	// of this node's own positions were written with the records and go to
	// its replicas with them. The answer does not wait for the pointers (a
	// read by txID that finds none searches the ring); with wait=replicas it
	// waits for the history entries to be stored at their owners, so that an
	// acknowledged reading is in its Thing's history (a failure fails the
	// put, whose resend writes them again).
	done := d.repl.send(targets, records, own.pointers, own.history)
	pointers, history := own.remote(lrs)
	indexed := func(context.Context) error { return nil }
	if len(pointers)+len(history) > 0 {
		indexed = d.ptrs.add(pointers, history)
	}
	if waitReplicas {
		if err := done(ctx); err != nil {
			return ownerPut{}, fmt.Errorf("records durable on their owner, not on every replica: %w", err)
		}
		if err := indexed(ctx); err != nil {
			return ownerPut{}, fmt.Errorf("records durable on their owner and replicas, not in their Thing's history index: %w", err)
		}
	}
	self := st.Self
	reps := PeerList(targets)
	out := ownerPut{receipts: make([]Receipt, len(lrs)), records: records, replicas: reps, rng: wireRange{From: from, To: to}}
	for i, r := range lrs {
		owner := self
		if r.Block.Branch != self.ID {
			// A resent reading found as a copy of the record another
			// node signed (the owner before a ring change).
			owner = knownPeer(st, r.Block.Branch)
		}
		out.receipts[i] = Receipt{TxID: r.TxID, Key: r.Key, Owner: owner, Replicas: reps, Record: r.Record,
			Block: BlockRef{Branch: r.Block.Branch, No: r.Block.No, Hash: r.Block.Hash}}
	}
	return out, nil
}

// handlePointers answers opPointers: pointers and history entries this node
// owns, stored durably and replicated like records. They come from the owner
// of the records they index (ownerPutReadings): storeOwnIndex checks that.
func (d *Ledger) handlePointers(ctx context.Context, sender chord.Peer, b replicateBody) (storedAnswer, error) {
	if n := len(b.Pointers) + len(b.History); n == 0 || n > listPage || len(b.Records) > 0 {
		return storedAnswer{}, refuse(CodeRefused, "%d pointers and history entries (and %d records) in one message; 1 to %d, no records", n, len(b.Records), listPage)
	}
	return d.storeOwnIndex(ctx, sender, b)
}

// storeOwnIndex stores pointers and history entries in this node's range
// durably and replicates them. Each entry's position must be in this node's
// range and the data key of the record it indexes in the sender's (the owner
// of a record writes its pointer and history entries); a pointer must agree
// with what this node holds (checkPointers), a history entry be a record that
// checks at its own position (checkHistory).
func (d *Ledger) storeOwnIndex(ctx context.Context, sender chord.Peer, b replicateBody) (storedAnswer, error) {
	st, from, to, err := d.takingRange()
	if err != nil {
		return storedAnswer{}, err
	}
	for _, w := range b.Pointers {
		if !inRange(from, keyOf(w.TxID), to) {
			return storedAnswer{}, refuse(CodeMisrouted, "pointer %s is outside this node's range (%s, %s]", w.TxID, from, to)
		}
	}
	for _, w := range b.History {
		if !inRange(from, w.Pos, to) {
			return storedAnswer{}, refuse(CodeMisrouted, "history position %s is outside this node's range (%s, %s]", w.Pos, from, to)
		}
	}
	if err := d.checkPointers(st, sender, b.Pointers, func(w wirePointer) ledger.Key { return w.Key }); err != nil {
		return storedAnswer{}, err
	}
	hs, err := d.checkHistory(ctx, st, sender, b.History, ruleWriter)
	if err != nil {
		return storedAnswer{}, err
	}
	ps := storePointers(b.Pointers)
	if err := d.storeIndex(ctx, ps, hs); err != nil {
		return storedAnswer{}, err
	}
	d.repl.send(d.replicaTargets(st), nil, ps, b.History)
	return storedAnswer{Stored: len(ps) + len(hs), Range: wireRange{From: from, To: to}}, nil
}

// handleReplicate answers opReplicate: copies pushed by the peer that owns
// them (acceptReplicas says what is checked).
func (d *Ledger) handleReplicate(ctx context.Context, from chord.Peer, b replicateBody) (storedAnswer, error) {
	stored, err := d.acceptReplicas(ctx, from, b, false)
	return storedAnswer{Stored: stored}, err
}

// acceptReplicas stores records and pointers from a peer that owns them (or
// from a node handing on its range). Each entry must lie in the sender's
// range as this node knows the ring (placement.MayOwn: no live node it knows
// is a closer successor); each record's signer must have been a member at the
// record's time (its membership asked of the sender when unknown, members.go
// signers), and each record must be correctly signed into a valid block
// (ledger.Ingest; blocks fetched from the sender when this node lacks them);
// pointers must not overwrite others (checkPointers). pulled marks entries
// this node asked for itself (a repair pull), for which the range rule does
// not apply: the caller checked them against the range it asked for.
func (d *Ledger) acceptReplicas(ctx context.Context, from chord.Peer, b replicateBody, pulled bool) (int, error) {
	st := d.state()
	pushed := !pulled && from.ID != d.self()
	// Each record is checked on its own here, before the membership of its
	// signer is asked (signers); Ingest then finds it checked.
	raws := make([][]byte, len(b.Records))
	for i, r := range b.Records {
		raws[i] = r
	}
	recs, bad, err := ledger.ParseCheckedAll(raws)
	if err != nil {
		return 0, refuse(CodeRefused, "record %d: %v", bad, err)
	}
	view := placement.NewView(st)
	for _, r := range recs {
		if pushed && !view.MayOwn(from.ID, r.Key) {
			return 0, refuse(CodeRefused, "record %s has key %s, outside the sender's range as this node knows the ring", r.TxID, r.Key)
		}
	}
	var pos func(wirePointer) ledger.Key
	if pushed {
		pos = func(w wirePointer) ledger.Key { return keyOf(w.TxID) }
	}
	if err := d.checkPointers(st, from, b.Pointers, pos); err != nil {
		return 0, err
	}
	rule := rulePulled
	if pushed {
		rule = ruleCopy
	}
	hs, err := d.checkHistory(ctx, st, from, b.History, rule)
	if err != nil {
		return 0, err
	}
	if err := d.signers(ctx, from, recs); err != nil {
		return 0, err
	}
	stored := 0
	if len(recs) > 0 {
		blocks, err := d.missingBlocks(ctx, from, recs)
		if err != nil {
			return 0, err
		}
		st, err := d.ledger.Ingest(ctx, blocks, raws)
		var ie *ledger.IngestError
		if errors.As(err, &ie) {
			return 0, refuse(CodeRefused, "%v", ie)
		}
		if err != nil {
			return 0, err
		}
		stored += st.Records
		d.stats.blocksIn.Add(uint64(st.Blocks))
		if !pulled {
			d.stats.replicasIn.Add(uint64(st.Records))
		}
	}
	if err := d.storeIndex(ctx, storePointers(b.Pointers), hs); err != nil {
		return stored, err
	}
	return stored + len(b.Pointers) + len(hs), nil
}

// handleBlocks answers opBlocks from the store, as many as fit one message,
// to a member; the asker checks what it gets (ledger.Ingest).
func (d *Ledger) handleBlocks(b blocksBody) (rawList, error) {
	if b.From == 0 {
		return rawList{}, refuse(CodeRefused, "blocks are numbered from 1")
	}
	const page = 64
	raws, err := d.store.Blocks(b.Branch, b.From, page)
	if err != nil {
		return rawList{}, err
	}
	out := rawList{Items: []json.RawMessage{}}
	size := 0
	for i, raw := range raws {
		no := b.From + uint64(i)
		if b.To != 0 && no > b.To {
			break
		}
		if size+len(raw) > maxPayload && len(out.Items) > 0 {
			out.More = true
			break
		}
		size += len(raw)
		out.Items = append(out.Items, raw)
	}
	if len(raws) == page && !out.More && (b.To == 0 || b.From+page-1 < b.To) {
		out.More = true
	}
	return out, nil
}

// handleDigest answers opDigest, to a member. An owner asks its replicas for digests of
// its range in every repair round, so the request also tells this node which
// range it holds copies of for whom (see noteAssigned, dropSurplus).
func (d *Ledger) handleDigest(from chord.Peer, b digestBody) ([]wireDigest, error) {
	out, err := d.digests(b)
	if err == nil && len(b.Ranges) > 0 {
		d.noteAssigned(from.ID, placement.Range{From: b.Ranges[0].From, To: b.Ranges[len(b.Ranges)-1].To})
	}
	return out, err
}

// digests computes the digests of ranges from this node's store.
func (d *Ledger) digests(b digestBody) ([]wireDigest, error) {
	if len(b.Ranges) > 256 {
		return nil, refuse(CodeRefused, "%d ranges in one digest request; at most 256", len(b.Ranges))
	}
	out := make([]wireDigest, len(b.Ranges))
	for i, r := range b.Ranges {
		dg, err := d.store.RangeDigest(r.From, r.To)
		if err != nil {
			return nil, err
		}
		out[i] = wireDigest{Records: dg.Records, Pointers: dg.Pointers, History: dg.History, Sum: dg.Sum}
	}
	return out, nil
}

// handleList answers opList, to a member: a page of the range's records or
// pointers, in ring order after the cursor (which must lie in the range).
func (d *Ledger) handleList(b listBody) (listAnswer, error) {
	out := listAnswer{Entries: []wirePointer{}}
	if b.Pointers && b.History {
		return out, refuse(CodeRefused, "a list is of records, pointers or history entries")
	}
	from := b.Range.From
	var skipUntil *wireCursor
	if b.After != nil {
		if !inRange(b.Range.From, b.After.Pos, b.Range.To) {
			return out, refuse(CodeRefused, "list cursor outside the range")
		}
		// Resume at the cursor's position; entries at that same position up
		// to the cursor's txID were on the previous page.
		from = prevKey(b.After.Pos)
		skipUntil = b.After
	}
	stop := errors.New("page full")
	// At one position entries come in txID order (records, pointers), or
	// in time then txID order (history entries; t is 0 for the others).
	add := func(pos ledger.Key, txID ledger.Hash, key ledger.Key, t int64) error {
		if skipUntil != nil && pos == skipUntil.Pos {
			if t < skipUntil.Time || (t == skipUntil.Time && bytes.Compare(txID[:], skipUntil.TxID[:]) <= 0) {
				return nil
			}
		}
		if len(out.Entries) == listPage {
			out.More = true
			return stop
		}
		out.Entries = append(out.Entries, wirePointer{TxID: txID, Key: key, Time: t})
		return nil
	}
	var err error
	switch {
	case b.History:
		err = d.store.EachHistoryInRange(from, b.Range.To, func(ref store.HistoryRef) error {
			return add(ref.Pos, ref.TxID, ref.Pos, ref.Time)
		})
	case b.Pointers:
		err = d.store.EachPointerInRange(from, b.Range.To, func(txID [32]byte, key [20]byte) error {
			return add(keyOf(txID), txID, key, 0)
		})
	default:
		err = d.store.EachKeyInRange(from, b.Range.To, func(key [20]byte, txID [32]byte) error {
			return add(key, txID, key, 0)
		})
	}
	if err != nil && !errors.Is(err, stop) {
		return out, err
	}
	return out, nil
}

// handleFetch answers opFetch, to a member: the records this node holds, as
// many as fit. The asker checks each as a replica does (repair.go pull).
func (d *Ledger) handleFetch(b fetchBody) (rawList, error) {
	if len(b.History) > 0 {
		return d.fetchHistory(b)
	}
	var raws [][]byte
	size := 0
	for _, id := range b.TxIDs {
		raw, err := d.checkedRecord(id, ledger.Location{})
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return rawList{}, err
		}
		raws = append(raws, raw)
		if size += len(raw); size > maxPayload {
			break // fitPayload cuts here and says there is more
		}
	}
	items, more := fitPayload(raws)
	return rawList{Items: items, More: more}, nil
}

// fetchHistory answers a fetch of history entries: wireHistory items, as
// many as fit. The asker checks each as a replica does (repair.go pull).
func (d *Ledger) fetchHistory(b fetchBody) (rawList, error) {
	if len(b.TxIDs) > 0 || len(b.History) > listPage {
		return rawList{}, refuse(CodeRefused, "a fetch asks for records or up to %d history entries", listPage)
	}
	refs := make([]store.HistoryRef, len(b.History))
	for i, c := range b.History {
		refs[i] = historyRefOf(c)
	}
	hs, err := d.wireHistoryOf(refs)
	if err != nil {
		return rawList{}, err
	}
	raws := make([][]byte, 0, len(hs))
	for _, h := range hs {
		raw, err := json.Marshal(h)
		if err != nil {
			return rawList{}, err
		}
		raws = append(raws, raw)
	}
	items, more := fitPayload(raws)
	return rawList{Items: items, More: more}, nil
}

// maxGetLimit bounds one local read.
const maxGetLimit = 10000

// handleGet answers opGet, to a member, from this node's store only. The
// reader checks each record it gets (client.go peerRecord).
func (d *Ledger) handleGet(q getBody) (getAnswer, error) {
	out := getAnswer{Records: []json.RawMessage{}}
	if q.Limit < 0 || q.Limit > maxGetLimit || q.Skip < 0 || q.Skip > maxGetLimit {
		return out, refuse(CodeRefused, "limit and skip must be 0 to %d", maxGetLimit)
	}
	var raws [][]byte
	var err error
	if q.History != nil || q.After != nil || q.Desc {
		return d.handleGetHistory(q)
	}
	switch {
	case q.TxID != nil && q.Key == nil && q.Thing == "":
		raw, err := d.LocalRecord(*q.TxID)
		if err == nil {
			out.Records = append(out.Records, raw)
			return out, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return out, err
		}
		if key, err := d.store.Pointer(*q.TxID); err == nil {
			k := ledger.Key(key)
			out.Pointer = &k
		} else if !errors.Is(err, store.ErrNotFound) {
			return out, err
		}
		return out, nil
	case q.Key != nil && q.TxID == nil && q.Thing == "":
		raws, err = d.localByKey(*q.Key, q.Limit+q.Skip)
	case q.Thing != "" && q.TxID == nil && q.Key == nil:
		if err := ledger.ValidThingID(q.Thing); err != nil {
			return out, refuse(CodeRefused, "%v", err)
		}
		raws, err = d.localByThing(q.Thing, q.From, q.To, q.Limit+q.Skip)
	default:
		return out, refuse(CodeRefused, "a get names exactly one of txID, key or thing")
	}
	if err != nil {
		return out, err
	}
	if q.Skip < len(raws) {
		raws = raws[q.Skip:]
	} else {
		raws = nil
	}
	out.Records, out.More = fitPayload(raws)
	return out, nil
}

// handleHas answers opHas, to a member: which of the entries this node holds, for a node
// about to drop its surplus copies of them (repair.go dropSurplus).
func (d *Ledger) handleHas(b hasBody) (hasAnswer, error) {
	n := len(b.TxIDs) + len(b.History)
	if n == 0 || n > listPage || (len(b.History) > 0 && (len(b.TxIDs) > 0 || b.Pointers)) {
		return hasAnswer{}, refuse(CodeRefused, "%d entries in one has request; 1 to %d of one kind", n, listPage)
	}
	st, from, to, err := d.takingRange()
	if err != nil {
		return hasAnswer{}, err
	}
	out := hasAnswer{Held: make([]bool, n), Range: wireRange{From: from, To: to}, Replicas: []ledger.Key{}}
	for i, c := range b.History {
		if out.Held[i], err = d.holdsHistory(historyRefOf(c)); err != nil {
			return hasAnswer{}, err
		}
	}
	for i, id := range b.TxIDs {
		if b.Pointers {
			_, err = d.store.Pointer(id)
		} else {
			_, err = d.store.Record(id)
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return hasAnswer{}, err
		}
		out.Held[i] = err == nil
	}
	for _, p := range d.replicaTargets(st) {
		out.Replicas = append(out.Replicas, p.ID)
	}
	out.RepairedMs = d.now().Sub(time.Unix(0, d.repairedAt.Load())).Milliseconds()
	return out, nil
}
