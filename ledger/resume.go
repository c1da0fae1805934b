package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"runtime"
	"sort"
	"strings"

	"github.com/flownode/flownode/store"
)

// VerifyIncremental verifies the store from where the last verification that passed
// left it, and remembers (in the store's meta, durably) where this one leaves it if it
// passes; a failed verification is never remembered. It reads only the entries
// written or deleted since the remembered store version (Badger keeps a version per
// commit) and checks them as strictly as Verify does:
//
//   - new blocks link to the last verified block of their branch (number, prev, proof,
//     signature, hash index) and their seals cover their parent's records; a verified
//     block rewritten with other bytes, or deleted, fails at its place;
//   - new records verify on their own (CheckStored), name a verified block, and have
//     their three index entries; a block whose records changed has its seal checked
//     again (complete on this node's branch, or counted partial on another's);
//   - a verified record deleted without DropCopies (which marks the store) fails,
//     named by txID and, as far as Badger still tells, key, Thing and block;
//   - index entries written or deleted must belong to a record checked or deleted.
//
// Whatever it cannot decide this way — no remembered verification, another network
// or node, copies dropped since (Badger may have forgotten those deletions), a
// block-hash or index entry changed on its own — it verifies in full instead, and
// Report.Fallback says why. full forces that. The report's counts are always of the
// whole store; Report.Mode and Since say what was read.
//
// What it does not see: bytes changed in Badger's files without a commit (an
// attacker editing the disk), and deletions Badger forgot before this run — unless a
// count of entries shows them. The remembered state itself is in the store. A full
// verification trusts nothing remembered.
//
// Verifications of one store that remember run one at a time. Like Verify, it reads
// one moment of the store (snapshots at one commit) while the node writes.
func VerifyIncremental(ctx context.Context, st *store.Store, g *Genesis, proof ProofCheck, self Key, full bool) (*Report, error) {
	mu := verifyLock(st)
	mu.Lock()
	defer mu.Unlock()
	snaps, err := st.Snapshots(runtime.GOMAXPROCS(0) + 1)
	if err != nil {
		return nil, err
	}
	defer closeAll(snaps)
	var (
		rep       *Report
		next      *verifiedState
		why       string
		prevState *verifiedState
	)
	if !full {
		prevState, why, err = loadState(&snaps[0].Reader, g, self)
		if err != nil {
			return nil, err
		}
		if prevState != nil {
			rep, next, why, err = resume(ctx, st, snaps, g, proof, self, prevState)
			if err != nil {
				return nil, err
			}
		}
	}
	if rep == nil {
		var v *verifier
		rep, v, err = verifyFull(ctx, st, snaps, g, proof, self)
		if err != nil {
			return nil, err
		}
		rep.Fallback = why
		if rep.Valid {
			next = stateOf(v, rep, g, self)
		}
	}
	idle := rep.Mode == ModeIncremental && rep.CheckedBlocks == 0 && rep.CheckedRecords == 0 && sameState(prevState, next)
	if rep.Valid && next.At != 0 && !idle {
		if err := saveState(ctx, st, next); err != nil {
			return nil, fmt.Errorf("verified, but could not remember it: %w", err)
		}
	}
	return rep, nil
}

// incremental is one resumed verification.
type incremental struct {
	v     *verifier
	prev  *verifiedState
	since uint64
	rep   *Report

	checkedBlocks map[blockPos]bool // new or rewritten blocks checked in this run
	hashEntries   map[string]bool   // their block-by-hash entries
	indexEntries  entrySet          // the index entries of the records checked
	touched       map[blockPos]bool // blocks whose records changed
	deleted       map[Hash]Location // verified records deleted

	recordsChanged int // record entries written or deleted since
}

