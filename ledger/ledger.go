package ledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"go.uber.org/zap"

	"github.com/flownode/flownode/internal/group"
	"github.com/flownode/flownode/store"
)

// metaGenesis is the store's metadata entry holding the genesis the data dir belongs to.
const metaGenesis = "genesis"

// Config is what a Ledger needs. Now and Rand are injected so tests are deterministic.
type Config struct {
	Genesis  *Genesis
	Identity *Identity
	Store    *store.Store
	Proof    ProofCheck // the miner's rule; Extend checks its own blocks with it
	Log      *zap.Logger
	Now      func() time.Time // default time.Now
	Rand     io.Reader        // salts; default crypto/rand
}

// Reading is one device reading handed to the ledger.
//
// Time and Salt are the stamp of H_DATA. The node that takes the reading from a device
// (the entry node) stamps it with StampReadings, computes its ring key with ReadingKey
// and routes it to the key's owner, whose Append keeps the stamp, so that the record's
// hData and key are the ones the entry node routed by. Both are set or neither: a
// reading without a stamp is stamped by Append.
type Reading struct {
	Thing string
	Data  []byte // one JSON value
	Key   *Key   // optional ring key chosen by the client; H_DATA otherwise
	Time  int64  // unix nanoseconds when the reading was taken; 0: not stamped
	Salt  []byte // SaltSize random bytes; nil: not stamped
	// Resend marks a stamped reading that may have been appended before: a put
	// retried after its answer was lost, or one sent with an idempotency key.
	// Append then answers with the record already stored under the same key,
	// Thing and salt (see findResent) instead of signing a second one.
	Resend bool
	// Device, when set, is the device's own signature over the reading
	// (device.go). Append refuses a reading whose device signature does not
	// verify and keeps a valid one in the record. A reading with it is stamped
	// from the signature (StampReadings), so that a replay is the same record.
	Device *Device
	// canonical says Data is already in canonical form (Canonicalize), so
	// that the key and the record computed from it do not canonicalize it
	// again. Unexported: only this package vouches for it.
	canonical bool
}

// Canonicalize puts each reading's data in canonical form (RFC 8785) once, so
// that its key, its record and the checks of its receipt (ReadingKey, Append,
// SameData) do not transform it again: canonical JSON costs as much as the
// signature of a small reading. Data that is not valid is an *InputError
// with its index.
func Canonicalize(rs []Reading) error {
	for i := range rs {
		if rs[i].canonical {
			continue
		}
		d, err := CanonicalData(rs[i].Data)
		if err != nil {
			return &InputError{Index: i, Err: err}
		}
		rs[i].Data, rs[i].canonical = d, true
	}
	return nil
}

// CanonicalReadingData returns r's data in canonical form.
func CanonicalReadingData(r Reading) ([]byte, error) {
	if r.canonical {
		return r.Data, nil
	}
	return CanonicalData(r.Data)
}

// MaxClockSkew bounds how far the Time of a stamped reading may be from the owner's
// clock when Append signs it.
const MaxClockSkew = 10 * time.Minute

// stamped reports whether r carries a stamp, and refuses half of one.
func (r *Reading) stamped() (bool, error) {
	switch hasTime, hasSalt := r.Time != 0, r.Salt != nil; {
	case hasTime != hasSalt:
		return false, errors.New("reading time and salt must be set together or not at all")
	case !hasTime:
		return false, nil
	case len(r.Salt) != SaltSize:
		return false, fmt.Errorf("reading salt is %d bytes, want %d", len(r.Salt), SaltSize)
	}
	return true, nil
}

// MaxIdempotencyKey bounds an idempotency key's length.
const MaxIdempotencyKey = 200

