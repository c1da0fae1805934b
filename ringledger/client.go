package ringledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"

	"go.uber.org/zap"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/ringledger/placement"
)

// PutOptions say when Put returns.
type PutOptions struct {
	// WaitReplicas: return once the records are durable on the replicas too,
	// not only on their owner.
	WaitReplicas bool
}

// Put takes readings from a client: each goes to the owner of its key, which
// signs it and stores it durably. Receipts come back in the readings' order.
// Invalid input returns a *ledger.InputError and stores nothing of the batch's
// invalid reading (readings of other owners may have been stored: a batch is
// all-or-nothing per owner).
func (d *Ledger) Put(ctx context.Context, readings []ledger.Reading, opt PutOptions) ([]Receipt, error) {
	if !d.attached.Load() {
		return d.putLocal(ctx, readings)
	}
	keys := make([]ledger.Key, len(readings))
	if err := ledger.StampReadings(readings, d.now(), rand.Reader); err != nil {
		return nil, err
	}
	if err := ledger.Canonicalize(readings); err != nil {
		return nil, err
	}
	for i := range readings {
		if err := ledger.ValidThingID(readings[i].Thing); err != nil {
			return nil, &ledger.InputError{Index: i, Err: err}
		}
		k, err := ledger.ReadingKey(readings[i])
		if err != nil {
			return nil, &ledger.InputError{Index: i, Err: err}
		}
		keys[i] = k
	}
	ctx, cancel := context.WithTimeout(ctx, putRetryFor)
	defer cancel()
	out := make([]Receipt, len(readings))
	pending := make([]int, len(readings))
	for i := range pending {
		pending[i] = i
	}
	var lastErr error
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt > 0 {
			if err := pause(ctx, attempt); err != nil {
				if lastErr == nil {
					return nil, fmt.Errorf("%d readings not stored: %w", len(pending), err)
				}
				return nil, fmt.Errorf("%d readings not stored: %w (last: %w)", len(pending), err, lastErr)
			}
		}
		groups := map[chord.ID][]int{}
		owners := map[chord.ID]chord.Peer{}
		for _, i := range pending {
			o, err := d.owner(ctx, keys[i])
			if err != nil {
				lastErr = err
				groups = nil
				break
			}
			groups[o.ID] = append(groups[o.ID], i)
			owners[o.ID] = o
		}
		if groups == nil {
			continue
		}
		var (
			mu    sync.Mutex
			retry []int
			wg    sync.WaitGroup
			fatal error
		)
		for id, idx := range groups {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rest, err := d.putTo(ctx, owners[id], readings, idx, out, opt)
				mu.Lock()
				defer mu.Unlock()
				var ie *ledger.InputError
				switch {
				case err == nil:
				case errors.As(err, &ie), errors.Is(err, ErrBadAnswer):
					fatal = err
				default:
					lastErr = err
					retry = append(retry, rest...)
					if mayHaveRun(err) {
						// The owner may hold them already: it must
						// answer with those records, not sign new ones.
						for _, i := range rest {
							readings[i].Resend = true
						}
					}
				}
			}()
		}
		wg.Wait()
		if fatal != nil {
			return nil, fatal
		}
		pending = retry
	}
	return out, nil
}

// putTo sends the readings idx to their owner (in messages that fit) and
// fills their receipts. On failure it returns the readings not acknowledged
// (those of the message that failed and after it), so that only they are
// retried.
func (d *Ledger) putTo(ctx context.Context, owner chord.Peer, readings []ledger.Reading, idx []int, out []Receipt, opt PutOptions) (rest []int, err error) {
	if owner.ID == d.self() {
		rs := make([]ledger.Reading, len(idx))
		for j, i := range idx {
			rs[j] = readings[i]
		}
		op, err := d.ownerPutReadings(ctx, rs, opt.WaitReplicas)
		if err != nil {
			return idx, d.inputIndex(err, idx)
		}
		for j, i := range idx {
			out[i] = op.receipts[j]
		}
		return nil, nil
	}
	for len(idx) > 0 {
		body := putBody{Wait: opt.WaitReplicas}
		size, j := 0, 0
		for ; j < len(idx); j++ {
			r := readings[idx[j]]
			sz := len(r.Data) + len(r.Thing) + recordOverhead
			if (size+sz > maxPayload || j == maxPutReadings) && j > 0 {
				break
			}
			size += sz
			body.Readings = append(body.Readings, wireReading{Thing: r.Thing, Data: r.Data, Key: r.Key, Time: r.Time, Salt: r.Salt, Resend: r.Resend, Device: r.Device})
		}
		var ans putAnswer
		var rcs []Receipt
		err := d.call(ctx, owner, opPut, body, &ans)
		if err == nil {
			rcs, err = d.checkPut(ctx, owner, readings, idx[:j], ans)
		}
		if err != nil {
			if hasCode(err, CodeInput) {
				return idx, d.inputIndex(err, idx[:j])
			}
			d.ranges.forget(owner.ID)
			return idx, err
		}
		d.learnRange(owner, ans.Range)
		for m, i := range idx[:j] {
			out[i] = rcs[m]
		}
		d.stats.forwarded.Add(uint64(j))
		idx = idx[j:]
	}
	return nil, nil
}