// resume runs an incremental verification from prev. A non-empty why asks for a full
// one instead (rep is then nil).
func resume(ctx context.Context, st *store.Store, snaps []*store.Snapshot, g *Genesis, proof ProofCheck, self Key, prev *verifiedState) (rep *Report, next *verifiedState, why string, err error) {
	v := newVerifier(ctx, st, snaps, g, proof, self)
	v.lazyHeads = true
	for _, b := range prev.Branches {
		if b.Top > 0 {
			v.tops[b.Branch] = b.Top
			v.heads[blockPos{b.Branch, b.Top}] = b.Hash
		} else {
			v.recordBranches[b.Branch] = true
		}
		for _, no := range b.Partial {
			v.partial[blockPos{b.Branch, no}] = true
		}
	}
	in := &incremental{v: v, prev: prev, since: prev.At,
		rep:           &Report{Mode: ModeIncremental, Since: prev.At, At: snaps[0].Version()},
		checkedBlocks: map[blockPos]bool{}, hashEntries: map[string]bool{}, indexEntries: newEntrySet(),
		touched: map[blockPos]bool{}, deleted: map[Hash]Location{}}
	why, err = in.run()
	if fillFailure(in.rep, err) {
		return in.rep, nil, "", nil
	}
	if err != nil || why != "" {
		return nil, nil, why, err
	}
	in.rep.Valid = true
	return in.rep, stateOf(v, in.rep, g, self), "", nil
}

// errFallback carries why the incremental run gives up to a full one.
type errFallback struct{ why string }

func (e *errFallback) Error() string { return e.why }

func fallback(format string, args ...any) error {
	return &errFallback{why: fmt.Sprintf(format, args...)}
}

func (in *incremental) run() (why string, err error) {
	err = in.steps()
	var fb *errFallback
	if errors.As(err, &fb) {
		return fb.why, nil
	}
	return "", err
}

func (in *incremental) steps() error {
	v := in.v
	if err := v.checkGenesis(); err != nil {
		return err
	}
	if in.rep.At == in.since {
		return in.totals() // nothing was committed since
	}
	ver, err := v.st.EntryVersion(store.MetaKey(metaCopiesDropped))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err == nil && ver > in.since {
		return fallback("copies of other branches were dropped since the last verification")
	}
	for _, step := range []func() error{in.blocks, in.hashEntriesChanged, in.records, in.indexEntriesChanged, in.deletions, in.seals} {
		if err := step(); err != nil {
			return err
		}
	}
	return in.totals()
}

// checkGenesis checks the network's genesis the store holds.
func (v *verifier) checkGenesis() error {
	stored, err := v.st.Meta(metaGenesis)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err == nil && !bytes.Equal(stored, v.g.Bytes) {
		return fail("genesis", &Mismatch{What: "genesis block", Expected: string(v.g.Bytes), Actual: string(stored)})
	}
	return nil
}

// blocks checks the blocks written or deleted since, branch by branch, in order.
func (in *incremental) blocks() error {
	byBranch := map[Key][]store.Change{}
	err := in.v.st.Changes(store.PrefixBlock, in.since, true, func(c store.Change) error {
		branch, _, err := store.ParseBlockKey(c.Key)
		if err != nil {
			return err
		}
		byBranch[branch] = append(byBranch[branch], c)
		return nil
	})
	if err != nil {
		return err
	}
	branches := make([]Key, 0, len(byBranch))
	for b := range byBranch {
		branches = append(branches, b)
	}
	sort.Slice(branches, func(i, j int) bool { return bytes.Compare(branches[i][:], branches[j][:]) < 0 })
	for _, b := range branches {
		if err := in.branchBlocks(b, byBranch[b]); err != nil {
			return err
		}
	}
	return nil
}

// branchBlocks checks one branch's changed blocks (in number order, as Changes gives
// them): verified ones rewritten must keep their hash, new ones must extend the top.
func (in *incremental) branchBlocks(branch Key, changes []store.Change) error {
	v := in.v
	top := v.tops[branch] // 0: none verified
	var prev *Block
	for _, c := range changes {
		_, no, err := store.ParseBlockKey(c.Key)
		if err != nil {
			return err
		}
		switch {
		case c.Deleted && no <= top:
			return v.blockFailure(branch, no, &Mismatch{What: "block", Expected: "the block verified before", Actual: "deleted from the store"})
		case c.Deleted:
			return fallback("block %d of branch %s was written and deleted since the last verification", no, branch)
		case no <= top:
			if err := in.rewritten(branch, no, top, c.Value); err != nil {
				return err
			}
			continue
		}
		if want := v.tops[branch] + 1; no != want {
			return v.blockFailure(branch, no, &Mismatch{What: "block number", Expected: fmt.Sprint(want), Actual: fmt.Sprint(no)})
		}
		if prev == nil && no > 1 {
			if prev, err = in.verifiedBlock(branch, no-1); err != nil {
				return err
			}
		}
		b, err := v.parseBlockAt(branch, no, c.Value)
		if err != nil {
			return err
		}
		partial, err := v.checkBlock(b, prev, branch, no)
		if err != nil {
			return v.blockFailure(branch, no, err)
		}
		in.checked(branch, no, b, partial)
		v.tops[branch] = no
		delete(v.recordBranches, branch)
		prev = b
	}
	return nil
}