// StampIdempotent stamps a reading that a client sent with an idempotency key
// (any node may receive it, any number of times): its salt is derived from the
// Thing and the key instead of drawn, its ring key too unless the client chose
// one, and it is marked Resend. Every copy is then routed to the same owner,
// which finds the first one's record by key, Thing and salt and answers with
// it: the reading is recorded once (Append, findResent).
func StampIdempotent(r *Reading, idempotencyKey string, now time.Time) error {
	if idempotencyKey == "" || len(idempotencyKey) > MaxIdempotencyKey {
		return fmt.Errorf("an idempotency key has 1 to %d characters", MaxIdempotencyKey)
	}
	if r.Time != 0 || r.Salt != nil {
		return errors.New("a reading with an idempotency key must not carry its own time and salt")
	}
	if r.Device != nil {
		return errors.New("a device-signed reading takes no idempotency key: it is idempotent by its signature (the same signed reading is stored once)")
	}
	h := sha256.New()
	h.Write([]byte("flownode/idempotency/v1\x00"))
	h.Write([]byte(r.Thing))
	h.Write([]byte{0})
	h.Write([]byte(idempotencyKey))
	sum := h.Sum(nil)
	r.Time, r.Salt, r.Resend = now.UnixNano(), sum[:SaltSize:SaltSize], true
	if r.Key == nil {
		k := Key(sha1.Sum(sum))
		r.Key = &k
	}
	return nil
}

// StampReadings sets the Time (now, the same for the whole batch) and Salt (from rnd, one
// read for the batch) of each reading that has neither; stamped readings keep theirs.
// A device-signed reading is stamped from its signature instead (stampDevice): salt and
// key derived, marked Resend. A reading with only one of the two, or with a salt of the
// wrong length, is an *InputError and nothing is changed.
func StampReadings(rs []Reading, now time.Time, rnd io.Reader) error {
	n := 0
	for i := range rs {
		ok, err := rs[i].stamped()
		if err != nil {
			return &InputError{Index: i, Err: err}
		}
		if !ok && rs[i].Device != nil {
			if err := stampDevice(&Reading{Thing: rs[i].Thing, Key: rs[i].Key, Device: rs[i].Device}, now); err != nil {
				return &InputError{Index: i, Err: err}
			}
		} else if !ok {
			n++
		}
	}
	for i := range rs {
		if rs[i].Salt == nil && rs[i].Device != nil {
			_ = stampDevice(&rs[i], now) // checked above
		}
	}
	if n == 0 {
		return nil
	}
	salts := make([]byte, SaltSize*n)
	if _, err := io.ReadFull(rnd, salts); err != nil {
		return fmt.Errorf("read salt: %w", err)
	}
	t := now.UnixNano()
	for i := range rs {
		if rs[i].Salt == nil {
			rs[i].Time, rs[i].Salt = t, salts[:SaltSize:SaltSize]
			salts = salts[SaltSize:]
		}
	}
	return nil
}

// ReadingKey is the ring key of a reading: its client-chosen Key when set (then a stamp
// is not needed), else H_DATA = DataHash(CanonicalData(Data), Time, Salt), which is what
// its owner's Append will compute. A reading without a stamp (see StampReadings) and no
// Key, with half a stamp or a salt of the wrong length, or whose data Append would
// refuse is an *InputError with Index 0. It does not check Time against a clock.
func ReadingKey(r Reading) (Key, error) {
	ok, err := r.stamped()
	if err == nil && r.Key != nil {
		return *r.Key, nil
	}
	if err == nil && !ok {
		err = errors.New("reading has no time and salt: stamp it first")
	}
	if err != nil {
		return Key{}, &InputError{Index: 0, Err: err}
	}
	data, err := CanonicalReadingData(r)
	if err != nil {
		return Key{}, &InputError{Index: 0, Err: err}
	}
	return DataHash(data, r.Time, r.Salt), nil
}

// Receipt says where a durable record is.
type Receipt struct {
	TxID   Hash
	Key    Key
	Block  BlockRef
	Record []byte // the stored canonical bytes
	Thing  string // the record's Thing and time, so that callers need not parse Record
	Time   int64
}

