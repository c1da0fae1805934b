package node

import (
	"sync"

	"github.com/flownode/flownode/ledger"
)

// QueryKind says which read a Query was.
type QueryKind string

// The reads a node answers for clients.
const (
	QueryRecord QueryKind = "record" // Record or LocalRecord: one record by txID
	QueryKey    QueryKind = "key"    // RecordsByKey: the records under a data key
	QueryThing  QueryKind = "thing"  // RecordsByThing(NewestFirst): a Thing's records in a time range
	QueryLatest QueryKind = "latest" // LatestByThing: a Thing's newest record
)

// Query is one read the node answered for a client (Config.OnQuery): what was
// asked, and how it went.
type Query struct {
	Kind  QueryKind
	TxID  ledger.Hash // QueryRecord
	Local bool        // QueryRecord: this node's store only (LocalRecord)
	Key   ledger.Key  // QueryKey
	Thing string      // QueryThing, with From ≤ time < To (To 0: no bound); QueryLatest
	From  int64
	To    int64
	// NewestFirst: QueryThing asked newest first.
	NewestFirst bool
	Limit       int   // QueryKey, QueryThing: the most records asked for
	Found       int   // records answered
	Err         error // nil, ErrNotFound, or why the read failed
}

// hookQueue is how many hook calls may wait for the hook goroutine.
const hookQueue = 1024

// hooks calls Config.OnRecord and Config.OnQuery on one goroutine of their
// own, in the order of the events, through a bounded queue.
//
// Records are signed on the write path (ringledger calls OnRecord before the
// put is answered, on a peer's RPC goroutine when the entry node is another),
// so the user's hook never runs there: a slow hook would delay receipts and
// make entry nodes resend. The queue is bounded to keep a gateway's memory
// bounded; when a hook falls that far behind, the write waits for room rather
// than dropping an event, so a hook slower than the node's ingest slows the
// node's writes to its own pace instead of losing records silently.
type hooks struct {
	onRecord func(Receipt, []byte)
	onQuery  func(Query)
	q        chan func()
	quit     chan struct{}
	done     chan struct{}
	stop     sync.Once
}

func newHooks(onRecord func(Receipt, []byte), onQuery func(Query)) *hooks {
	h := &hooks{onRecord: onRecord, onQuery: onQuery}
	if onRecord == nil && onQuery == nil {
		return h
	}
	h.q = make(chan func(), hookQueue)
	h.quit = make(chan struct{})
	h.done = make(chan struct{})
	go h.run()
	return h
}

func (h *hooks) run() {
	defer close(h.done)
	for {
		select {
		case f := <-h.q:
			f()
		case <-h.quit:
			for {
				select {
				case f := <-h.q:
					f()
				default:
					return
				}
			}
		}
	}
}

// post queues f, unless the node is closing.
func (h *hooks) post(f func()) {
	select {
	case h.q <- f:
	case <-h.quit:
	}
}

// record is ringledger's OnRecord; nil when the user set none.
func (h *hooks) record() func(Receipt, []byte) {
	if h.onRecord == nil {
		return nil
	}
	return func(rc Receipt, rec []byte) { h.post(func() { h.onRecord(rc, rec) }) }
}

// query reports a read answered with found records and err.
func (h *hooks) query(q Query, found int, err error) {
	if h.onQuery == nil {
		return
	}
	q.Found, q.Err = found, err
	h.post(func() { h.onQuery(q) })
}

// close delivers what is queued and stops the goroutine; nothing may be
// posted after it but is dropped.
func (h *hooks) close() {
	if h.q == nil {
		return
	}
	h.stop.Do(func() { close(h.quit) })
	<-h.done
}