// checked notes a block checked in this run.
func (in *incremental) checked(branch Key, no uint64, b *Block, partial bool) {
	pos := blockPos{branch, no}
	in.v.setHead(branch, no, b.Hash)
	in.checkedBlocks[pos] = true
	in.hashEntries[string(store.BlockHashKey(b.Hash))] = true
	if partial {
		in.v.partial[pos] = true
	} else {
		delete(in.v.partial, pos)
	}
	in.rep.CheckedBlocks++
}

// verifiedBlock reads a block verified before and unchanged since: the parent of the
// first new block.
func (in *incremental) verifiedBlock(branch Key, no uint64) (*Block, error) {
	raw, err := in.v.st.Block(branch, no)
	if err != nil {
		return nil, in.v.blockFailure(branch, no, &Mismatch{What: "block", Expected: "the block verified before", Actual: err.Error()})
	}
	b, err := in.v.parseBlockAt(branch, no, raw)
	if err != nil {
		return nil, err
	}
	if want, ok := in.v.headOf(in.v.st, branch, no); ok && want != b.Hash {
		return nil, in.v.blockFailure(branch, no, &Mismatch{What: "block hash", Expected: want.String(), Actual: b.Hash.String()})
	}
	return b, nil
}

// rewritten checks a verified block written again: the same block (its hash, which
// its child or the remembered top names) is harmless, anything else fails there.
func (in *incremental) rewritten(branch Key, no, top uint64, raw []byte) error {
	v := in.v
	b, err := v.parseBlockAt(branch, no, raw)
	if err != nil {
		return err
	}
	if err := b.CheckSelf(); err != nil {
		return v.blockFailure(branch, no, err)
	}
	var want Hash
	if no == top {
		want, _ = v.headOf(v.st, branch, no)
	} else {
		childRaw, err := v.st.Block(branch, no+1)
		if err != nil {
			return v.blockFailure(branch, no+1, &Mismatch{What: "block", Expected: "the block verified before", Actual: err.Error()})
		}
		child, err := v.parseBlockAt(branch, no+1, childRaw)
		if err != nil {
			return err
		}
		want = child.Prev
	}
	if b.Branch != branch || b.No != no || b.Hash != want {
		return v.blockFailure(branch, no, &Mismatch{What: "block rewritten", Expected: "the block verified before, hash " + want.String(), Actual: fmt.Sprintf("block %s/%d with hash %s", b.Branch, b.No, b.Hash)})
	}
	in.hashEntries[string(store.BlockHashKey(b.Hash))] = true
	in.rep.CheckedBlocks++
	return nil
}

// hashEntriesChanged: a block-by-hash entry changes only with its block.
func (in *incremental) hashEntriesChanged() error {
	return in.v.st.Changes(store.PrefixBlockHash, in.since, false, func(c store.Change) error {
		if c.Deleted || !in.hashEntries[string(c.Key)] {
			return fallback("block-by-hash entry %s changed without its block", entryName(c.Key))
		}
		return nil
	})
}

// maxIncrementalRecords bounds the records one incremental run checks: it holds a
// few bytes per record (the index entries to expect), and beyond this many changes a
// full verification, which streams, is the better buy anyway.
var maxIncrementalRecords = 200_000