// InputError is a reading the ledger refuses; nothing was stored.
type InputError struct {
	Index int // position in the batch
	Err   error
}

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// Ledger is the node's own branch of virtual blocks and the records attached to them.
//
// Records attach to the branch's head block (genesis until the first block is mined),
// so ingestion never waits for mining. Extend, called by the miner, closes the head:
// it waits for records already attached to become durable, seals them with a Merkle
// root in the next block, and makes that block the head. The miner mines only while
// the head holds durable records (HasUnsealed, Arrivals): an idle node writes no blocks.
type Ledger struct {
	cfg Config

	mu      sync.Mutex
	cond    *sync.Cond
	head    head
	nextSeq uint64          // next position in the head block
	leaves  map[uint64]Hash // durable records of the head block, by position
	// positions of the head block by txID, reserved or durable: a stamped
	// reading appended again (an entry node retrying a put whose answer it
	// did not get) takes the same position and so becomes the same bytes,
	// instead of a second attachment of one record.
	positions map[Hash]position
	inflight  int  // appends attached to the head but not yet durable or failed
	sealing   bool // Extend is closing the head; new appends wait
	stats     Stats
	tree      *compact.Range // the own branch's tree (branchtree.go); Extend swaps it
	// arrivals gets a value when the head block, empty, gets its first durable record
	// (miner.Backlog): the miner, idle while there is nothing to seal, starts at once.
	arrivals chan struct{}

	ingests group.Serial[*ingestCall] // Ingests checked one at a time, written in groups

	refusedMu sync.Mutex
	refused   map[Key]string // branches whose new blocks Ingest refuses (refuse.go)

	resends resendLock // resent readings, one identity at a time
}

type head struct {
	no    uint64
	hash  Hash
	proof Hash // seed of the next block's draw: the genesis hash, then each block's proof
	time  int64
}

// Stats are running counters for metrics and the status page.
type Stats struct {
	Records  uint64 // appended since start
	Blocks   uint64 // mined since start
	HeadNo   uint64
	HeadHash Hash
	Unsealed int // durable records in the head block
}

// Open loads the branch head and refuses a data dir that belongs to another network.
func Open(cfg Config) (*Ledger, error) {
	if cfg.Genesis == nil || cfg.Identity == nil || cfg.Store == nil || cfg.Proof == nil {
		return nil, errors.New("ledger needs a genesis, an identity, a store and a proof rule")
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	l := &Ledger{cfg: cfg, leaves: map[uint64]Hash{}, positions: map[Hash]position{}, arrivals: make(chan struct{}, 1)}
	l.cond = sync.NewCond(&l.mu)
	if err := l.checkGenesis(); err != nil {
		return nil, err
	}
	if err := l.loadHead(); err != nil {
		return nil, err
	}
	if err := l.loadTree(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Ledger) checkGenesis() error {
	g := l.cfg.Genesis
	stored, err := l.cfg.Store.Meta(metaGenesis)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return l.cfg.Store.Write(context.Background(), store.Write{Meta: map[string][]byte{metaGenesis: g.Bytes}})
	case err != nil:
		return fmt.Errorf("read genesis: %w", err)
	case !bytes.Equal(stored, g.Bytes):
		other, _ := parseGenesis(stored)
		if other == g.Network {
			return fmt.Errorf("the data dir belongs to network %q with other mining rules (it was created with another profile: local and laptop/gateway differ); use that profile or another --data dir", other)
		}
		return fmt.Errorf("the data dir belongs to network %q, not %q; use --network %s or another --data dir", other, g.Network, other)
	}
	return nil
}

func parseGenesis(b []byte) (string, error) {
	var g Genesis
	if err := decodeStrict(b, &g); err != nil {
		return "?", err
	}
	return g.Network, nil
}

// loadHead finds the branch's highest block and the records already attached to it.
func (l *Ledger) loadHead() error {
	branch := l.cfg.Identity.ID
	l.head = head{no: 0, hash: l.cfg.Genesis.Hash, proof: l.cfg.Genesis.Hash}
	no, raw, err := l.cfg.Store.Head(branch)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("read branch head: %w", err)
	default:
		b, err := ParseBlock(raw)
		if err != nil {
			return fmt.Errorf("branch head block %d: %w", no, err)
		}
		l.head = head{no: b.No, hash: b.Hash, proof: b.Proof, time: b.Time}
	}
	attached, err := l.cfg.Store.BlockRecords(branch, l.head.no)
	if err != nil {
		return fmt.Errorf("read records of head block %d: %w", l.head.no, err)
	}
	for _, a := range attached {
		rec, err := l.cfg.Store.Record(a.TxID)
		if err != nil {
			return fmt.Errorf("record %x of head block %d: %w", a.TxID, l.head.no, err)
		}
		r, err := ParseRecord(rec)
		if err != nil {
			return fmt.Errorf("record %x of head block %d: %w", a.TxID, l.head.no, err)
		}
		l.leaves[a.Seq] = LeafHash(rec)
		l.positions[a.TxID] = position{seq: a.Seq, what: identity(r.Thing, r.Key)}
		l.nextSeq = a.Seq + 1
	}
	l.stats.HeadNo, l.stats.HeadHash, l.stats.Unsealed = l.head.no, l.head.hash, len(l.leaves)
	return nil
}

