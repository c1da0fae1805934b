package ringledger

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/internal/group"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/store"
)

// DefaultReplicas is k, the number of copies of each entry (owner included).
const DefaultReplicas = 3

// maxPayload bounds the data of one MESSAGE: the rpc codec refuses envelopes
// over 64 KiB, and CoAP carries smaller ones better.
const maxPayload = 40 << 10

// Config says what a node's share of the distributed ledger works with.
type Config struct {
	Self         Peer           // this node: its ID and the address clients reach it at
	Ledger       *ledger.Ledger // signs this node's records, checks and stores peers'
	Store        *store.Store   // read for answers and repair; the ledger writes
	Replicas     int            // k, copies of each entry (owner included); 0: DefaultReplicas
	SyncInterval time.Duration  // how often a repair round runs at the latest; 0: 5 s
	Log          *zap.Logger
	// Now is the clock (time.Now when nil): range-cache ages, retry pacing.
	Now func() time.Time
	// OnRecord, when set, is called for each record this node signs as its
	// owner, once it is durable here, with its receipt and stored bytes.
	// It runs on the write path, before the put is answered: it must be
	// quick (hand the record to a queue) and must not call back into the
	// ledger. A resent reading the owner already holds is reported again.
	OnRecord func(Receipt, []byte)
	// Members, when set, is checked for every peer and every record signer
	// (members.go); nil trusts every peer the transport delivers (tests).
	Members Members
	// Check, when set, is asked about every batch of readings this node is
	// about to sign as their owner (whichever node they entered through),
	// before anything is stored: the Web of Things checks there that a Thing
	// declaring a device key gets only readings its device signed. A
	// *ledger.InputError refuses the reading for good (the client's error);
	// any other error fails the put, which the entry node retries.
	Check func(context.Context, []ledger.Reading) error
}

// check runs Config.Check on readings about to be signed.
func (d *Ledger) check(ctx context.Context, rs []ledger.Reading) error {
	if d.cfg.Check == nil {
		return nil
	}
	return d.cfg.Check(ctx, rs)
}

// recorded hands OnRecord the records this node just signed and stored;
// records of other branches (a resend found as another owner's copy) are
// not this node's.
func (d *Ledger) recorded(lrs []ledger.Receipt, self Peer, replicas []Peer) {
	for _, r := range lrs {
		if d.cfg.OnRecord != nil && r.Block.Branch == self.ID {
			d.cfg.OnRecord(Receipt{TxID: r.TxID, Key: r.Key, Owner: self, Replicas: replicas,
				Block: BlockRef{Branch: r.Block.Branch, No: r.Block.No, Hash: r.Block.Hash}}, r.Record)
		}
	}
}

// Ledger is one node's share of the distributed ledger: it routes readings
// to their owners, signs and stores the ones this node owns, replicates them,
// keeps the txID pointer index and repairs copies. Before Attach gives it a
// ring it is a ring of one: every reading is this node's own.
type Ledger struct {
	cfg  Config
	k    int
	ring Ring // set once by Attach; read only once attached is set
	// attached is set once the ring is: before, the ledger is a ring of one
	// and refuses peers' messages.
	attached      atomic.Bool
	ledger        *ledger.Ledger
	store         *store.Store
	ranges        rangeCache
	repl          replicator
	ptrs          pointerWriter
	extremesLocks extremesLocks
	indexWrites   group.Serial[*indexWrite] // storeIndex writes at extremes positions
	rebuild       historyRebuild
	leaving       atomic.Bool
	log           *zap.Logger

	// hadReplicas is set once the node has seen k-1 successors to
	// replicate to. From then on a successor list shorter than that means
	// failures or a partition, not a ring smaller than k (see
	// ownerPutReadings).
	hadReplicas atomic.Bool

	// cur caches the ring state until the next ring event: a put looks at
	// the node's range once per key, and the driver answers State on its
	// loop goroutine. stale is set by RingEvent.
	stale atomic.Bool
	// changed wakes the repair loop after a ring event.
	changed chan struct{}
	cur     struct {
		sync.Mutex
		at time.Time
		st chord.State
	}

	members struct {
		sync.Mutex
		at    time.Time
		peers []chord.Peer
	}

	// Surplus copies (surplus.go): the ranges owners assigned this node, when
	// the ring around it last changed, when it was attached, and when its last
	// complete repair round started.
	assigned   assignments
	changedAt  atomic.Int64 // unix ns
	attachedAt time.Time
	repairedAt atomic.Int64 // unix ns

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// life guards closed: once Close has begun no goroutine is started (a
	// peer's message may still arrive), so no WaitGroup.Add races its Wait.
	life   sync.Mutex
	closed bool

	stats counters
}

// counters are the distributed ledger's counters (see Stats).
type counters struct {
	forwarded, owned, replicasIn, replicasOut, pointerFails atomic.Uint64
	rejected, syncRounds, pulled, pushed, blocksIn, dropped atomic.Uint64
	notMember, badAnswers, historyFails, indexFallbacks     atomic.Uint64
	tampered                                                atomic.Uint64
	replPending, ptrPending, histPending                    atomic.Int64
}

