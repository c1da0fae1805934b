package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/flownode/flownode/store"
)

// IngestStats counts what one Ingest newly stored; items already stored byte-identical
// are not counted.
type IngestStats struct {
	Blocks  int
	Records int
}

// IngestError is an item Ingest refuses; nothing of the call was stored.
type IngestError struct {
	Kind  string // "block" or "record"
	Index int    // position in the blocks or records argument
	Err   error
}

func (e *IngestError) Error() string { return fmt.Sprintf("%s %d: %v", e.Kind, e.Index, e.Err) }
func (e *IngestError) Unwrap() error { return e.Err }

// Ingest checks and stores signed blocks and records of other nodes' branches (data
// this node keeps as a replica or as the owner of their keys), given as the bytes their
// miners and signers produced. It is all-or-nothing: the first item that does not check
// is returned as an *IngestError and nothing is stored. Other errors mean the store
// could not be read or written, and nothing is known to be stored.
//
// A block must verify on its own (hash, signature, branch = SHA-1 of its miner), belong
// to this network and link to its parent — block no-1 of its branch, stored or among
// this call's blocks, or genesis for block 1 — by prev and by proof. A block that is
// already stored with the same bytes is skipped; other bytes at a stored position are
// refused, and so is any block of this node's own branch that it does not already hold.
//
// A record must verify on its own (Record.CheckSelf: canonical form, signature by the
// owner of its branch, hData, txID), and the block it names must be stored or among
// this call's blocks with that hash (genesis for block 0). Its position in the block
// must be free (or hold that same record) and, when the next block is known, its seal
// must cover as many records of the block as this node then holds. Records of this node's own branch that it does not already hold are
// refused.
//
// The blocks and records that are new are stored with all their index entries in one
// store write. Ingests run one at a time; Append and Extend are not held up.
func (l *Ledger) Ingest(ctx context.Context, blocks, records [][]byte) (IngestStats, error) {
	// The checks a record makes on its own come first, in parallel and
	// before the calls are serialized: signatures are most of an ingest's
	// cost, and replicas receive from several owners at once.
	parsed, bad, err := ParseCheckedAll(records)
	if err != nil {
		return IngestStats{}, badRecord(bad, err)
	}
	c := &ingestCall{ctx: ctx, blocks: blocks, records: records, parsed: parsed}
	l.ingests.Do(c, l.ingestGroup)
	return c.stats, c.err
}

// ingestCall is one Ingest on its way through the ledger's ingest group.
type ingestCall struct {
	ctx             context.Context
	blocks, records [][]byte
	parsed          []*Record
	stats           IngestStats
	err             error
}

// ingestGroup checks calls one after the other, each against the store and
// what the calls before it accepted, then writes what they all accepted in
// one durable write (group commit): the checks must see every earlier
// ingest, but replicas that receive from several owners at once then share
// one sync instead of waiting for one each. A call that fails stores
// nothing and does not hold up the others; a failed write fails them all.
func (l *Ledger) ingestGroup(calls []*ingestCall) {
	pending := newPendingIngest()
	var w store.Write
	var accepted []*ingestCall
	for _, c := range calls {
		in := &ingest{l: l, st: l.cfg.Store, known: map[blockPos]*Block{}, held: map[blockPos]int{}, prev: pending}
		if c.err = in.blocks(c.ctx, c.blocks); c.err != nil {
			continue
		}
		if c.err = in.records(c.ctx, c.records, c.parsed); c.err != nil {
			continue
		}
		c.stats = IngestStats{Blocks: len(in.w.Blocks), Records: len(in.w.Records)}
		pending.merge(in)
		w.Blocks = append(w.Blocks, in.w.Blocks...)
		w.Records = append(w.Records, in.w.Records...)
		accepted = append(accepted, c)
	}
	if len(w.Blocks)+len(w.Records) == 0 {
		return
	}
	// The write is everyone's: one caller's cancellation does not stop it.
	if err := l.cfg.Store.Write(context.WithoutCancel(calls[0].ctx), w); err != nil {
		for _, c := range accepted {
			c.stats, c.err = IngestStats{}, fmt.Errorf("store ingested data: %w", err)
		}
	}
}