// Genesis returns the network's genesis block.
func (l *Ledger) Genesis() *Genesis { return l.cfg.Genesis }

// Identity returns the node's identity.
func (l *Ledger) Identity() *Identity { return l.cfg.Identity }

// PutPointers stores txID → data-key pointers durably (the ring's txID index,
// kept by the owner of each pointer's position and its replicas), so that the
// ledger stays the store's one writer.
func (l *Ledger) PutPointers(ctx context.Context, ps []store.Pointer) error {
	return l.cfg.Store.Write(ctx, store.Write{Pointers: ps})
}

// PutHistory stores history entries (the ring's per-Thing time index: copies
// of records at positions derived from their Thing and time) and drops the
// ones drop names, with txID pointers, in one durable write.
func (l *Ledger) PutHistory(ctx context.Context, pointers []store.Pointer, put []store.HistoryEntry, drop []store.HistoryRef) error {
	return l.cfg.Store.Write(ctx, store.Write{Pointers: pointers, History: put, DropHistory: drop})
}

// DropCopies deletes copies this node holds for others and no longer needs
// (the ring's repair decides which): records of other branches, with their
// index entries, txID pointers and history entries. A record of this node's own branch is
// never dropped: its blocks' seals prove it. It returns how many records it
// dropped.
func (l *Ledger) DropCopies(ctx context.Context, records [][32]byte, pointers [][32]byte, history []store.HistoryRef) (int, error) {
	var w store.Write
	for _, id := range records {
		raw, err := l.cfg.Store.Record(id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		r, err := ParseRecord(raw)
		if err != nil {
			return 0, fmt.Errorf("stored record %x: %w", id, err)
		}
		if r.Block.Branch == l.cfg.Identity.ID {
			continue
		}
		w.DropRecords = append(w.DropRecords, store.Record{TxID: r.TxID, Key: r.Key, Thing: r.Thing, Time: r.Time,
			Branch: r.Block.Branch, BlockNo: r.Block.No, Seq: r.Seq})
	}
	w.DropPointers = pointers
	w.DropHistory = history
	if len(w.DropRecords)+len(w.DropPointers)+len(w.DropHistory) == 0 {
		return 0, nil
	}
	if len(w.DropRecords) > 0 {
		// Tells the incremental verifier, durably and in the same commit, that
		// records went (verified.go): Badger may forget the deletions themselves.
		w.Meta = map[string][]byte{metaCopiesDropped: []byte(strconv.Itoa(len(w.DropRecords)))}
	}
	return len(w.DropRecords), l.cfg.Store.Write(ctx, w)
}

// Store returns the underlying store, for reads.
func (l *Ledger) Store() *store.Store { return l.cfg.Store }

// Head returns the proof seed and time of the head block (miner.Chain): the miner draws
// the next block's difficulty and attempts from the seed, not from the header hash.
func (l *Ledger) Head() ([32]byte, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.head.proof, l.head.time
}

// HasUnsealed reports whether durable records wait in the head block for the next
// block's seal (miner.Backlog): the miner makes no attempts while there are none, so an
// idle node adds no blocks.
func (l *Ledger) HasUnsealed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.leaves) > 0
}

// Arrivals delivers a value when the first durable record arrives in an empty head
// block (miner.Backlog). It is for one reader, the node's miner.
func (l *Ledger) Arrivals() <-chan struct{} { return l.arrivals }

// HeadRef names the head block.
func (l *Ledger) HeadRef() BlockRef {
	l.mu.Lock()
	defer l.mu.Unlock()
	return BlockRef{Branch: l.cfg.Identity.ID, No: l.head.no, Hash: l.head.hash}
}

// Stats returns a snapshot of the counters.
func (l *Ledger) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Append signs readings into records attached to the head block and returns when they
// are durable. A batch is all-or-nothing: invalid input stores nothing.
//
// A stamped reading (Time and Salt set) keeps its stamp, so its record's hData and key
// are what the entry node computed with ReadingKey; its Time must be within
// MaxClockSkew of the ledger's clock. Other readings are stamped here.
func (l *Ledger) Append(ctx context.Context, readings []Reading) ([]Receipt, error) {
	return l.append(ctx, readings, false, nil)
}