// Stats are counters of the node's part in the distributed ledger.
type Stats struct {
	Replicas     int    `json:"replicas"`     // k
	Forwarded    uint64 `json:"forwarded"`    // readings this node sent on to their owner
	Owned        uint64 `json:"owned"`        // readings this node signed as their owner
	ReplicasIn   uint64 `json:"replicasIn"`   // records stored as a replica
	ReplicasOut  uint64 `json:"replicasOut"`  // records acknowledged by replicas
	ReplPending  int64  `json:"replPending"`  // records waiting to reach a replica
	PtrPending   int64  `json:"ptrPending"`   // txID pointers waiting to reach their owner
	PointerFails uint64 `json:"pointerFails"` // txID pointers that could not be written
	HistPending  int64  `json:"histPending"`  // history entries waiting to reach their owner
	HistoryFails uint64 `json:"historyFails"` // history entries that could not be written (the range's index is rebuilt)
	// HistoryFallbacks counts Thing history queries answered by asking
	// every node, because the holders of a bucket did not answer.
	HistoryFallbacks uint64 `json:"historyFallbacks"`
	Rejected         uint64 `json:"rejected"`      // peer messages refused as bad input
	SyncRounds       uint64 `json:"syncRounds"`    // anti-entropy rounds
	Pulled           uint64 `json:"pulled"`        // entries taken from peers by anti-entropy or handoff
	Pushed           uint64 `json:"pushed"`        // entries given to peers by anti-entropy or handoff
	BlocksFetched    uint64 `json:"blocksFetched"` // foreign blocks stored
	Dropped          uint64 `json:"dropped"`       // surplus copies dropped (no longer among an entry's k holders)
	NotMember        uint64 `json:"notMember"`     // messages and records refused: sender or signer not a member (then)
	BadAnswers       uint64 `json:"badAnswers"`    // peers' answers refused: receipts, ranges, records that do not check
	// Tampered counts reads of records in this node's own store whose bytes no
	// longer verify (stored.go): each was refused, never served.
	Tampered uint64 `json:"tampered"`
}

// Stats returns the counters.
func (d *Ledger) Stats() Stats {
	c := &d.stats
	return Stats{Replicas: d.k, Forwarded: c.forwarded.Load(), Owned: c.owned.Load(),
		ReplicasIn: c.replicasIn.Load(), ReplicasOut: c.replicasOut.Load(), ReplPending: c.replPending.Load(), PtrPending: c.ptrPending.Load(),
		PointerFails: c.pointerFails.Load(), Rejected: c.rejected.Load(), SyncRounds: c.syncRounds.Load(),
		Pulled: c.pulled.Load(), Pushed: c.pushed.Load(), BlocksFetched: c.blocksIn.Load(), Dropped: c.dropped.Load(),
		NotMember: c.notMember.Load(), BadAnswers: c.badAnswers.Load(), Tampered: c.tampered.Load(),
		HistPending: c.histPending.Load(), HistoryFails: c.historyFails.Load(), HistoryFallbacks: c.indexFallbacks.Load()}
}

// New returns a node's share of the distributed ledger, a ring of one until
// Attach.
func New(cfg Config) *Ledger {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = 5 * time.Second
	}
	d := &Ledger{cfg: cfg, k: cfg.Replicas, ledger: cfg.Ledger, store: cfg.Store, log: cfg.Log,
		changed: make(chan struct{}, 1)}
	if d.k <= 0 {
		d.k = DefaultReplicas
	}
	d.repl.d = d
	d.ptrs.d = d
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.loadHistoryState()
	return d
}

// Attach gives the ledger its ring and starts the background work of a ring
// member (repair, block catch-up); call it once, before the ring hands it
// messages.
func (d *Ledger) Attach(r Ring) {
	d.ring = r
	d.attachedAt = d.now()
	d.attached.Store(true)
	d.spawn(&d.wg, d.syncLoop)
}

// Close ends the background work and waits for it.
func (d *Ledger) Close() {
	d.life.Lock()
	d.closed = true
	d.life.Unlock()
	d.cancel()
	d.wg.Wait()
	d.repl.wait()
}

// spawn runs f on a goroutine counted by wg, unless Close has begun.
func (d *Ledger) spawn(wg *sync.WaitGroup, f func()) bool {
	d.life.Lock()
	defer d.life.Unlock()
	if d.closed {
		return false
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		f()
	}()
	return true
}

// HadReplicas reports whether this node has seen its k-1 replicas since it
// started (from then on it refuses wait=replicas with fewer).
func (d *Ledger) HadReplicas() bool { return d.hadReplicas.Load() }

// K is the number of copies of each entry, owner included.
func (d *Ledger) K() int { return d.k }

func (d *Ledger) now() time.Time { return d.cfg.Now() }

// self is this node's ring ID.
func (d *Ledger) self() chord.ID { return d.cfg.Self.ID }

// Ring is the node's live view of its Chord ring and its way to the other
// nodes (chord/driver.Driver in the daemon). The driver must hand the
// application MESSAGEs it receives to Ledger.HandleMessage, and the core's
// events to Ledger.RingEvent.
type Ring interface {
	State() chord.State
	Walk(ctx context.Context, limit int) ([]chord.Peer, error)
	// Lookup finds successor(key).
	Lookup(ctx context.Context, key chord.ID) (owner chord.Peer, hops int, err error)
	// Call sends an application MESSAGE and returns its reply's data.
	Call(ctx context.Context, p chord.Peer, data json.RawMessage) (json.RawMessage, error)
	// Leave tells the neighbours this node goes.
	Leave(ctx context.Context) error
}
