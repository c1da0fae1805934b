package node

import (
	"context"
	"encoding/json"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/ringledger"
	"github.com/flownode/flownode/ringledger/placement"
)

// The types of the facade's answers are the distributed ledger's own.
type (
	// Peer names a node: its 40-hex ID and the address it is reached at.
	Peer = ringledger.Peer
	// Receipt is what a client gets once its record is durable.
	Receipt = ringledger.Receipt
	// BlockRef names a block in API answers.
	BlockRef = ringledger.BlockRef
	// PutOptions say when Put returns.
	PutOptions = ringledger.PutOptions
	// DistStats are counters of the node's part in the distributed ledger.
	DistStats = ringledger.Stats
)

// ErrNotFound is returned for a record, key or block no node holds.
var ErrNotFound = ringledger.ErrNotFound

// DefaultReplicas is k, the number of copies of each entry (owner included).
const DefaultReplicas = ringledger.DefaultReplicas

// Put takes readings from a client: each goes to the owner of its key, which
// signs it and stores it durably. Receipts come back in the readings' order.
// Invalid input returns a *ledger.InputError and stores nothing of the batch's
// invalid reading (readings of other owners may have been stored: a batch is
// all-or-nothing per owner).
// The OnPut hooks see the receipts of a Put that succeeded before it returns.
func (n *Node) Put(ctx context.Context, readings []ledger.Reading, opt PutOptions) ([]Receipt, error) {
	rcs, err := n.dist.Put(ctx, readings, opt)
	if err == nil {
		n.entered(rcs)
	}
	return rcs, err
}

// Record returns a record's bytes, from whichever node holds it.
func (n *Node) Record(ctx context.Context, txID ledger.Hash) ([]byte, error) {
	rec, err := n.dist.Record(ctx, txID)
	n.hooks.query(Query{Kind: QueryRecord, TxID: txID}, found(err == nil), err)
	return rec, err
}

// LocalRecord returns a record's stored bytes from this node's store only. Every
// record read from this node's store is checked first (ringledger/stored.go): bytes
// that no longer verify are a *ledger.TamperedError, never returned.
func (n *Node) LocalRecord(txID ledger.Hash) ([]byte, error) {
	rec, err := n.dist.LocalRecord(txID)
	n.hooks.query(Query{Kind: QueryRecord, TxID: txID, Local: true}, found(err == nil), err)
	return rec, err
}

// RecordsByKey returns the records stored under a data key, from the key's owner.
func (n *Node) RecordsByKey(ctx context.Context, key ledger.Key, limit int) ([][]byte, error) {
	recs, err := n.dist.RecordsByKey(ctx, key, limit)
	n.hooks.query(Query{Kind: QueryKey, Key: key, Limit: limit}, len(recs), err)
	return recs, err
}

// ErrRangeTooLong is returned by a Thing history query that would visit
// more than ringledger.MaxHistoryBuckets hour buckets (a leap year) before
// reaching its limit: the client narrows from and to.
var ErrRangeTooLong = ringledger.ErrRangeTooLong

// RecordsByThing returns a Thing's records with from ≤ time < to (to 0: no
// bound), oldest first, at most limit (≤ 0: 10 000), from the ring's
// per-Thing history index: about one lookup and one get per hour the range
// spans, stopping at the limit (ringledger/history_query.go).
func (n *Node) RecordsByThing(ctx context.Context, thing string, from, to int64, limit int) ([][]byte, error) {
	recs, err := n.dist.RecordsByThing(ctx, thing, from, to, limit)
	n.hooks.query(Query{Kind: QueryThing, Thing: thing, From: from, To: to, Limit: limit}, len(recs), err)
	return recs, err
}

// LocalRecordsByThing returns a Thing's records with from ≤ time < to (to 0:
// no bound), in time order, from this node's store only (what it holds as
// owner or replica): no message is sent. The Web of Things lists its registry
// this way, each node answering for the range it owns.
func (n *Node) LocalRecordsByThing(thing string, from, to int64, limit int) ([][]byte, error) {
	return n.dist.LocalRecordsByThing(thing, from, to, limit)
}

// KeyRange is a range of ring keys, (From, To]; (a, a] is the whole ring.
type KeyRange = placement.Range

// OwnRange returns the keys this node owns now, (predecessor, self], from its
// own view of the ring: no message is sent. ok is false while it does not know
// its predecessor (it owns nothing new then). A node without a ring, or alone
// in one, owns the whole ring.
func (n *Node) OwnRange() (r KeyRange, ok bool) {
	if n.ring == nil {
		return KeyRange{From: n.ID(), To: n.ID()}, true
	}
	return placement.Own(n.ring.State())
}