// ErrBadAnswer is wrapped by the error of a put whose owner answered with
// records that do not check: the readings may not be stored, and retrying
// with the same owner would not help.
var ErrBadAnswer = errors.New("the owner's answer does not check")

// checkPut checks an owner's answer to a put of readings idx and returns their
// receipts. The owner is the peer called (the transport authenticated it) and
// must be a member now. Each record must verify on its own (signature, hData,
// txID recomputed: ledger CheckSelf), be the record of the reading sent
// (sameReading), be signed by the owner (a resent reading may be answered
// with an earlier owner's record, whose signer must have been a member at the
// record's time), and have its key in the owner's range as this node knows
// the ring: else the readings are sent again after a fresh lookup.
func (d *Ledger) checkPut(ctx context.Context, owner chord.Peer, readings []ledger.Reading, idx []int, ans putAnswer) ([]Receipt, error) {
	bad := func(format string, args ...any) error {
		d.stats.badAnswers.Add(1)
		err := fmt.Errorf("owner %s: %s: %w", owner.Addr, fmt.Sprintf(format, args...), ErrBadAnswer)
		d.log.Warn("refused a put answer", zap.Error(err))
		return err
	}
	if len(ans.Records) != len(idx) {
		return nil, bad("%d records for %d readings", len(ans.Records), len(idx))
	}
	if d.cfg.Members != nil {
		if err := d.cfg.Members.Current(owner.ID); err != nil {
			return nil, bad("not a member now: %v", err)
		}
	}
	st := d.state()
	recs := make([]*ledger.Record, len(idx))
	out := make([]Receipt, len(idx))
	view := placement.NewView(st)
	for m, i := range idx {
		raw := ans.Records[m]
		r, err := ledger.ParseChecked(raw)
		if err == nil {
			err = sameReading(r, readings[i])
		}
		if err == nil && r.Block.Branch != owner.ID && !readings[i].Resend {
			err = fmt.Errorf("signed by node %s, not by the owner", r.Block.Branch.Short())
		}
		if err != nil {
			return nil, bad("record %d: %v", m, err)
		}
		if !view.MayOwn(owner.ID, r.Key) {
			d.stats.badAnswers.Add(1)
			return nil, fmt.Errorf("owner %s signed a record for key %s, outside its range as this node knows the ring", owner.Addr, r.Key)
		}
		recs[m] = r
		signer := owner
		if r.Block.Branch != owner.ID {
			signer = knownPeer(st, r.Block.Branch)
		}
		out[m] = Receipt{TxID: r.TxID, Key: r.Key, Owner: signer, Replicas: PeerList(ans.Replicas), Record: raw,
			Block: BlockRef{Branch: r.Block.Branch, No: r.Block.No, Hash: r.Block.Hash}}
	}
	if err := d.signers(ctx, owner, recs); err != nil {
		return nil, bad("%v", err)
	}
	return out, nil
}

// sameReading checks that r is the record of the reading rd: same Thing,
// data, salt, key and device signature, and same time unless rd was resent (an idempotent
// resend is answered with the first copy's record, stamped earlier).
func sameReading(r *ledger.Record, rd ledger.Reading) error {
	data, err := ledger.CanonicalReadingData(rd)
	if err != nil {
		return err
	}
	key, err := ledger.ReadingKey(rd)
	if err != nil {
		return err
	}
	if r.Thing != rd.Thing || !bytes.Equal(r.Data, data) || !bytes.Equal(r.Salt, rd.Salt) || r.Key != key || (!rd.Resend && r.Time != rd.Time) {
		return errors.New("it is not the record of the reading sent")
	}
	if (r.Device == nil) != (rd.Device == nil) || r.Device != nil && (!bytes.Equal(r.Device.Key, rd.Device.Key) || !bytes.Equal(r.Device.Sig, rd.Device.Sig)) {
		return errors.New("it does not keep the device signature of the reading sent")
	}
	return nil
}

