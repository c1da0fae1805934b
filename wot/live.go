package wot

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/semaphore"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

// live is the layer's part that moves new values: writes (Send), the
// updates they make, local subscriptions (hub.go), the newest value per
// Thing (latest.go), observation across the ring (fanout.go), presence, and
// the HTTP and WebSocket fronts (properties.go, devices.go).
type live struct {
	t      *Things
	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the layer's goroutines, waited for by close

	renewEvery time.Duration // how often leases are renewed (renewInterval)

	kick      chan struct{} // a catch-up is pending (fanout.go renewLoop)
	lastStamp atomic.Int64  // the last reading time this node stamped (stamp)
	hub       hub
	latest    latestCache
	pub       publisher
	leases    leaseTable
	stats     fanoutStats
	pres      presence
	conns     connSet // open WebSocket connections, closed by close

	observers  atomic.Int64        // SSE streams and long-polls (properties.go)
	frameBytes *semaphore.Weighted // device frames read, not yet stored (devices.go)
}

func (l *live) init(t *Things) error {
	l.t = t
	l.kick = make(chan struct{}, 1)
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.pub.l = l
	l.renewEvery = renewInterval(t.node.Profile())
	l.frameBytes = semaphore.NewWeighted(frameBudget)
	t.node.HandleOp(opSubscribe, l.handleSubscribe)
	t.node.HandleOp(opPublish, l.handlePublish)
	t.node.HandleOp(opNotify, l.handleNotify)
	// Every reading that enters through this node, whichever front took it
	// (POST /api/v1/records too), is published from here.
	t.node.OnPut(l.entered)
	l.wg.Add(1)
	go l.renewLoop()
	return nil
}

// close ends the subscriptions and connections and waits for the layer's
// goroutines. Updates still queued for the rendezvous are dropped.
func (l *live) close() {
	l.cancel()
	l.pub.close()
	l.conns.closeAll()
	l.hub.closeAll()
	l.wg.Wait()
}

// liveRoutes mounts the property (properties.go) and device (devices.go) paths.
func (t *Things) liveRoutes(mux *http.ServeMux) {
	t.propertyRoutes(mux)
	t.deviceRoutes(mux)
}

// entered is the node's OnPut hook: the records of a put through this node,
// in order, become updates for this node's subscriptions at once (the local
// short cut), for the newest-value cache, and for the Things' rendezvous.
// It never blocks (the publication queues are bounded and drop).
func (l *live) entered(rcs []node.Receipt) {
	if l.ctx.Err() != nil {
		return
	}
	var byThing map[string][]Update
	var order []string
	for _, rc := range rcs {
		u, err := updateOf(rc.Record)
		if err != nil {
			l.t.log.Warn("a put's receipt has no readable record", zap.Stringer("txID", rc.TxID), zap.Error(err))
			continue
		}
		if byThing == nil {
			byThing = map[string][]Update{}
		}
		if _, ok := byThing[u.Thing]; !ok {
			order = append(order, u.Thing)
		}
		byThing[u.Thing] = append(byThing[u.Thing], u)
	}
	for _, thing := range order {
		ups := byThing[thing]
		l.latest.put(ups[len(ups)-1], time.Now())
		l.hub.deliver(thing, nil, 0, ups)
		l.pub.enqueue(thing, ups)
	}
}

// updateOf makes the update of a record this node has (its own, or checked
// by ringledger).
func updateOf(raw []byte) (Update, error) {
	r, err := ledger.ParseKnown(raw)
	if err != nil {
		return Update{}, err
	}
	return Update{Thing: r.Thing, TxID: r.TxID, Time: r.Time, Value: r.Data, Record: raw}, nil
}

// Send: see Devices. Each value is checked as the ledger will (one JSON
// value, not null, at most ledger.MaxDataBytes, nesting bounded) before
// anything is written: bad input returns an error wrapping ErrBadInput and
// stores nothing. The updates are published by the node's OnPut hook
// (entered), in order, before Send returns.
func (t *Things) Send(ctx context.Context, thing string, values []json.RawMessage) ([]node.Receipt, error) {
	if err := ledger.ValidThingID(thing); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	if len(values) == 0 {
		return nil, fmt.Errorf("%w: no reading", ErrBadInput)
	}
	readings := make([]ledger.Reading, len(values))
	for i, v := range values {
		if err := checkValue(v); err != nil {
			return nil, fmt.Errorf("%w: reading %d: %v", ErrBadInput, i, err)
		}
		r, err := readingOf(thing, v)
		if err != nil {
			return nil, fmt.Errorf("reading %d: %w", i, err)
		}
		readings[i] = r
	}
	if err := t.ensureThing(ctx, thing, readings[0].Data); err != nil {
		return nil, err
	}
	return t.put(ctx, readings)
}

// put stores readings already checked (Send, and a device connection's
// resend of stamped readings). It stamps them itself (stamp), each with its
// own time, so that a Thing's records read back from the ring in time
// order come in the order they were written.
func (t *Things) put(ctx context.Context, readings []ledger.Reading) ([]node.Receipt, error) {
	if err := t.live.stamp(readings); err != nil {
		return nil, err
	}
	rcs, err := t.node.Put(ctx, readings, node.PutOptions{})
	var ie *ledger.InputError
	if errors.As(err, &ie) {
		return nil, fmt.Errorf("%w: reading %d: %v", ErrBadInput, ie.Index, ie.Err)
	}
	return rcs, err
}