// RecordsByThingNewestFirst is RecordsByThing, newest record first.
func (n *Node) RecordsByThingNewestFirst(ctx context.Context, thing string, from, to int64, limit int) ([][]byte, error) {
	recs, err := n.dist.RecordsByThingNewestFirst(ctx, thing, from, to, limit)
	n.hooks.query(Query{Kind: QueryThing, Thing: thing, From: from, To: to, Limit: limit, NewestFirst: true}, len(recs), err)
	return recs, err
}

// LatestByThing returns the newest record of a Thing (its signed bytes),
// from the Thing's extremes entry on the ring: one lookup and one get. It
// returns ErrNotFound when the Thing has no record, a *ledger.InputError for
// an invalid Thing ID.
func (n *Node) LatestByThing(ctx context.Context, thing string) ([]byte, error) {
	rec, err := n.dist.LatestByThing(ctx, thing)
	n.hooks.query(Query{Kind: QueryLatest, Thing: thing, Limit: 1}, found(err == nil), err)
	return rec, err
}

// found counts one record when ok.
func found(ok bool) int {
	if ok {
		return 1
	}
	return 0
}

// Blocks returns up to limit stored blocks of a branch from number from.
func (n *Node) Blocks(branch ledger.Key, from uint64, limit int) ([][]byte, error) {
	return n.store.Blocks(branch, from, limit)
}

// Verify checks the node's store (live) from where the last verification that passed
// left it: what was written or deleted since, or everything when that cannot be
// decided (ledger.VerifyIncremental). The report covers the whole store.
func (n *Node) Verify(ctx context.Context) (*ledger.Report, error) {
	return n.verified(ledger.VerifyIncremental(ctx, n.store, n.ledger.Genesis(), ProofCheck(n.ledger.Genesis()), n.id.ID, false))
}

// VerifyFull checks the node's whole store (live), trusting nothing remembered, and
// remembers the result if it passes.
func (n *Node) VerifyFull(ctx context.Context) (*ledger.Report, error) {
	return n.verified(ledger.VerifyIncremental(ctx, n.store, n.ledger.Genesis(), ProofCheck(n.ledger.Genesis()), n.id.ID, true))
}

// verified adds the findings of the checks above the store (AddVerifyCheck) to a
// report.
func (n *Node) verified(rep *ledger.Report, err error) (*ledger.Report, error) {
	if err != nil {
		return nil, err
	}
	n.verifyChecks.Range(func(_, f any) bool {
		f.(func(*ledger.Report))(rep)
		return true
	})
	return rep, nil
}

// DistStats returns the distributed ledger's counters.
func (n *Node) DistStats() DistStats { return n.dist.Stats() }

// SyncNow runs one repair round and returns when it is done.
func (n *Node) SyncNow(ctx context.Context) error { return n.dist.SyncNow(ctx) }

// Leave hands this node's range to its replicas and leaves the ring. New
// readings for the range are refused meanwhile, so their entry nodes retry
// and reach the successor once it has taken over.
func (n *Node) Leave(ctx context.Context) error { return n.dist.Leave(ctx) }

// RingEvent takes the ring core's events (the driver's Config.OnEvent): the
// distributed ledger repairs copies when the range or successors change.
func (n *Node) RingEvent(e chord.Event) { n.dist.RingEvent(e) }

// HandleMessage answers a peer's application MESSAGE (the driver's
// Config.Messages); before AttachRing it refuses every one as "starting".
func (n *Node) HandleMessage(ctx context.Context, from chord.Peer, data json.RawMessage) (json.RawMessage, error) {
	// The ops of the layers above the ring ledger are found by name; the
	// rest, and anything that is not {"op","body"}, is the ring ledger's
	// to answer (or refuse).
	if op, body, err := ringledger.SplitRequest(data); err == nil {
		if op == opRevocations {
			return n.handleRevocations(ctx, body)
		}
		if h, ok := n.opHandler(op); ok {
			return n.dist.AnswerOp(from, func() (any, error) { return h(ctx, from, body) })
		}
	}
	return n.dist.HandleMessage(ctx, from, data)
}

// Replicas is k, the copies of each entry this node keeps in its ring (owner
// included).
func (n *Node) Replicas() int {
	if n.cfg.Replicas > 0 {
		return n.cfg.Replicas
	}
	return DefaultReplicas
}

// AddVerifyCheck registers f, which adds what a layer above the store knows to
// every report of Verify (package witness: the equivocations it holds evidence of).
func (n *Node) AddVerifyCheck(f func(*ledger.Report)) {
	n.verifyChecks.Store(&f, f)
}
