package wot

import (
	"context"
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

// Observation across the ring.
//
// Each Thing has a rendezvous node, successor(SHA-1("observe:" + thing)).
// A node with local subscriptions of a Thing holds a lease there
// ("wot.subscribe", renewed every renewEvery, gone after leaseTTL). The
// entry node of a reading, once the put is acknowledged, delivers it to its
// own subscriptions at once and queues it for the rendezvous
// ("wot.publish"), which forwards it to every other node holding a lease
// ("wot.notify"); those deliver it to their subscriptions.
//
// Order: an entry node numbers the updates of each Thing it publishes (a
// stream: a random epoch and a sequence) and sends a Thing's publications
// one at a time, in order, from one goroutine per Thing; the rendezvous
// answers a publication only after forwarding it, so a Thing's updates from
// one entry node reach each subscribed node in order. A retried publication
// (its answer lost) is dropped by sequence at the receiver, and a record
// published twice (an idempotent resend) by txID (hub.deliver). Readings
// written through this layer get strictly increasing times (live.stamp), so
// the ring's time order is their order too.
//
// Gaps: a receiver that sees a sequence skip (an update dropped by a full
// queue, a publication given up, a lease that was elsewhere for a while)
// holds the Thing's live updates and catches up from the ring
// (RecordsByThing from the last update before the gap), waiting up to
// catchUpWait for the missing records to show, then delivers them and what
// it held, in order. A lease that comes back new (the rendezvous moved or
// restarted) catches up the same way, for the updates after the last one.
// A catch-up never delivers a record older than one already delivered: a
// Thing's subscribers may miss updates, never get them out of order.
//
// Cost per batch of readings of one Thing (one put of a WebSocket
// connection, up to publishBatch readings): 1 message to the rendezvous (0
// when the entry node is the rendezvous) and 1 per other node holding a
// lease, plus each receiver's signature check of every record; a gap costs
// a ring-wide read (N round trips, until the per-Thing time index). Leases
// cost one message per node and rendezvous every renewEvery, for all its
// Things.
//
// Failures: the rendezvous answers a publication with a refusal when a
// node holding a lease did not take it, and the entry node publishes it
// again (the nodes that had it drop the copy by sequence), publishAttempts
// times in all, then drops it (the receivers see the gap). While the
// rendezvous is down, updates reach remote observers only through the
// catch-up once it is back or replaced; never lost to the ledger. When the
// rendezvous moves (a join or leave), a node that is no longer the
// rendezvous forwards publications and lease requests to the new one once
// (a sender with an old view of the ring) and notifies the leases it still
// holds; subscribers register with the new rendezvous on their next renewal
// (within renewEvery).

// Op names.
const (
	opSubscribe = "wot.subscribe"
	opPublish   = "wot.publish"
	opNotify    = "wot.notify"
)

// renewInterval is how often a node renews its leases: twice its profile's
// sync interval, within [1 s, 10 s].
func renewInterval(p node.Profile) time.Duration {
	return min(max(2*p.SyncInterval, time.Second), 10*time.Second)
}

// leaseTTL is how long a lease lasts without renewal: three renewals, and
// never less than minLeaseTTL, so that a loaded node whose renewals are
// slow keeps its leases.
func leaseTTL(renewEvery time.Duration) time.Duration {
	return max(3*renewEvery, minLeaseTTL)
}

const (
	minLeaseTTL = 15 * time.Second
	// renewTimeout bounds one round of lease renewals, catchUpTimeout one
	// catch-up read.
	renewTimeout   = 10 * time.Second
	catchUpTimeout = 10 * time.Second
)

const (
	// notifyTimeout bounds a rendezvous' notification of one node (tried
	// notifyAttempts times); publishTimeout an entry node's publication,
	// which waits for those.
	notifyTimeout   = 5 * time.Second
	notifyAttempts  = 1
	publishTimeout  = notifyAttempts*notifyTimeout + 5*time.Second
	publishAttempts = 5
	// publishBatch and publishBytes bound one publication (the rpc codec
	// takes envelopes of 64 KiB).
	publishBatch = 64
	publishBytes = 40 << 10
	// queueBytes bounds what all of a node's publication queues hold;
	// queueThings how many Things may have one at a time. Past either,
	// updates are not published (remote observers lose them).
	queueBytes  = 16 << 20
	queueThings = 1024
	// leasesPerPeer and leasesTotal bound the leases a rendezvous holds.
	leasesPerPeer = 8192
	leasesTotal   = 65536
	// subscribeBatch bounds the Things of one lease request.
	subscribeBatch = 256
)

// rendezvousKey is the ring key of a Thing's rendezvous.
func rendezvousKey(thing string) ledger.Key {
	return ledger.Key(sha1.Sum([]byte("observe:" + thing)))
}

// Wire bodies.
type (
	subscribeBody struct {
		Things []string `json:"things"`
		// Holder is set by a node forwarding another's request (it is not
		// the rendezvous as it sees the ring): the lease is the holder's.
		Holder *node.Peer `json:"holder,omitempty"`
	}
	subscribeAnswer struct {
		TTLms   int64    `json:"ttlMs"`
		Refused []string `json:"refused,omitempty"` // not the rendezvous, or over its bounds
		New     []string `json:"new,omitempty"`     // leased now, not renewed: updates may have been missed
	}
	publishBody struct {
		Thing     string            `json:"thing"`
		Entry     ledger.Key        `json:"entry"` // the entry node, when forwarded
		Epoch     uint64            `json:"epoch,string"`
		Seq       uint64            `json:"seq,string"` // of the first record
		Records   []json.RawMessage `json:"records"`
		Forwarded bool              `json:"forwarded,omitempty"`
	}
	publishAnswer struct {
		Subscribers int `json:"subscribers"`
	}
	notifyAnswer struct {
		Unwanted bool `json:"unwanted,omitempty"` // no subscription here: drop the lease
	}
)

// fanoutStats count what observation across the ring lost.
type fanoutStats struct {
	notPublished atomic.Uint64 // updates dropped before the rendezvous (queues full, rendezvous down)
	caughtUp     atomic.Uint64 // updates delivered late, read from the ring (a gap, a new lease)
	notCaughtUp  atomic.Uint64 // catch-ups that failed (the missing updates were given up)
	notNotified  atomic.Uint64 // updates a rendezvous failed to deliver to an observing node (the entry node retries)
	badNotices   atomic.Uint64 // records in notifications that did not check
}

// rendezvousOf returns the Thing's rendezvous and whether it is this node.
func (l *live) rendezvousOf(ctx context.Context, thing string) (node.Peer, bool, error) {
	p, err := l.t.node.Owner(ctx, rendezvousKey(thing))
	return p, err == nil && p.ID == l.t.node.ID(), err
}

// handleSubscribe grants leases to the sender for the Things this node is
// the rendezvous of. Verified: the sender is a member (the node checks);
// each Thing ID is valid; this node is the Thing's rendezvous (else the
// request is forwarded once to the one this node finds, for the sender:
// a member could thus lease for another, which only makes the rendezvous
// notify a node that answers "unwanted"); the leases fit the bounds. The
// Things it cannot lease are listed as refused.
func (l *live) handleSubscribe(ctx context.Context, from node.Peer, raw json.RawMessage) (any, error) {
	var b subscribeBody
	if err := node.DecodeOp(opSubscribe, raw, &b); err != nil {
		return nil, err
	}
	if len(b.Things) == 0 || len(b.Things) > subscribeBatch {
		return nil, node.Refuse(node.CodeRefused, "%d Things in one lease request; 1 to %d", len(b.Things), subscribeBatch)
	}
	holder := from
	if b.Holder != nil {
		holder = *b.Holder
	}
	ttl := leaseTTL(l.renewEvery)
	ans := subscribeAnswer{TTLms: ttl.Milliseconds()}
	until := time.Now().Add(ttl)
	elsewhere := map[ledger.Key][]string{}
	peers := map[ledger.Key]node.Peer{}
	for _, thing := range b.Things {
		if err := ledger.ValidThingID(thing); err != nil {
			return nil, node.Refuse(node.CodeRefused, "%v", err)
		}
		rdv, self, err := l.rendezvousOf(ctx, thing)
		switch {
		case err != nil:
			ans.Refused = append(ans.Refused, thing)
		case !self && b.Holder == nil:
			elsewhere[rdv.ID] = append(elsewhere[rdv.ID], thing)
			peers[rdv.ID] = rdv
		case !self:
			ans.Refused = append(ans.Refused, thing) // forwarded once already
		default:
			switch ok, fresh := l.leases.grant(thing, holder, until); {
			case !ok:
				ans.Refused = append(ans.Refused, thing)
			case fresh:
				ans.New = append(ans.New, thing)
			}
		}
	}
	// The sender sees the ring differently (a join or leave in progress):
	// its request goes on, once, to the rendezvous this node finds.
	for id, things := range elsewhere {
		var fw subscribeAnswer
		if err := l.t.node.CallOp(ctx, peers[id], opSubscribe, subscribeBody{Things: things, Holder: &holder}, &fw); err != nil {
			ans.Refused = append(ans.Refused, things...)
			continue
		}
		ans.Refused = append(ans.Refused, fw.Refused...)
		ans.New = append(ans.New, fw.New...)
	}
	return ans, nil
}

// handlePublish forwards an entry node's updates of a Thing to the nodes
// holding leases (not the entry node, which delivered them itself), and
// answers once they have all answered or timed out, so that the entry
// node's next publication comes after. Verified: the sender is a member;
// the Thing ID is valid; this node is the Thing's rendezvous (else it
// forwards once to the one it finds, for an entry node with an old view).
// The records themselves are checked by each receiver (handleNotify).
func (l *live) handlePublish(ctx context.Context, from node.Peer, raw json.RawMessage) (any, error) {
	var b publishBody
	if err := node.DecodeOp(opPublish, raw, &b); err != nil {
		return nil, err
	}
	return l.publishAt(ctx, from, b)
}

// publishAt is handlePublish of a decoded body; the entry node calls it
// directly when it is the Thing's rendezvous itself (no encoding of the
// records for a call to itself).
func (l *live) publishAt(ctx context.Context, from node.Peer, b publishBody) (any, error) {
	if err := ledger.ValidThingID(b.Thing); err != nil {
		return nil, node.Refuse(node.CodeRefused, "%v", err)
	}
	if len(b.Records) == 0 || len(b.Records) > publishBatch {
		return nil, node.Refuse(node.CodeRefused, "%d records in one publication; 1 to %d", len(b.Records), publishBatch)
	}
	if !b.Forwarded {
		b.Entry = from.ID
	}
	rdv, self, err := l.rendezvousOf(ctx, b.Thing)
	if err != nil {
		return nil, node.Refuse(node.CodeUnavailable, "finding the rendezvous of %s: %v", b.Thing, err)
	}
	if !self {
		if b.Forwarded {
			return nil, node.Refuse(node.CodeMisrouted, "this node is not the rendezvous of %s", b.Thing)
		}
		// Leases this node still holds from before the ring changed get
		// the updates too, until their holders renew with the new
		// rendezvous (receivers drop the duplicates by sequence).
		if holders := l.leases.holders(b.Thing, b.Entry, time.Now()); len(holders) > 0 {
			l.notifyAll(ctx, holders, b) // best effort: these leases are on their way out
		}
		b.Forwarded = true
		var ans publishAnswer
		err := l.t.node.CallOp(ctx, rdv, opPublish, b, &ans)
		return ans, err
	}
	holders := l.leases.holders(b.Thing, b.Entry, time.Now())
	if failed := l.notifyAll(ctx, holders, b); failed > 0 {
		// The entry node publishes again; the nodes that had it drop the
		// copy by sequence.
		return nil, node.Refuse(node.CodeUnavailable, "%d of %d observing nodes did not take the updates of %s", failed, len(holders), b.Thing)
	}
	return publishAnswer{Subscribers: len(holders)}, nil
}

// notifyAll sends b to every holder at once (a failed call is tried again:
// a duplicate is dropped by sequence), drops the leases of those that have
// no subscription left, and returns how many holders failed every attempt.
func (l *live) notifyAll(ctx context.Context, holders []node.Peer, b publishBody) int {
	var failed atomic.Int64
	var wg sync.WaitGroup
	for _, p := range holders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			for attempt := 0; attempt < notifyAttempts && ctx.Err() == nil; attempt++ {
				var ans notifyAnswer
				cctx, cancel := context.WithTimeout(ctx, notifyTimeout)
				err = l.t.node.CallOp(cctx, p, opNotify, b, &ans)
				cancel()
				if err == nil {
					if ans.Unwanted {
						l.leases.drop(b.Thing, p.ID)
					}
					return
				}
			}
			failed.Add(1)
			l.stats.notNotified.Add(uint64(len(b.Records)))
			l.t.log.Info("updates not delivered to an observing node", zap.String("peer", p.Addr), zap.String("thing", b.Thing), zap.Error(err))
		}()
	}
	wg.Wait()
	return int(failed.Load())
}