// inputIndex maps an input refusal of a sub-batch back to the client's index.
func (d *Ledger) inputIndex(err error, idx []int) error {
	var ie *ledger.InputError
	if errors.As(err, &ie) && ie.Index >= 0 && ie.Index < len(idx) {
		return &ledger.InputError{Index: idx[ie.Index], Err: ie.Err}
	}
	if r := refusalOf(err); r != nil && r.Code == CodeInput {
		if r.Index != nil && *r.Index >= 0 && *r.Index < len(idx) {
			return &ledger.InputError{Index: idx[*r.Index], Err: errors.New(r.Reason)}
		}
		return &ledger.InputError{Index: idx[0], Err: err}
	}
	return err
}

// Reads from any node.
//
// Costs, for a ring of N nodes (h = Chord lookup hops, about ½·log2 N; a
// lookup is skipped when the range cache knows the owner):
//   - by txID: the local store; else the pointer's owner (h + 1 round trip),
//     which often holds the record too, else the record's owner (h + 1); if
//     both fail (a ring change in progress), every node is asked at once (N).
//   - by data key: the key's owner (h + 1); if it fails, every node (N).
//   - by Thing and time: the ring's history index (history.go,
//     history_query.go): about one lookup and one get per hour bucket the
//     range spans, stopping at the limit; every node is asked at once only
//     while the holders of a bucket are all unreachable.
// Every record that comes from a peer is checked (signature, txID) before it
// is handed out.

// Record returns a record's bytes, from whichever node holds it.
func (d *Ledger) Record(ctx context.Context, txID ledger.Hash) ([]byte, error) {
	raw, err := d.LocalRecord(txID)
	if err == nil || !errors.Is(err, ErrNotFound) || !d.attached.Load() {
		return raw, err
	}
	q := getBody{TxID: &txID}
	// The pointer's owner: it knows the key, and may hold the record.
	var key *ledger.Key
	if p, err := d.owner(ctx, keyOf(txID)); err == nil {
		if ans, err := d.getFrom(ctx, p, q); err == nil {
			if raw := d.pickRecord(ctx, p, ans.Records, txID); raw != nil {
				return raw, nil
			}
			key = ans.Pointer
		}
	}
	if key != nil {
		if o, err := d.owner(ctx, *key); err == nil {
			if ans, err := d.getFrom(ctx, o, q); err == nil {
				if raw := d.pickRecord(ctx, o, ans.Records, txID); raw != nil {
					return raw, nil
				}
			}
		}
	}
	var found []byte
	var mu sync.Mutex // several nodes may answer before the others are cancelled
	err = d.everyNode(ctx, func(ctx context.Context, p chord.Peer) bool {
		ans, err := d.getFrom(ctx, p, q)
		if err != nil {
			return false
		}
		if raw := d.pickRecord(ctx, p, ans.Records, txID); raw != nil {
			mu.Lock()
			found = raw
			mu.Unlock()
			return true
		}
		return false
	})
	if found != nil {
		return found, nil
	}
	if err != nil {
		return nil, err
	}
	return nil, ErrNotFound
}

// pickRecord returns the record with txID among raws p answered, if it checks
// (peerRecord).
func (d *Ledger) pickRecord(ctx context.Context, p chord.Peer, raws []json.RawMessage, txID ledger.Hash) []byte {
	for _, raw := range raws {
		if r := d.peerRecord(ctx, p, raw); r != nil && r.TxID == txID {
			return raw
		}
	}
	return nil
}

// peerRecord returns the record raw that p answered if it verifies on its own
// (ledger CheckSelf) and its signer was a member at its time (members.go
// signers), or nil.
func (d *Ledger) peerRecord(ctx context.Context, p chord.Peer, raw []byte) *ledger.Record {
	r, err := ledger.ParseChecked(raw)
	if err == nil {
		err = d.signers(ctx, p, []*ledger.Record{r})
	}
	if err != nil {
		d.stats.badAnswers.Add(1)
		d.log.Debug("a peer answered a record that does not check", zap.String("peer", p.Addr), zap.Error(err))
		return nil
	}
	return r
}