// pendingIngest is what the calls of an ingest group accepted so far and
// have not written yet: a later call checks against it as if it were stored.
type pendingIngest struct {
	known   map[blockPos]*Block // blocks looked up or accepted; nil: not held
	held    map[blockPos]int    // records attached to a block, stored or accepted
	blocks  map[blockPos][]byte // accepted blocks
	records map[Hash][]byte     // accepted records
	attach  map[attachPos]Hash  // positions accepted records take
}

func newPendingIngest() *pendingIngest {
	return &pendingIngest{known: map[blockPos]*Block{}, held: map[blockPos]int{}, blocks: map[blockPos][]byte{},
		records: map[Hash][]byte{}, attach: map[attachPos]Hash{}}
}

// merge adds what in accepted (and looked up) to p.
func (p *pendingIngest) merge(in *ingest) {
	for pos, b := range in.known {
		p.known[pos] = b
	}
	for pos, n := range in.held {
		p.held[pos] = n
	}
	for _, b := range in.w.Blocks {
		p.blocks[blockPos{b.Branch, b.No}] = b.Value
	}
	for _, r := range in.w.Records {
		p.records[r.TxID] = r.Value
		p.attach[attachPos{r.Branch, r.BlockNo, r.Seq}] = r.TxID
	}
}

// attachPos is a record's position: its block and its sequence number in it.
type attachPos struct {
	branch  Key
	no, seq uint64
}

// ingest is the state of one Ingest call.
type ingest struct {
	l     *Ledger
	st    *store.Store
	known map[blockPos]*Block // blocks looked up or accepted so far; nil: not held
	held  map[blockPos]int    // records attached to a block, stored or new in this call
	w     store.Write         // what is new
	prev  *pendingIngest      // what the calls before this one in its group accepted
}

// storedBlock returns the bytes of the block at branch/no, stored or accepted
// by an earlier call of the group, or store.ErrNotFound.
func (in *ingest) storedBlock(branch Key, no uint64) ([]byte, error) {
	if raw, ok := in.prev.blocks[blockPos{branch, no}]; ok {
		return raw, nil
	}
	return in.st.Block(branch, no)
}

// storedRecord returns the bytes of record txID, stored or accepted by an
// earlier call of the group, or store.ErrNotFound.
func (in *ingest) storedRecord(txID Hash) ([]byte, error) {
	if raw, ok := in.prev.records[txID]; ok {
		return raw, nil
	}
	return in.st.Record(txID)
}

// attachment returns the txID of the record at a position, stored or accepted
// by an earlier call of the group, or store.ErrNotFound.
func (in *ingest) attachment(pos attachPos) ([]byte, error) {
	if id, ok := in.prev.attach[pos]; ok {
		return id[:], nil
	}
	return in.st.Get(store.AttachmentKey(pos.branch, pos.no, pos.seq))
}

// attached returns how many records attached to branch/no the store holds plus those
// this call has accepted so far.
func (in *ingest) attached(branch Key, no uint64) (int, error) {
	pos := blockPos{branch, no}
	if n, ok := in.held[pos]; ok {
		return n, nil
	}
	if n, ok := in.prev.held[pos]; ok {
		in.held[pos] = n
		return n, nil
	}
	a, err := in.st.BlockRecords(branch, no)
	if err != nil {
		return 0, err
	}
	in.held[pos] = len(a)
	return len(a), nil
}

func badBlock(i int, err error) error  { return &IngestError{Kind: "block", Index: i, Err: err} }
func badRecord(i int, err error) error { return &IngestError{Kind: "record", Index: i, Err: err} }