// records checks the records written since, and notes the deleted ones.
func (in *incremental) records() error {
	v := in.v
	if err := v.st.Changes(store.PrefixRecord, in.since, false, func(store.Change) error {
		if in.recordsChanged++; in.recordsChanged > maxIncrementalRecords {
			return fallback("more than %d records changed since the last verification", maxIncrementalRecords)
		}
		return nil
	}); err != nil {
		return err
	}
	each := func(fn func(txID [32]byte, raw []byte) error) error {
		return v.st.Changes(store.PrefixRecord, in.since, true, func(c store.Change) error {
			txID, err := store.ParseRecordKey(c.Key)
			if err != nil {
				return err
			}
			if c.Deleted {
				in.deleted[Hash(txID)] = in.deletedLocation(txID, c.Key)
				return nil
			}
			return fn(txID, c.Value)
		})
	}
	done := func(r *Record) { // under checkRecords' lock
		tk, _ := store.ThingIndexKey(r.Thing, r.Time, r.TxID) // checkRecord built it
		in.indexEntries.add(store.KeyIndexKey(r.Key, r.TxID))
		in.indexEntries.add(tk)
		in.indexEntries.add(store.AttachmentKey(r.Block.Branch, r.Block.No, r.Seq))
		in.touched[blockPos{r.Block.Branch, r.Block.No}] = true
	}
	if _, err := v.checkRecords(each, done); err != nil {
		return err
	}
	in.rep.CheckedRecords = v.counts.records
	return nil
}

// deletedLocation names a deleted record from its last value, if Badger still keeps it.
func (in *incremental) deletedLocation(txID [32]byte, key []byte) Location {
	loc := Location{Record: Hash(txID).String()}
	if old, ok, err := in.v.st.Before(key, in.since); err == nil && ok {
		loc = recordLocation(txID, old, Location{})
	}
	loc.Entry = entryName(key)
	return loc
}