// checkedRecords keeps the records p answered that check (peerRecord) and
// keep, keyed by txID; mu guards into.
func (d *Ledger) checkedRecords(ctx context.Context, p chord.Peer, raws []json.RawMessage, keep func(*ledger.Record) bool, mu *sync.Mutex, into map[ledger.Hash]recordAt) {
	for _, raw := range raws {
		r := d.peerRecord(ctx, p, raw)
		if r == nil || !keep(r) {
			continue
		}
		mu.Lock()
		into[r.TxID] = recordAt{time: r.Time, txID: r.TxID, raw: raw}
		mu.Unlock()
	}
}

type recordAt struct {
	time int64
	txID ledger.Hash
	raw  []byte
}

// RecordsByKey returns the records stored under a data key, from the key's owner.
func (d *Ledger) RecordsByKey(ctx context.Context, key ledger.Key, limit int) ([][]byte, error) {
	if !d.attached.Load() {
		return d.localByKey(key, limit)
	}
	q := getBody{Key: &key, Limit: limit}
	got := map[ledger.Hash]recordAt{}
	var mu sync.Mutex
	keep := func(r *ledger.Record) bool { return r.Key == key }
	o, err := d.owner(ctx, key)
	if err == nil {
		err = d.getAll(ctx, o, q, limit, func(raws []json.RawMessage) { d.checkedRecords(ctx, o, raws, keep, &mu, got) })
	}
	if tampered(err) {
		return nil, err
	}
	if err != nil {
		err = d.everyNode(ctx, func(ctx context.Context, p chord.Peer) bool {
			d.getAll(ctx, p, q, limit, func(raws []json.RawMessage) { d.checkedRecords(ctx, p, raws, keep, &mu, got) })
			return false
		})
		if err != nil && len(got) == 0 {
			return nil, err
		}
	}
	return ordered(got, limit, func(a, b recordAt) bool { return bytes.Compare(a.txID[:], b.txID[:]) < 0 }), nil
}

func ordered(got map[ledger.Hash]recordAt, limit int, less func(a, b recordAt) bool) [][]byte {
	all := make([]recordAt, 0, len(got))
	for _, r := range got {
		all = append(all, r)
	}
	sort.Slice(all, func(i, j int) bool { return less(all[i], all[j]) })
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	out := make([][]byte, len(all))
	for i, r := range all {
		out[i] = r.raw
	}
	return out
}

// getFrom asks p (or this node) for a local read.
func (d *Ledger) getFrom(ctx context.Context, p chord.Peer, q getBody) (getAnswer, error) {
	if p.ID == d.self() {
		return d.handleGet(q)
	}
	var ans getAnswer
	err := d.call(ctx, p, opGet, q, &ans)
	if err != nil && refusalOf(err) == nil && ctx.Err() == nil {
		d.ranges.forget(p.ID) // unreachable: ask the ring next time
	}
	return ans, err
}

// getAll pages through p's answer to q until limit records or the end.
func (d *Ledger) getAll(ctx context.Context, p chord.Peer, q getBody, limit int, take func([]json.RawMessage)) error {
	for got := 0; ; {
		q.Skip = got
		ans, err := d.getFrom(ctx, p, q)
		if err != nil {
			return err
		}
		take(ans.Records)
		got += len(ans.Records)
		if !ans.More || len(ans.Records) == 0 || got >= limit {
			return nil
		}
	}
}

// everyNode runs f on every ring member at once until one returns true.
func (d *Ledger) everyNode(ctx context.Context, f func(context.Context, chord.Peer) bool) error {
	ps, err := d.memberList(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if f(ctx, p) {
				cancel()
			}
		}()
	}
	wg.Wait()
	return nil
}

// Receipt is what a client gets once its record is durable.
type Receipt struct {
	TxID     ledger.Hash `json:"txID"`
	Key      ledger.Key  `json:"key"`
	Owner    Peer        `json:"owner"`
	Block    BlockRef    `json:"block"`
	Replicas []Peer      `json:"replicas"`
	// Record is the signed record's bytes as stored (checked by checkPut
	// when another node signed it), for the entry node's observers (the Web
	// of Things publishes it); it is not part of the client's receipt.
	Record []byte `json:"-"`
}

// Peer names a node: its 40-hex ID and the address it is reached at. It is
// the ring's own peer type.
type Peer = chord.Peer

// BlockRef names a block in API answers (numbers, not the signed format's strings).
type BlockRef struct {
	Branch ledger.Key  `json:"branch"`
	No     uint64      `json:"no"`
	Hash   ledger.Hash `json:"hash"`
}

// PeerList copies ps into a list that is never nil, so that an empty one is
// [] in JSON answers, not null.
func PeerList(ps []chord.Peer) []Peer { return append(make([]Peer, 0, len(ps)), ps...) }
