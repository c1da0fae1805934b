package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/store"
)

// Reads from any node.
//
// Costs, for a ring of N nodes (h = Chord lookup hops, about ½·log2 N; a
// lookup is skipped when the range cache knows the owner):
//   - by txID: the local store; else the pointer's owner (h + 1 round trip),
//     which often holds the record too, else the record's owner (h + 1); if
//     both fail (a ring change in progress), every node is asked at once (N).
//   - by data key: the key's owner (h + 1); if it fails, every node (N).
//   - by Thing and time: every node is asked at once (N round trips in
//     parallel, each answering from its own index, at most limit records
//     each), then the answers are merged in time order. Records of one Thing
//     are spread over the whole ring by their keys, so no single node can
//     answer; for the tens of gateways of a flownode ring this costs one
//     parallel round, and it needs no extra index to keep consistent.
// Every record that comes from a peer is checked (signature, txID) before it
// is handed out.

// Record returns a record's bytes, from whichever node holds it.
func (n *Node) Record(ctx context.Context, txID ledger.Hash) ([]byte, error) {
	raw, err := n.LocalRecord(txID)
	if err == nil || !errors.Is(err, ErrNotFound) || n.ring == nil {
		return raw, err
	}
	d := &n.dist
	q := getBody{TxID: &txID}
	// The pointer's owner: it knows the key, and may hold the record.
	var key *ledger.Key
	if p, err := d.owner(ctx, keyOf(txID)); err == nil {
		if ans, err := d.getFrom(ctx, p, q); err == nil {
			if raw := pickRecord(ans.Records, txID); raw != nil {
				return raw, nil
			}
			key = ans.Pointer
		}
	}
	if key != nil {
		if o, err := d.owner(ctx, *key); err == nil {
			if ans, err := d.getFrom(ctx, o, q); err == nil {
				if raw := pickRecord(ans.Records, txID); raw != nil {
					return raw, nil
				}
			}
		}
	}
	var found []byte
	err = d.everyNode(ctx, func(ctx context.Context, p chord.Peer) bool {
		ans, err := d.getFrom(ctx, p, q)
		if err != nil {
			return false
		}
		if raw := pickRecord(ans.Records, txID); raw != nil {
			found = raw
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

// pickRecord returns the record with txID among raws if its signature checks.
func pickRecord(raws []json.RawMessage, txID ledger.Hash) []byte {
	for _, raw := range raws {
		r, err := ledger.ParseRecord(raw)
		if err == nil && r.TxID == txID && r.CheckSelf(raw) == nil {
			return raw
		}
	}
	return nil
}

// checkedRecords keeps the records that parse and verify, keyed by txID.
func checkedRecords(raws []json.RawMessage, keep func(*ledger.Record) bool, into map[ledger.Hash]recordAt) {
	for _, raw := range raws {
		r, err := ledger.ParseRecord(raw)
		if err != nil || r.CheckSelf(raw) != nil || !keep(r) {
			continue
		}
		into[r.TxID] = recordAt{time: r.Time, txID: r.TxID, raw: raw}
	}
}

type recordAt struct {
	time int64
	txID ledger.Hash
	raw  []byte
}

// RecordsByKey returns the records stored under a data key, from the key's owner.
func (n *Node) RecordsByKey(ctx context.Context, key ledger.Key, limit int) ([][]byte, error) {
	if n.ring == nil {
		return n.localByKey(key, limit)
	}
	d := &n.dist
	q := getBody{Key: &key, Limit: limit}
	got := map[ledger.Hash]recordAt{}
	keep := func(r *ledger.Record) bool { return r.Key == key }
	o, err := d.owner(ctx, key)
	if err == nil {
		err = d.getAll(ctx, o, q, limit, func(raws []json.RawMessage) { checkedRecords(raws, keep, got) })
	}
	if err != nil {
		var mu sync.Mutex
		err = d.everyNode(ctx, func(ctx context.Context, p chord.Peer) bool {
			d.getAll(ctx, p, q, limit, func(raws []json.RawMessage) {
				mu.Lock()
				checkedRecords(raws, keep, got)
				mu.Unlock()
			})
			return false
		})
		if err != nil && len(got) == 0 {
			return nil, err
		}
	}
	return ordered(got, limit, func(a, b recordAt) bool { return bytes.Compare(a.txID[:], b.txID[:]) < 0 }), nil
}

// RecordsByThing returns a Thing's records with from ≤ time < to (to 0: no
// bound), in time order, gathered from every node.
func (n *Node) RecordsByThing(ctx context.Context, thing string, from, to int64, limit int) ([][]byte, error) {
	if n.ring == nil {
		return n.localByThing(thing, from, to, limit)
	}
	d := &n.dist
	q := getBody{Thing: thing, From: from, To: to, Limit: limit}
	keep := func(r *ledger.Record) bool { return r.Thing == thing && r.Time >= from && (to == 0 || r.Time < to) }
	got := map[ledger.Hash]recordAt{}
	var mu sync.Mutex
	answered := 0
	err := d.everyNode(ctx, func(ctx context.Context, p chord.Peer) bool {
		err := d.getAll(ctx, p, q, limit, func(raws []json.RawMessage) {
			mu.Lock()
			checkedRecords(raws, keep, got)
			mu.Unlock()
		})
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
	return ordered(got, limit, func(a, b recordAt) bool {
		if a.time != b.time {
			return a.time < b.time
		}
		return bytes.Compare(a.txID[:], b.txID[:]) < 0
	}), nil
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
func (d *dist) getFrom(ctx context.Context, p chord.Peer, q getBody) (getAnswer, error) {
	if p.ID == d.self() {
		return d.localGet(q)
	}
	var ans getAnswer
	err := d.call(ctx, p, opGet, q, &ans)
	if err != nil && refusalCode(err) == "" && ctx.Err() == nil {
		d.ranges.forget(p.ID) // unreachable: ask the ring next time
	}
	return ans, err
}

// getAll pages through p's answer to q until limit records or the end.
func (d *dist) getAll(ctx context.Context, p chord.Peer, q getBody, limit int, take func([]json.RawMessage)) error {
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
func (d *dist) everyNode(ctx context.Context, f func(context.Context, chord.Peer) bool) error {
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

// maxGetLimit bounds one local read.
const maxGetLimit = 10000

// localGet answers opGet from this node's store only.
func (d *dist) localGet(q getBody) (getAnswer, error) {
	out := getAnswer{Records: []json.RawMessage{}}
	if q.Limit < 0 || q.Limit > maxGetLimit || q.Skip < 0 || q.Skip > maxGetLimit {
		return out, refusal(codeRefused, "limit and skip must be 0 to %d", maxGetLimit)
	}
	var raws [][]byte
	var err error
	switch {
	case q.TxID != nil && q.Key == nil && q.Thing == "":
		raw, err := d.n.LocalRecord(*q.TxID)
		if err == nil {
			out.Records = append(out.Records, raw)
			return out, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return out, err
		}
		if key, err := d.n.store.Pointer(*q.TxID); err == nil {
			k := ledger.Key(key)
			out.Pointer = &k
		} else if !errors.Is(err, store.ErrNotFound) {
			return out, err
		}
		return out, nil
	case q.Key != nil && q.TxID == nil && q.Thing == "":
		raws, err = d.n.localByKey(*q.Key, q.Limit+q.Skip)
	case q.Thing != "" && q.TxID == nil && q.Key == nil:
		if err := ledger.ValidThingID(q.Thing); err != nil {
			return out, refusal(codeRefused, "%v", err)
		}
		raws, err = d.n.localByThing(q.Thing, q.From, q.To, q.Limit+q.Skip)
	default:
		return out, refusal(codeRefused, "a get names exactly one of txID, key or thing")
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