// IndexFunc computes what a caller of AppendIndexed writes with the records it
// indexes: entries derived from their receipts (txID pointers, history entries,
// history entries they replace). release, when not nil, is called once the write
// is over, durable or failed: the caller may hold locks until then.
type IndexFunc func(receipts []Receipt) (extra store.Write, release func(), err error)

// AppendIndexed is Append with index's entries for the new records in the same
// durable write as the records: one sync instead of two. index is called once per
// batch of new records, before the write; resent readings answered with records
// stored before do not reach it. Only extra's Pointers, History and DropHistory
// are written.
func (l *Ledger) AppendIndexed(ctx context.Context, readings []Reading, index IndexFunc) ([]Receipt, error) {
	return l.append(ctx, readings, false, index)
}

// append is Append; devicesChecked says the device signatures were verified already
// (the fresh readings of a resent batch), so that each costs one verification.
func (l *Ledger) append(ctx context.Context, readings []Reading, devicesChecked bool, index IndexFunc) ([]Receipt, error) {
	if len(readings) == 0 {
		return nil, nil
	}
	readings, err := stampDevices(readings, l.cfg.Now())
	if err != nil {
		return nil, err
	}
	datas := make([][]byte, len(readings))
	stamps := make([]*stamp, len(readings)) // of the stamped readings
	unstamped := 0
	var now int64 // the clock, read once for the first stamped reading
	for i, r := range readings {
		if err := ValidThingID(r.Thing); err != nil {
			return nil, &InputError{Index: i, Err: err}
		}
		ok, err := r.stamped()
		if err != nil {
			return nil, &InputError{Index: i, Err: err}
		}
		if !ok {
			unstamped++
		} else {
			if now == 0 {
				now = l.cfg.Now().UnixNano()
			}
			if d := time.Duration(r.Time - now); d > MaxClockSkew || d < -MaxClockSkew {
				return nil, &InputError{Index: i, Err: fmt.Errorf("reading time %s is %v away from this node's clock; at most %v is allowed",
					time.Unix(0, r.Time).UTC().Format(time.RFC3339Nano), d.Round(time.Millisecond), MaxClockSkew)}
			}
		}
		d, err := CanonicalReadingData(r)
		if err != nil {
			return nil, &InputError{Index: i, Err: err}
		}
		datas[i] = d
		if ok {
			st := &stamp{hData: DataHash(d, r.Time, r.Salt)}
			key := st.hData
			if r.Key != nil {
				key = *r.Key
			}
			st.key = key
			st.what = identity(r.Thing, key)
			stamps[i] = st
		}
	}
	if !devicesChecked {
		if err := checkDevices(readings, datas); err != nil {
			return nil, err
		}
	}
	var salts []byte
	if unstamped > 0 {
		salts = make([]byte, SaltSize*unstamped)
		if _, err := io.ReadFull(l.cfg.Rand, salts); err != nil {
			return nil, fmt.Errorf("read salt: %w", err)
		}
	}

	if resent, err := l.resent(ctx, readings, datas, stamps, index); err != nil || resent != nil {
		return resent, err
	}
	ref, seqs, err := l.attach(ctx, stamps)
	if err != nil {
		return nil, err
	}
	receipts, w, err := l.build(readings, datas, salts, ref, seqs)
	var release func()
	if err == nil && index != nil {
		var extra store.Write
		extra, release, err = index(receipts)
		w.Pointers, w.History, w.DropHistory = extra.Pointers, extra.History, extra.DropHistory
	}
	if err == nil {
		err = l.cfg.Store.Write(ctx, w)
	}
	if release != nil {
		release()
	}
	l.detach(seqs, receipts, err)
	if err != nil {
		return nil, fmt.Errorf("store records: %w", err)
	}
	return receipts, nil
}