// stamp gives the readings not stamped yet a salt and strictly increasing
// times (one nanosecond apart, after every time this node stamped before):
// node.Put would give a batch one time, and records of equal time come
// back from the ring in txID order, not in the order written.
func (l *live) stamp(readings []ledger.Reading) error {
	var fresh []int
	for i, r := range readings {
		if r.Salt == nil {
			fresh = append(fresh, i)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	now := time.Now().UnixNano()
	var base int64
	for {
		last := l.lastStamp.Load()
		base = max(now, last+1)
		if l.lastStamp.CompareAndSwap(last, base+int64(len(fresh))-1) {
			break
		}
	}
	if err := ledger.StampReadings(readings, time.Unix(0, base), rand.Reader); err != nil {
		return err
	}
	for k, i := range fresh {
		readings[i].Time = base + int64(k)
	}
	return nil
}

// checkValue checks one reading's JSON as the ledger does.
func checkValue(v json.RawMessage) error {
	if _, err := ledger.CanonicalData(v); err != nil {
		return err
	}
	if string(trimSpace(v)) == "null" {
		return errors.New("a reading must not be null")
	}
	return nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// registerTimeout bounds the lease request of a Thing's first subscription.
const registerTimeout = 3 * time.Second

// Subscribe: see Devices. The Thing's first subscription on this node
// registers a lease with its rendezvous before Subscribe returns (within
// registerTimeout; if that fails, local writes are still delivered and the
// next renewal retries), so that writes entering elsewhere after Subscribe
// returns reach it.
func (t *Things) Subscribe(thing string) (Subscription, error) {
	if err := ledger.ValidThingID(thing); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	l := &t.live
	if l.ctx.Err() != nil {
		return nil, errors.New("the Web of Things layer is closed")
	}
	s, first, err := l.hub.add(thing)
	if err != nil {
		return nil, err
	}
	if first {
		ctx, cancel := context.WithTimeout(l.ctx, registerTimeout)
		defer cancel()
		if _, err := l.register(ctx, []string{thing}); err != nil {
			t.log.Info("observation lease not registered yet; the next renewal retries", zap.String("thing", thing), zap.Error(err))
		}
	}
	return s, nil
}

// latestTimeout bounds a cache miss's ring-wide read.
const latestTimeout = 10 * time.Second

// Latest: see Devices. It answers from the cache of the newest update per
// Thing this node has seen, when the Thing is observed here (notifications
// keep it fresh) or the value was known to be the newest less than
// latestFresh ago; else it asks the ring for the newest (newestOnRing: one
// lookup and one get) and caches what it finds.
func (t *Things) Latest(ctx context.Context, thing string) (Update, error) {
	if err := ledger.ValidThingID(thing); err != nil {
		return Update{}, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	now := time.Now()
	cached, checked, ok, none := t.live.latest.get(thing, now)
	if ok && (now.Sub(checked) < latestFresh || t.live.hub.wants(thing)) {
		return cached, nil
	}
	if none {
		return Update{}, ErrNoValue
	}
	ctx, cancel := context.WithTimeout(ctx, latestTimeout)
	defer cancel()
	u, err := t.newestOnRing(ctx, thing)
	switch {
	case ok && (err != nil || u.Time < cached.Time):
		// The ring has nothing newer (or cannot say now): the cached
		// value is still the newest this node knows.
		if err == nil || errors.Is(err, ErrNoValue) {
			t.live.latest.put(cached, now)
		}
		return cached, nil
	case errors.Is(err, ErrNoValue):
		t.live.latest.putNone(thing, now)
	case err == nil:
		t.live.latest.put(u, now)
	}
	return u, err
}

// Present: see Devices. Presence is this node's: a status watcher sees the
// devices connected to the node it is connected to.
func (t *Things) Present(thing string) func() {
	return t.live.pres.enter(thing)
}

var _ Devices = (*Things)(nil)

// LiveStats are the counters of live values on this node, for metrics.
type LiveStats struct {
	Subscriptions int    // open subscriptions (viewers, SSE, long-polls, CoAP observers)
	NotPublished  uint64 // updates not sent to their rendezvous (queues full, rendezvous unreachable)
	NotNotified   uint64 // updates this node, as rendezvous, failed to deliver to an observing node
	CaughtUp      uint64 // updates delivered late, read from the ring after a gap
	NotCaughtUp   uint64 // catch-ups that failed (what was missing was given up)
	BadNotices    uint64 // records in notifications that did not check
}

// LiveStats returns the counters of live values.
func (t *Things) LiveStats() LiveStats {
	l := &t.live
	l.hub.mu.Lock()
	subs := l.hub.count
	l.hub.mu.Unlock()
	return LiveStats{Subscriptions: subs, NotPublished: l.stats.notPublished.Load(), NotNotified: l.stats.notNotified.Load(),
		CaughtUp: l.stats.caughtUp.Load(), NotCaughtUp: l.stats.notCaughtUp.Load(), BadNotices: l.stats.badNotices.Load()}
}
