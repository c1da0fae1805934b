package wot

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

// Leases (fanout.go): the table a rendezvous keeps, and the subscriber's
// side: asking for leases, renewing them, and catching up from the ring.

// leaseTable is what a rendezvous keeps: for each Thing, the nodes that
// observe it and until when.
type leaseTable struct {
	mu      sync.Mutex
	byThing map[string]map[ledger.Key]lease
	perPeer map[ledger.Key]int
	total   int
}

type lease struct {
	peer  node.Peer
	until time.Time
}

// grant adds or renews p's lease of thing (fresh: it had none); ok false
// when over the bounds.
func (lt *leaseTable) grant(thing string, p node.Peer, until time.Time) (ok, fresh bool) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if lt.byThing == nil {
		lt.byThing, lt.perPeer = map[string]map[ledger.Key]lease{}, map[ledger.Key]int{}
	}
	ls := lt.byThing[thing]
	old, renew := ls[p.ID]
	fresh = !renew || time.Now().After(old.until) // an expired lease not swept yet
	if !renew {
		if lt.total >= leasesTotal || lt.perPeer[p.ID] >= leasesPerPeer {
			return false, false
		}
		if ls == nil {
			ls = map[ledger.Key]lease{}
			lt.byThing[thing] = ls
		}
		lt.perPeer[p.ID]++
		lt.total++
	}
	ls[p.ID] = lease{peer: p, until: until}
	return true, fresh
}

// holders lists the peers with a live lease of thing, but not except.
func (lt *leaseTable) holders(thing string, except ledger.Key, now time.Time) []node.Peer {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	var out []node.Peer
	for id, ls := range lt.byThing[thing] {
		if now.After(ls.until) {
			lt.dropLocked(thing, id)
			continue
		}
		if id != except {
			out = append(out, ls.peer)
		}
	}
	return out
}

func (lt *leaseTable) drop(thing string, id ledger.Key) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.dropLocked(thing, id)
}

func (lt *leaseTable) dropLocked(thing string, id ledger.Key) {
	ls := lt.byThing[thing]
	if _, ok := ls[id]; !ok {
		return
	}
	delete(ls, id)
	if len(ls) == 0 {
		delete(lt.byThing, thing)
	}
	lt.total--
	if lt.perPeer[id]--; lt.perPeer[id] <= 0 {
		delete(lt.perPeer, id)
	}
}

// sweep drops expired leases.
func (lt *leaseTable) sweep(now time.Time) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	for thing, ls := range lt.byThing {
		for id, l := range ls {
			if now.After(l.until) {
				lt.dropLocked(thing, id)
			}
		}
	}
}

// register asks the rendezvous of each Thing for a lease, grouped by
// rendezvous (one message each), and returns the Things whose lease is new
// (not a renewal).
func (l *live) register(ctx context.Context, things []string) ([]string, error) {
	groups := map[ledger.Key][]string{}
	peers := map[ledger.Key]node.Peer{}
	var errs []error
	var fresh []string
	for _, th := range things {
		p, err := l.t.node.Owner(ctx, rendezvousKey(th))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		groups[p.ID] = append(groups[p.ID], th)
		peers[p.ID] = p
	}
	for id, ths := range groups {
		for len(ths) > 0 {
			n := min(len(ths), subscribeBatch)
			var ans subscribeAnswer
			if err := l.t.node.CallOp(ctx, peers[id], opSubscribe, subscribeBody{Things: ths[:n]}, &ans); err != nil {
				errs = append(errs, err)
			} else {
				fresh = append(fresh, ans.New...)
				if len(ans.Refused) > 0 {
					errs = append(errs, fmt.Errorf("rendezvous %s refused leases of %d Things", peers[id].Addr, len(ans.Refused)))
				}
			}
			ths = ths[n:]
		}
	}
	return fresh, errors.Join(errs...)
}

// renewLoop renews this node's leases and sweeps the expired ones it holds
// as rendezvous, every renewEvery, and runs the catch-ups the hub asks for
// (kickCatchUp), until the layer closes. A lease that comes back new (the
// rendezvous moved, restarted, or let it expire while this node was
// unreachable) may have missed updates: the Thing's subscriptions catch up
// from the ring too.
func (l *live) renewLoop() {
	defer l.wg.Done()
	tk := time.NewTicker(l.renewEvery)
	defer tk.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-l.kick:
		case <-tk.C:
			l.renew()
		}
		pending := false
		for thing, since := range l.hub.behindThings() {
			ctx, cancel := context.WithTimeout(l.ctx, catchUpTimeout)
			pending = !l.catchUp(ctx, thing, since) || pending
			cancel()
		}
		if pending {
			time.AfterFunc(catchUpRetry, l.kickCatchUp)
		}
	}
}

// catchUpRetry is how soon a catch-up that waits for missing records reads
// the ring again.
const catchUpRetry = 500 * time.Millisecond

// renew renews the leases of the Things observed here.
func (l *live) renew() {
	l.leases.sweep(time.Now())
	things := l.hub.observed()
	if len(things) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, renewTimeout)
	defer cancel()
	fresh, err := l.register(ctx, things)
	if err != nil && l.ctx.Err() == nil {
		l.t.log.Info("renewing observation leases", zap.Error(err))
	}
	for _, th := range fresh {
		l.hub.markBehind(th)
	}
}

// kickCatchUp has renewLoop run the pending catch-ups now.
func (l *live) kickCatchUp() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// catchUpMax bounds the records one catch-up delivers.
const catchUpMax = 1024

// catchUp delivers to a Thing's subscriptions the records written after
// since that they did not get, read from the ring (RecordsByThing: a
// ring-wide read), in time order, then the live updates held meanwhile
// (see hub.catchUp for the waits). If the ring cannot be read, the missing
// updates are given up (counted).
func (l *live) catchUp(ctx context.Context, thing string, since int64) (done bool) {
	recs, err := l.t.node.RecordsByThing(ctx, thing, since+1, 0, catchUpMax)
	if err != nil {
		l.stats.notCaughtUp.Add(1)
		l.t.log.Info("observers of a Thing could not catch up", zap.String("thing", thing), zap.Error(err))
		l.hub.catchUp(thing, since, nil, true)
		return true
	}
	ups := make([]Update, 0, len(recs))
	for _, raw := range recs {
		if u, err := updateOf(raw); err == nil {
			ups = append(ups, u)
		}
	}
	n, done := l.hub.catchUp(thing, since, ups, false)
	l.stats.caughtUp.Add(uint64(n))
	return done
}