// resent handles a batch with readings marked Resend: each one already stored
// is answered with its record; the others are appended (recursively, without
// the mark). It returns nil, nil when no reading is marked.
//
// Resends of one reading are serialized (resendLock), so two copies of it in
// flight at once (a device that sent it to two nodes) become one record. A
// retry of the very same stamp that races the first attempt is caught by
// attach, which gives a txID already in the head block the same position.
func (l *Ledger) resent(ctx context.Context, readings []Reading, datas [][]byte, stamps []*stamp, index IndexFunc) ([]Receipt, error) {
	var marked []int
	for i := range readings {
		if readings[i].Resend && stamps[i] != nil {
			marked = append(marked, i)
		}
	}
	if len(marked) == 0 {
		return nil, nil
	}
	ids := make([][32]byte, len(marked))
	for j, i := range marked {
		ids[j] = resendID(stamps[i].key, readings[i].Salt)
	}
	unlock := l.resends.lock(ids)
	defer unlock()
	out := make([]Receipt, len(readings))
	var fresh []Reading
	var freshAt []int
	for i := range readings {
		r := readings[i]
		if r.Resend && stamps[i] != nil {
			rc, found, err := l.findResent(r, datas[i], stamps[i].key)
			if err != nil {
				return nil, &InputError{Index: i, Err: err}
			}
			if found {
				out[i] = rc
				continue
			}
		}
		r.Resend = false
		fresh = append(fresh, r)
		freshAt = append(freshAt, i)
	}
	if len(fresh) > 0 {
		rcs, err := l.append(ctx, fresh, true, index)
		var ie *InputError
		if errors.As(err, &ie) && ie.Index >= 0 && ie.Index < len(freshAt) {
			return nil, &InputError{Index: freshAt[ie.Index], Err: ie.Err}
		}
		if err != nil {
			return nil, err
		}
		for j, i := range freshAt {
			out[i] = rcs[j]
		}
	}
	return out, nil
}

// findResent looks for a stored record of a resent reading: same key, Thing
// and salt (the salt is random, or derived from an idempotency key). The same
// identity with other data is the client reusing an idempotency key for
// another reading, which is refused.
func (l *Ledger) findResent(r Reading, data []byte, key Key) (Receipt, bool, error) {
	ids, err := l.cfg.Store.RecordsByKey(key, 0)
	if err != nil {
		return Receipt{}, false, err
	}
	for _, id := range ids {
		raw, err := l.cfg.Store.Record(id)
		if err != nil {
			return Receipt{}, false, err
		}
		rec, err := ParseRecord(raw)
		if err != nil || rec.Thing != r.Thing || !bytes.Equal(rec.Salt, r.Salt) {
			continue
		}
		if !bytes.Equal(rec.Data, data) {
			return Receipt{}, false, errors.New("this idempotency key was used before for a reading with other data")
		}
		return Receipt{TxID: rec.TxID, Key: rec.Key, Block: rec.Block, Record: raw, Thing: rec.Thing, Time: rec.Time}, true, nil
	}
	return Receipt{}, false, nil
}

// resendID names a resent reading's identity for resendLock.
func resendID(key Key, salt []byte) [32]byte {
	return sha256.Sum256(append(key[:], salt...))
}

// resendLock serializes the handling of resends of one reading.
type resendLock struct {
	mu   sync.Mutex
	busy map[[32]byte]chan struct{}
}

// lock takes every id (waiting for holders) and returns the release.
func (rl *resendLock) lock(ids [][32]byte) func() {
	for {
		rl.mu.Lock()
		if rl.busy == nil {
			rl.busy = map[[32]byte]chan struct{}{}
		}
		var wait chan struct{}
		for _, id := range ids {
			if ch, ok := rl.busy[id]; ok {
				wait = ch
				break
			}
		}
		if wait == nil {
			done := make(chan struct{})
			for _, id := range ids {
				rl.busy[id] = done
			}
			rl.mu.Unlock()
			return func() {
				rl.mu.Lock()
				for _, id := range ids {
					delete(rl.busy, id)
				}
				rl.mu.Unlock()
				close(done)
			}
		}
		rl.mu.Unlock()
		<-wait
	}
}

// stamp is what makes a stamped reading's record: its H_DATA (with the head block, its
// txID) and, as identity, its Thing and key.
type stamp struct {
	hData Key
	key   Key
	what  [32]byte
}

// position is where a txID sits in the head block, and the identity of its record.
type position struct {
	seq  uint64
	what [32]byte
}