// indexEntriesChanged: index entries written belong to the records checked; deleted
// ones to records deleted, or else their record must fail its own check.
func (in *incremental) indexEntriesChanged() error {
	v := in.v
	for _, prefix := range []byte{store.PrefixKeyIndex, store.PrefixThingIndex, store.PrefixAttachment} {
		err := v.st.Changes(prefix, in.since, false, func(c store.Change) error {
			if !c.Deleted {
				if !in.indexEntries.has(c.Key) {
					return fallback("index entry %s changed without its record", entryName(c.Key))
				}
				return nil
			}
			return in.indexEntryDeleted(c.Key)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// indexEntryDeleted accounts for a deleted index entry: part of a deleted record
// (whose location it completes), or taken from a record that is still there.
func (in *incremental) indexEntryDeleted(key []byte) error {
	v := in.v
	var txID [32]byte
	var fill func(*Location)
	switch key[0] {
	case store.PrefixKeyIndex:
		k, id, err := store.ParseKeyIndexKey(key)
		if err != nil {
			return err
		}
		txID, fill = id, func(l *Location) {
			if l.Key == "" {
				l.Key = Key(k).String()
			}
		}
	case store.PrefixThingIndex:
		thing, _, id, err := store.ParseThingIndexKey(key)
		if err != nil {
			return err
		}
		txID, fill = id, func(l *Location) {
			if l.Thing == "" {
				l.Thing = thing
			}
		}
	default: // an attachment: its txID is its old value
		branch, no, _, err := store.ParseAttachmentKey(key)
		if err != nil {
			return err
		}
		old, ok, err := v.st.Before(key, in.since)
		if err != nil {
			return err
		}
		if (!ok || len(old) != 32) && len(in.deleted) > 0 {
			return nil // records were deleted: that is the failure to report
		}
		if !ok || len(old) != 32 {
			return fallback("attachment %s was deleted and Badger no longer tells of which record", entryName(key))
		}
		txID, fill = [32]byte(old), func(l *Location) {
			if l.Block == "" {
				l.Block = blockName(branch, no)
			}
		}
	}
	if loc, ok := in.deleted[Hash(txID)]; ok {
		fill(&loc)
		in.deleted[Hash(txID)] = loc
		return nil
	}
	raw, err := v.st.Record(txID)
	if errors.Is(err, store.ErrNotFound) {
		return fallback("index entry %s was deleted with a record deleted before the last verification", entryName(key))
	}
	if err != nil {
		return err
	}
	if _, _, err := v.checkRecord(v.st, txID, raw); err != nil {
		return err
	}
	return fallback("index entry %s was deleted, its record still checks", entryName(key))
}

// deletions fails on the first verified record deleted (in txID order): only
// DropCopies deletes records, and it marks the store.
func (in *incremental) deletions() error {
	if len(in.deleted) == 0 {
		return nil
	}
	ids := make([]Hash, 0, len(in.deleted))
	for id := range in.deleted {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	// Copies of other branches go whenever the ring's repair drops them, and a
	// large DropCopies commits in several transactions, its mark in the last: a
	// verification between them sees deletions without the mark. Only a record
	// of this node's own branch, which is never dropped, fails here; any other
	// deletion (or one whose record Badger no longer tells) verifies in full.
	own := in.v.self.String() + "/"
	for _, id := range ids {
		if !strings.HasPrefix(in.deleted[id].Block, own) {
			return fallback("records of other branches were deleted since the last verification (%d record(s))", len(ids))
		}
	}
	loc := in.deleted[ids[0]]
	return failAt(loc.describeRecord(), loc, &Mismatch{What: "record", Expected: "the record verified before", Actual: fmt.Sprintf("deleted from the store (%d record(s) deleted)", len(ids))})
}

// seals checks again the seal over each block whose records changed, where the next
// block was verified before (new blocks were checked with theirs).
func (in *incremental) seals() error {
	v := in.v
	blocks := make([]blockPos, 0, len(in.touched))
	for p := range in.touched {
		blocks = append(blocks, p)
	}
	sort.Slice(blocks, func(i, j int) bool {
		if c := bytes.Compare(blocks[i].branch[:], blocks[j].branch[:]); c != 0 {
			return c < 0
		}
		return blocks[i].no < blocks[j].no
	})
	for _, p := range blocks {
		sealer := blockPos{p.branch, p.no + 1}
		if in.checkedBlocks[sealer] || p.no+1 > v.tops[p.branch] {
			continue
		}
		b, err := in.verifiedBlock(p.branch, p.no+1)
		if err != nil {
			return err
		}
		partial, err := v.checkSeal(b, p.branch, p.no)
		if err != nil {
			return v.blockFailure(p.branch, p.no+1, err)
		}
		if partial {
			v.partial[sealer] = true
		} else {
			delete(v.partial, sealer)
		}
	}
	return nil
}

// totals fills the report's counts of the whole store: blocks and branches from the
// tops, partial blocks from the remembered set as updated, unsealed records from the
// head blocks' attachments, and records as remembered or, when records changed, by
// counting their key-index entries (keys only).
func (in *incremental) totals() error {
	v, rep := in.v, in.rep
	for b, top := range v.tops {
		rep.Branches++
		rep.Blocks += int(top)
		n, err := v.st.BlockRecords(b, top)
		if err != nil {
			return err
		}
		rep.Unsealed += len(n)
	}
	for b := range v.recordBranches {
		if _, ok := v.tops[b]; ok {
			continue
		}
		n, err := v.st.BlockRecords(b, 0)
		if err != nil {
			return err
		}
		rep.Unsealed += len(n)
	}
	rep.Partial = len(v.partial)
	rep.Records = in.prev.Records
	if in.recordsChanged == 0 {
		return nil
	}
	// A record written again is not a new one, and Badger may have forgotten the
	// version before: count instead. Every verified record has exactly one key-index
	// entry (checked when it was verified, and any change since was checked), and
	// those entries are keys alone, far fewer bytes to walk than the records.
	n, err := v.st.Count(store.PrefixKeyIndex)
	if err != nil {
		return err
	}
	rep.Records = n
	return nil
}

// entrySet is a set of store keys held as 64-bit hashes (8 bytes a key instead of
// the key): with a seed drawn for each run, a key outside the set matches one in it
// with probability about n/2^64, which nobody can aim at.
type entrySet struct {
	seed maphash.Seed
	set  map[uint64]struct{}
}

func newEntrySet() entrySet { return entrySet{seed: maphash.MakeSeed(), set: map[uint64]struct{}{}} }

func (e entrySet) add(key []byte) { e.set[maphash.Bytes(e.seed, key)] = struct{}{} }

func (e entrySet) has(key []byte) bool {
	_, ok := e.set[maphash.Bytes(e.seed, key)]
	return ok
}