// block returns the block at branch/no held by the store or accepted in this call, or
// nil if there is none. Genesis (no 0) is not a Block: callers handle it.
func (in *ingest) block(branch Key, no uint64) (*Block, error) {
	pos := blockPos{branch, no}
	if b, ok := in.known[pos]; ok {
		return b, nil
	}
	if b, ok := in.prev.known[pos]; ok {
		in.known[pos] = b
		return b, nil
	}
	raw, err := in.st.Block(branch, no)
	if errors.Is(err, store.ErrNotFound) {
		in.known[pos] = nil
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	b, err := ParseBlock(raw)
	if err != nil {
		return nil, fmt.Errorf("stored block %d of branch %s: %w", no, branch, err)
	}
	in.known[pos] = b
	return b, nil
}

// blocks checks the call's blocks in branch and number order, so that each block's
// parent is checked (or found stored) before it.
func (in *ingest) blocks(ctx context.Context, raws [][]byte) error {
	type item struct {
		i   int
		b   *Block
		raw []byte
	}
	items := make([]item, 0, len(raws))
	for i, raw := range raws {
		b, err := ParseBlock(raw)
		if err != nil {
			return badBlock(i, err)
		}
		canon, err := Canonical(b)
		if err != nil || !bytes.Equal(canon, raw) {
			return badBlock(i, &Mismatch{What: "block bytes", Expected: "RFC 8785 canonical JSON", Actual: "bytes that differ from their canonical form"})
		}
		items = append(items, item{i, b, raw})
	}
	sort.SliceStable(items, func(a, b int) bool {
		if c := bytes.Compare(items[a].b.Branch[:], items[b].b.Branch[:]); c != 0 {
			return c < 0
		}
		return items[a].b.No < items[b].b.No
	})
	self := in.l.cfg.Identity.ID
	for k, it := range items {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := it.b
		if k > 0 && items[k-1].b.Branch == b.Branch && items[k-1].b.No == b.No {
			if bytes.Equal(items[k-1].raw, it.raw) {
				continue
			}
			return badBlock(it.i, fmt.Errorf("conflicts with block %d of this call at the same position (block %d of branch %s)", items[k-1].i, b.No, b.Branch))
		}
		if b.No == 0 {
			return badBlock(it.i, errors.New("block number 0 is the genesis block"))
		}
		stored, err := in.storedBlock(b.Branch, b.No)
		switch {
		case err == nil && bytes.Equal(stored, it.raw):
			in.known[blockPos{b.Branch, b.No}] = b
			continue
		case err == nil:
			return badBlock(it.i, fmt.Errorf("conflicts with stored block %d of branch %s", b.No, b.Branch))
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		if b.Branch == self {
			return badBlock(it.i, fmt.Errorf("block %d is of this node's own branch %s, which it never takes from others", b.No, b.Branch))
		}
		if why, refused := in.l.Refused(b.Branch); refused {
			return badBlock(it.i, fmt.Errorf("branch %s is refused: %s", b.Branch, why))
		}
		var parent *Block
		if b.No > 1 {
			if parent, err = in.block(b.Branch, b.No-1); err != nil {
				return err
			}
			if parent == nil {
				return badBlock(it.i, fmt.Errorf("parent block %d of branch %s is neither stored nor in this call", b.No-1, b.Branch))
			}
		}
		if err := checkLink(b, parent, in.l.cfg.Genesis, in.l.cfg.Proof); err != nil {
			return badBlock(it.i, err)
		}
		// The seal must cover at least the records of the parent already held.
		held, err := in.attached(b.Branch, b.No-1)
		if err != nil {
			return err
		}
		if uint64(held) > b.Sealed {
			return badBlock(it.i, &Mismatch{What: "sealed record count", Expected: fmt.Sprintf("at least the %d records of block %d stored here", held, b.No-1),
				Actual: fmt.Sprint(b.Sealed)})
		}
		in.known[blockPos{b.Branch, b.No}] = b
		in.w.Blocks = append(in.w.Blocks, store.Block{Branch: b.Branch, No: b.No, Hash: b.Hash, Value: it.raw})
	}
	return nil
}

// records checks the call's records in order, against the store and the call's blocks;
// parsed holds each record, already checked on its own (Record.CheckSelf).
func (in *ingest) records(ctx context.Context, raws [][]byte, parsed []*Record) error {
	seen := map[Hash][]byte{}     // the call's records so far, by txID
	taken := map[attachPos]Hash{} // positions the call's new records take
	self := in.l.cfg.Identity.ID
	for i, raw := range raws {
		if err := ctx.Err(); err != nil {
			return err
		}
		r := parsed[i]
		if prev, ok := seen[r.TxID]; ok {
			if bytes.Equal(prev, raw) {
				continue
			}
			return badRecord(i, fmt.Errorf("conflicts with another record %s of this call", r.TxID))
		}
		seen[r.TxID] = raw
		stored, err := in.storedRecord(r.TxID)
		switch {
		case err == nil && bytes.Equal(stored, raw):
			continue
		case err == nil:
			return badRecord(i, fmt.Errorf("conflicts with stored record %s", r.TxID))
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		ref := r.Block
		if ref.Branch == self {
			return badRecord(i, fmt.Errorf("record is of this node's own branch %s, which it never takes from others", ref.Branch))
		}
		if err := in.recordBlock(r); err != nil {
			return badRecord(i, err)
		}
		pos := attachPos{ref.Branch, ref.No, r.Seq}
		if other, ok := taken[pos]; ok {
			return badRecord(i, fmt.Errorf("position %d of block %d of branch %s is taken by record %s of this call", r.Seq, ref.No, ref.Branch, other))
		}
		v, err := in.attachment(pos)
		switch {
		case err == nil && !bytes.Equal(v, r.TxID[:]):
			return badRecord(i, fmt.Errorf("position %d of block %d of branch %s is taken by stored record %x", r.Seq, ref.No, ref.Branch, v))
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return err
		}
		if err := in.sealCovers(r); err != nil {
			return badRecord(i, err)
		}
		taken[pos] = r.TxID
		in.held[blockPos{ref.Branch, ref.No}]++
		in.w.Records = append(in.w.Records, store.Record{TxID: r.TxID, Key: r.Key, Thing: r.Thing, Time: r.Time,
			Branch: ref.Branch, BlockNo: ref.No, Seq: r.Seq, Value: raw})
	}
	return nil
}

// recordBlock checks that the block a record names is held (or genesis) with the hash
// the record names.
func (in *ingest) recordBlock(r *Record) error {
	ref := r.Block
	if ref.No == 0 {
		if ref.Hash != in.l.cfg.Genesis.Hash {
			return &Mismatch{What: "record block", Expected: "the genesis hash " + in.l.cfg.Genesis.Hash.String(), Actual: ref.Hash.String()}
		}
	} else {
		b, err := in.block(ref.Branch, ref.No)
		if err != nil {
			return err
		}
		if b == nil {
			return fmt.Errorf("its block %d of branch %s is neither stored nor in this call", ref.No, ref.Branch)
		}
		if b.Hash != ref.Hash {
			return &Mismatch{What: "record block", Expected: fmt.Sprintf("block %d of branch %s with hash %s", ref.No, ref.Branch, b.Hash), Actual: ref.Hash.String()}
		}
	}
	return nil
}

// sealCovers checks, when the block after the record's block is held, that its seal
// covers this record too: as many records of the block as this node would hold with it.
// (Only the count: a batch whose write failed leaves positions unused, so positions may
// exceed it.)
func (in *ingest) sealCovers(r *Record) error {
	ref := r.Block
	held, err := in.attached(ref.Branch, ref.No) // also fills in.held for the caller
	if err != nil {
		return err
	}
	next, err := in.block(ref.Branch, ref.No+1)
	if err != nil {
		return err
	}
	if next != nil && uint64(held) >= next.Sealed {
		return &Mismatch{What: "records of the block", Expected: fmt.Sprintf("at most %d (block %d seals %d)", next.Sealed, ref.No+1, next.Sealed),
			Actual: fmt.Sprintf("%d with this one", held+1)}
	}
	return nil
}