// identity names a record's Thing and key: with the txID they fix its bytes.
func identity(thing string, key Key) [32]byte {
	h := sha256.New()
	h.Write([]byte(thing))
	h.Write([]byte{0})
	h.Write(key[:])
	return [32]byte(h.Sum(nil))
}

// attach reserves a position in the head block for each reading, waiting while a seal
// is in progress. stamps holds the stamp of each stamped reading (nil for the others):
// a stamped reading whose txID already has a position in the head block gets that
// position again. Signatures are deterministic, so it becomes the very same record, and
// writing it twice is harmless. The same txID with another Thing or key would be a
// different record under one txID, and is refused. A position that never becomes
// durable stays unused.
func (l *Ledger) attach(ctx context.Context, stamps []*stamp) (BlockRef, []uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.sealing {
		if err := ctx.Err(); err != nil {
			return BlockRef{}, nil, err
		}
		l.cond.Wait()
	}
	txIDs := make([]Hash, len(stamps))
	batch := map[Hash][32]byte{}
	for i, st := range stamps {
		if st == nil {
			continue
		}
		txIDs[i] = TxID(l.head.hash, st.hData)
		if p, ok := l.positions[txIDs[i]]; ok && p.what != st.what {
			return BlockRef{}, nil, &InputError{Index: i, Err: errors.New("a reading with this time, salt and data is already in the block under another thing or key")}
		}
		if what, ok := batch[txIDs[i]]; ok && what != st.what {
			return BlockRef{}, nil, &InputError{Index: i, Err: errors.New("two readings of the batch have the same time, salt and data but another thing or key")}
		}
		batch[txIDs[i]] = st.what
	}
	seqs := make([]uint64, len(stamps))
	for i, st := range stamps {
		if st == nil {
			seqs[i] = l.nextSeq
			l.nextSeq++
			continue
		}
		p, ok := l.positions[txIDs[i]]
		if !ok {
			p = position{seq: l.nextSeq, what: st.what}
			l.nextSeq++
			l.positions[txIDs[i]] = p
		}
		seqs[i] = p.seq
	}
	l.inflight++
	return BlockRef{Branch: l.cfg.Identity.ID, No: l.head.no, Hash: l.head.hash}, seqs, nil
}

// detach records the leaves of durable records and lets a waiting seal proceed.
func (l *Ledger) detach(seqs []uint64, receipts []Receipt, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		if len(l.leaves) == 0 && len(receipts) > 0 {
			select {
			case l.arrivals <- struct{}{}:
			default: // one is pending already
			}
		}
		for i := range receipts {
			if _, again := l.leaves[seqs[i]]; !again {
				l.stats.Records++
			}
			l.leaves[seqs[i]] = LeafHash(receipts[i].Record)
		}
		l.stats.Unsealed = len(l.leaves)
	}
	l.inflight--
	if l.inflight == 0 {
		l.cond.Broadcast()
	}
}

// build makes and signs the records, in parallel for large batches: signing is the
// costly step (about 15 µs each). salts holds the salts of the unstamped readings, in
// order; stamped readings keep their own time and salt.
func (l *Ledger) build(readings []Reading, datas [][]byte, salts []byte, ref BlockRef, seqs []uint64) ([]Receipt, store.Write, error) {
	receipts := make([]Receipt, len(readings))
	recs := make([]store.Record, len(readings))
	errs := make([]error, len(readings))
	var saltOf []int // the unstamped readings' offsets into salts, when there are stamped ones
	if len(salts) != SaltSize*len(readings) {
		saltOf = make([]int, len(readings))
		at := 0
		for i := range readings {
			if readings[i].Salt == nil {
				saltOf[i] = at
				at += SaltSize
			}
		}
	}
	one := func(i int) {
		var now int64
		var salt []byte
		switch {
		case readings[i].Salt != nil:
			now, salt = readings[i].Time, readings[i].Salt
		case saltOf != nil:
			now, salt = l.cfg.Now().UnixNano(), salts[saltOf[i]:saltOf[i]+SaltSize]
		default:
			now, salt = l.cfg.Now().UnixNano(), salts[i*SaltSize:(i+1)*SaltSize]
		}
		hData := DataHash(datas[i], now, salt)
		key := hData
		if readings[i].Key != nil {
			key = *readings[i].Key
		}
		r := &Record{TxID: TxID(ref.Hash, hData), Key: key, HData: hData, Salt: salt, Thing: readings[i].Thing,
			Time: now, Block: ref, Seq: seqs[i], Data: datas[i], Device: readings[i].Device}
		raw, err := SignRecord(r, l.cfg.Identity)
		if err != nil {
			errs[i] = err
			return
		}
		// Signed here, so valid: the layers that read it back (live
		// updates, a receipt's check, a replica's copy on this node) find
		// it parsed.
		parsed.add(sha256.Sum256(raw), r)
		receipts[i] = Receipt{TxID: r.TxID, Key: key, Block: ref, Record: raw, Thing: r.Thing, Time: now}
		recs[i] = store.Record{TxID: r.TxID, Key: key, Thing: r.Thing, Time: now, Branch: ref.Branch,
			BlockNo: ref.No, Seq: r.Seq, Value: raw}
	}
	parallel(len(readings), one)
	for _, err := range errs {
		if err != nil {
			return nil, store.Write{}, err
		}
	}
	return receipts, store.Write{Records: recs}, nil
}