// handleNotify delivers a rendezvous' forwarded updates to this node's
// subscriptions. Verified: the sender is a member; each record parses,
// verifies on its own (signature, H_DATA, txID: ledger CheckSelf) and is of
// the Thing named; records that do not are dropped and counted. Duplicates
// and retries are dropped by the hub (entry, epoch, sequence; txID).
func (l *live) handleNotify(ctx context.Context, from node.Peer, raw json.RawMessage) (any, error) {
	var b publishBody
	if err := node.DecodeOp(opNotify, raw, &b); err != nil {
		return nil, err
	}
	if len(b.Records) > publishBatch {
		return nil, node.Refuse(node.CodeRefused, "%d records in one notification; at most %d", len(b.Records), publishBatch)
	}
	if !l.hub.wants(b.Thing) {
		return notifyAnswer{Unwanted: true}, nil
	}
	ups := make([]Update, 0, len(b.Records))
	seqs := make([]uint64, 0, len(b.Records))
	for i, rec := range b.Records {
		u, err := checkedUpdate(rec, b.Thing)
		if err != nil {
			l.stats.badNotices.Add(1)
			l.t.log.Warn("a notification's record does not check", zap.String("from", from.Addr), zap.Error(err))
			continue
		}
		ups = append(ups, u)
		seqs = append(seqs, b.Seq+uint64(i))
	}
	if len(ups) > 0 {
		l.latest.put(ups[len(ups)-1], time.Now())
	}
	src := source{node: b.Entry, epoch: b.Epoch}
	wanted, behind := true, false
	// Runs of consecutive sequences go to the hub together (a record that
	// did not check leaves a gap: caught up from the ring).
	for i := 0; i < len(ups); {
		j := i + 1
		for j < len(ups) && seqs[j] == seqs[j-1]+1 {
			j++
		}
		var lag bool
		wanted, lag = l.hub.deliver(b.Thing, &src, seqs[i], ups[i:j])
		behind = behind || lag
		i = j
	}
	if behind {
		l.kickCatchUp()
	}
	return notifyAnswer{Unwanted: !wanted}, nil
}

// checkedUpdate parses a record from a peer and checks it on its own.
func checkedUpdate(raw []byte, thing string) (Update, error) {
	r, err := ledger.ParseRecord(raw)
	if err != nil {
		return Update{}, err
	}
	if err := r.CheckSelf(raw); err != nil {
		return Update{}, err
	}
	if r.Thing != thing {
		return Update{}, fmt.Errorf("a record of %q in a notification of %q", r.Thing, thing)
	}
	return Update{Thing: r.Thing, TxID: r.TxID, Time: r.Time, Value: r.Data, Record: raw}, nil
}