// parallel runs fn(0..n-1) on up to GOMAXPROCS goroutines; small n runs inline.
func parallel(n int, fn func(i int)) {
	workers := runtime.GOMAXPROCS(0)
	if n < 16 || workers == 1 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for start := 0; start < n; start += chunk {
		end := min(start+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := start; i < end; i++ {
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// Extend mines the next block (miner.Chain): attempt nonce succeeded at t. It closes the
// head block, seals its durable records and makes the new block the head.
func (l *Ledger) Extend(ctx context.Context, nonce uint64, t time.Time) error {
	l.mu.Lock()
	l.sealing = true
	for l.inflight > 0 {
		l.cond.Wait()
	}
	parent := l.head
	seqs := make([]uint64, 0, len(l.leaves))
	for s := range l.leaves {
		seqs = append(seqs, s)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	leaves := make([]Hash, len(seqs))
	for i, s := range seqs {
		leaves[i] = l.leaves[s]
	}
	l.mu.Unlock()

	blk, raw, tree, err := l.seal(ctx, parent, nonce, t, leaves)

	l.mu.Lock()
	defer l.mu.Unlock()
	l.sealing = false
	l.cond.Broadcast()
	if err != nil {
		return err
	}
	l.head = head{no: blk.No, hash: blk.Hash, proof: blk.Proof, time: blk.Time}
	l.tree = tree
	l.leaves = map[uint64]Hash{}
	l.positions = map[Hash]position{}
	l.nextSeq = 0
	l.stats.Blocks++
	l.stats.HeadNo, l.stats.HeadHash, l.stats.Unsealed = blk.No, blk.Hash, 0
	l.cfg.Log.Debug("block mined", zap.Uint64("no", blk.No), zap.Stringer("hash", blk.Hash),
		zap.Int("sealed", len(leaves)), zap.Int("bytes", len(raw)))
	return nil
}

func (l *Ledger) seal(ctx context.Context, parent head, nonce uint64, t time.Time, leaves []Hash) (*Block, []byte, *compact.Range, error) {
	// The node checks its own block as any verifier will; a block it cannot prove is
	// never written.
	proof, err := l.cfg.Proof(parent.proof, parent.time, l.cfg.Identity.ID, nonce, t.UnixNano())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("block %d: %w", parent.no+1, err)
	}
	h := BlockHeader{Network: l.cfg.Genesis.Hash, No: parent.no + 1, Prev: parent.hash, Time: t.UnixNano(),
		Nonce: nonce, Proof: proof, Seal: MerkleRoot(leaves), Sealed: uint64(len(leaves))}
	blk, raw, err := SignBlock(h, l.cfg.Identity)
	if err != nil {
		return nil, nil, nil, err
	}
	tree, w, err := l.extendTree(blk)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("block %d: branch tree: %w", blk.No, err)
	}
	w.Blocks = []store.Block{{Branch: blk.Branch, No: blk.No, Hash: blk.Hash, Value: raw}}
	if err := l.cfg.Store.Write(ctx, w); err != nil {
		return nil, nil, nil, fmt.Errorf("store block %d: %w", blk.No, err)
	}
	return blk, raw, tree, nil
}
