package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/flownode/flownode/store"
)

// ProofCheck verifies a block's proof against its parent's proof seed (the genesis hash
// for block 1) and returns the block's own proof, the seed of its child's draw
// (miner.Params.Check and miner.ProofDigest).
type ProofCheck func(parentProof [32]byte, parentTime int64, branch [20]byte, nonce uint64, blockTime int64) (proof [32]byte, err error)

// Report is the verifier's answer: valid, or the first failure found with its place.
// The counts are of the whole store, whichever the mode.
type Report struct {
	Valid    bool   `json:"valid"`
	Where    string `json:"where,omitempty"`
	Expected string `json:"expected,omitempty"`
	Actual   string `json:"actual,omitempty"`
	// Location names the failure's record, block and store entry/file, as far as
	// they apply and the damaged bytes tell them.
	Location *Location `json:"location,omitempty"`
	Branches int       `json:"branches"`
	Blocks   int       `json:"blocks"`
	Records  int       `json:"records"`
	Unsealed int       `json:"unsealed"` // records in head blocks, not yet sealed
	Partial  int       `json:"partial"`  // blocks whose seal covers records this node does not hold

	// Mode is "full" (everything read) or "incremental" (what changed since the
	// store version Since, the last verification that passed, was read).
	Mode  string `json:"mode"`
	Since uint64 `json:"since,omitempty"`
	At    uint64 `json:"at,omitempty"` // the store version verified
	// Fallback says why a full verification ran when an incremental one was asked.
	Fallback string `json:"fallback,omitempty"`
	// CheckedBlocks and CheckedRecords are what this run read and checked.
	CheckedBlocks  int `json:"checkedBlocks"`
	CheckedRecords int `json:"checkedRecords"`
	// Alerts are findings beyond the store's own consistency that a layer above adds
	// (node.Node.Verify: package witness's equivocations). Any alert makes the
	// report invalid.
	Alerts []Alert `json:"alerts,omitempty"`
}

// Alert is one finding a layer above the store adds to a Report.
type Alert struct {
	Kind     string          `json:"kind"` // "equivocation"
	Branch   Key             `json:"branch"`
	Detail   string          `json:"detail"`
	Evidence json.RawMessage `json:"evidence,omitempty"`
}

// Alert adds a to the report; the first alert of a valid report becomes its failure.
func (r *Report) Alert(a Alert, expected, actual string) {
	r.Alerts = append(r.Alerts, a)
	if r.Valid {
		r.Valid = false
		r.Where = a.Kind + " of branch " + a.Branch.String() + ": " + a.Detail
		r.Expected, r.Actual = expected, actual
	}
}

// Report modes.
const (
	ModeFull        = "full"
	ModeIncremental = "incremental"
)

// Failure is a verification failure at a named place.
type Failure struct {
	Where string
	Loc   *Location // nil: Where is all that is known
	Err   error
}

func (f *Failure) Error() string { return f.Where + ": " + f.Err.Error() }

func fail(where string, err error) *Failure { return &Failure{Where: where, Err: err} }

// failAt is fail with a location.
func failAt(where string, loc Location, err error) *Failure {
	return &Failure{Where: where, Loc: &loc, Err: err}
}

// fillFailure turns err into the report's failure fields when it is a *Failure and
// reports whether it was one.
func fillFailure(rep *Report, err error) bool {
	var f *Failure
	if !errors.As(err, &f) {
		return false
	}
	rep.Valid = false
	rep.Where = f.Where
	rep.Location = f.Loc
	var m *Mismatch
	if errors.As(f.Err, &m) {
		rep.Where = f.Where + ": " + m.What
		rep.Expected, rep.Actual = m.Expected, m.Actual
	} else {
		rep.Actual = f.Err.Error()
	}
	return true
}

type blockPos struct {
	branch Key
	no     uint64
}

// Verify checks everything the store holds: each branch chained to genesis with valid
// hashes, signatures and proofs; each seal equal to the Merkle root of its parent's
// records; each record's canonical form, signature, H_DATA, txID and block; and every
// index entry, both ways. It returns a Report with the first failure, or an error if it
// could not read the store (then nothing is known).
//
// self is the branch of the node the store belongs to. A node holds all the records of
// its own branch, so that branch's seals must be complete. Of another branch it holds
// only the records it was given (as a replica or a key's owner): when it holds fewer
// records of a block than the seal of the next block covers, the seal cannot be
// recomputed, and that block is counted in Report.Partial instead. Holding more records
// than the seal covers, and everything else — blocks chained from block 1, proofs, signatures,
// records, index entries both ways — is checked strictly on every branch. A zero self
// (Key{}) makes every branch strict: verification of a store whose node is unknown.
//
// It checks one moment of the store: all its reads go through snapshots taken at the
// same commit, so a node taking writes meanwhile is verified as it was when Verify began.
func Verify(ctx context.Context, st *store.Store, g *Genesis, proof ProofCheck, self Key) (*Report, error) {
	snaps, err := st.Snapshots(runtime.GOMAXPROCS(0) + 1)
	if err != nil {
		return nil, err
	}
	defer closeAll(snaps)
	rep, _, err := verifyFull(ctx, st, snaps, g, proof, self)
	return rep, err
}

func closeAll(snaps []*store.Snapshot) {
	for _, sn := range snaps {
		sn.Close()
	}
}

// verifyFull verifies everything snaps (taken at one moment) see and returns the
// verifier, which holds what an incremental verification resumes from.
func verifyFull(ctx context.Context, st *store.Store, snaps []*store.Snapshot, g *Genesis, proof ProofCheck, self Key) (*Report, *verifier, error) {
	rep := &Report{Mode: ModeFull, At: snaps[0].Version()}
	v := newVerifier(ctx, st, snaps, g, proof, self)
	err := v.run(rep)
	if fillFailure(rep, err) {
		return rep, v, nil
	}
	if err != nil {
		return nil, nil, err
	}
	rep.CheckedBlocks, rep.CheckedRecords = rep.Blocks, rep.Records
	rep.Valid = true
	return rep, v, nil
}

func newVerifier(ctx context.Context, st *store.Store, snaps []*store.Snapshot, g *Genesis, proof ProofCheck, self Key) *verifier {
	return &verifier{ctx: ctx, db: st, st: &snaps[0].Reader, workers: snaps[1:], g: g, proof: proof, self: self,
		heads: map[blockPos]Hash{}, tops: map[Key]uint64{}, partial: map[blockPos]bool{}, recordBranches: map[Key]bool{}}
}

type verifier struct {
	ctx     context.Context
	db      *store.Store      // for naming the Badger file of a failure (store.Locate)
	st      *store.Reader     // the scanning goroutine's snapshot
	workers []*store.Snapshot // one per record-checking goroutine, at the same moment
	g       *Genesis
	proof   ProofCheck
	self    Key // the branch whose seals must be complete; zero: every branch

	headsMu sync.RWMutex
	heads   map[blockPos]Hash // block hashes by position: every block (full), or those read so far (incremental)
	// lazyHeads, when set, reads a block missing from heads from the store: the
	// incremental verifier knows only the blocks it read.
	lazyHeads bool

	tops    map[Key]uint64    // each branch's highest block
	partial map[blockPos]bool // blocks whose seal covers records this node does not hold

	branchMu       sync.Mutex
	recordBranches map[Key]bool // branches with records, for those that have no block yet

	counts struct{ records, keyIdx, thingIdx, attach int }
}

// headOf returns the hash of block no of branch (the genesis hash for block 0), and
// whether such a block is known.
func (v *verifier) headOf(st *store.Reader, branch Key, no uint64) (Hash, bool) {
	if no == 0 {
		return v.g.Hash, true
	}
	pos := blockPos{branch, no}
	v.headsMu.RLock()
	h, ok := v.heads[pos]
	v.headsMu.RUnlock()
	if ok || !v.lazyHeads {
		return h, ok
	}
	if top, known := v.tops[branch]; !known || no > top {
		return Hash{}, false
	}
	raw, err := st.Block(branch, no)
	if err != nil {
		return Hash{}, false
	}
	b, err := ParseBlock(raw)
	if err != nil {
		return Hash{}, false
	}
	v.headsMu.Lock()
	v.heads[pos] = b.Hash
	v.headsMu.Unlock()
	return b.Hash, true
}

func (v *verifier) setHead(branch Key, no uint64, h Hash) {
	v.headsMu.Lock()
	v.heads[blockPos{branch, no}] = h
	v.headsMu.Unlock()
}

// blockLocation names block no of branch and its store entry.
func (v *verifier) blockLocation(branch Key, no uint64) Location {
	return locate(v.db, store.BlockKey(branch, no), Location{Block: blockName(branch, no)})
}

func (v *verifier) run(rep *Report) error {
	stored, err := v.st.Meta(metaGenesis)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err == nil && !bytes.Equal(stored, v.g.Bytes) {
		return fail("genesis", &Mismatch{What: "genesis block", Expected: string(v.g.Bytes), Actual: string(stored)})
	}
	if err := v.blocks(rep); err != nil {
		return err
	}
	if err := v.records(rep); err != nil {
		return err
	}
	return v.indices()
}

// blocks walks every branch in order, checking each block against its parent.
func (v *verifier) blocks(rep *Report) error {
	var prev *Block
	err := v.st.EachBlock(func(branch [20]byte, no uint64, raw []byte) error {
		if err := v.ctx.Err(); err != nil {
			return err
		}
		if prev != nil && prev.Branch != branch {
			prev = nil
		}
		b, err := v.parseBlockAt(Key(branch), no, raw)
		if err != nil {
			return err
		}
		partial, err := v.checkBlock(b, prev, Key(branch), no)
		if err != nil {
			return v.blockFailure(Key(branch), no, err)
		}
		if partial {
			rep.Partial++
			v.partial[blockPos{branch, no}] = true
		}
		v.setHead(Key(branch), no, b.Hash)
		v.tops[branch] = no
		if prev == nil {
			rep.Branches++
		}
		rep.Blocks++
		prev = b
		return nil
	})
	return err
}

// checkBlock checks the block stored at branch/no against its parent (prev; nil for
// genesis) and its seal. It reports whether the seal covers records the store does
// not hold (only ever on a branch other than v.self).
func (v *verifier) checkBlock(b, prev *Block, branch Key, no uint64) (partial bool, err error) {
	if b.Branch != branch || b.No != no {
		return false, &Mismatch{What: "block position", Expected: fmt.Sprintf("%s/%d", branch, no), Actual: fmt.Sprintf("%s/%d", b.Branch, b.No)}
	}
	if err := checkLink(b, prev, v.g, v.proof); err != nil {
		return false, err
	}
	gotBranch, gotNo, err := v.st.BlockByHash(b.Hash)
	if err != nil || Key(gotBranch) != branch || gotNo != no {
		return false, &Mismatch{What: "block hash index", Expected: fmt.Sprintf("%s -> %s/%d", b.Hash, branch, no), Actual: fmt.Sprintf("%s/%d (%v)", Key(gotBranch), gotNo, err)}
	}
	return v.checkSeal(b, branch, no-1)
}

// parseBlockAt parses the block stored at branch/no, failing at its place.
func (v *verifier) parseBlockAt(branch Key, no uint64, raw []byte) (*Block, error) {
	b, err := ParseBlock(raw)
	if err != nil {
		return nil, v.blockFailure(branch, no, err)
	}
	return b, nil
}

// blockFailure places err at block no of branch, unless it is already placed (a
// record that a seal check found changed).
func (v *verifier) blockFailure(branch Key, no uint64, err error) error {
	var f *Failure
	if errors.As(err, &f) {
		return err
	}
	return failAt(fmt.Sprintf("block %d of branch %s", no, branch), v.blockLocation(branch, no), err)
}

// checkLink checks what a block proves with its parent (nil: the genesis block): its
// own hash, branch and signature, its network, its number, prev and proof. Verify and
// Ingest share it.
func checkLink(b, parent *Block, g *Genesis, proof ProofCheck) error {
	if err := b.CheckSelf(); err != nil {
		return err
	}
	if b.Network != g.Hash {
		return &Mismatch{What: "block network", Expected: g.Hash.String(), Actual: b.Network.String()}
	}
	parentHash, parentProof, parentTime, parentNo := g.Hash, g.Hash, int64(0), uint64(0)
	if parent != nil {
		parentHash, parentProof, parentTime, parentNo = parent.Hash, parent.Proof, parent.Time, parent.No
	}
	if b.No != parentNo+1 {
		return &Mismatch{What: "block number", Expected: fmt.Sprint(parentNo + 1), Actual: fmt.Sprint(b.No)}
	}
	if b.Prev != parentHash {
		return &Mismatch{What: "block prev", Expected: parentHash.String(), Actual: b.Prev.String()}
	}
	got, err := proof(parentProof, parentTime, b.Branch, b.Nonce, b.Time)
	if err != nil {
		return fmt.Errorf("proof: %w", err)
	}
	if got != b.Proof {
		return &Mismatch{What: "block proof seed", Expected: Hash(got).String(), Actual: b.Proof.String()}
	}
	return nil
}

// checkSeal recomputes the Merkle root over the records attached to the parent. On a
// branch other than v.self (when v.self is set), fewer records than the seal covers
// make the block partial. (Positions are not checked against the count: a batch whose
// write failed leaves its positions unused, so positions may exceed it.)
func (v *verifier) checkSeal(b *Block, branch Key, parentNo uint64) (partial bool, err error) {
	attached, err := v.st.BlockRecords(branch, parentNo)
	if err != nil {
		return false, err
	}
	if uint64(len(attached)) < b.Sealed && !v.self.IsZero() && branch != v.self {
		return true, nil
	}
	leaves := make([]Hash, len(attached))
	raws := make([][]byte, len(attached))
	for i, a := range attached {
		raw, err := v.st.Record(a.TxID)
		if err != nil {
			loc := locate(v.db, store.RecordKey(a.TxID), Location{Record: Hash(a.TxID).String(), Block: blockName(branch, parentNo)})
			return false, failAt(fmt.Sprintf("record %s of block %d of branch %s, sealed by block %d", Hash(a.TxID), parentNo, branch, b.No), loc,
				&Mismatch{What: "sealed record", Expected: fmt.Sprintf("record %s at position %d of block %d", Hash(a.TxID), a.Seq, parentNo), Actual: err.Error()})
		}
		leaves[i], raws[i] = LeafHash(raw), raw
	}
	if uint64(len(leaves)) != b.Sealed {
		return false, &Mismatch{What: "sealed record count", Expected: fmt.Sprint(len(leaves)), Actual: fmt.Sprint(b.Sealed)}
	}
	if root := MerkleRoot(leaves); root != b.Seal {
		// The seal names only the block: find the record whose bytes changed.
		if err := v.sealedRecordChanged(attached, raws, branch, parentNo, b.No); err != nil {
			return false, err
		}
		return false, &Mismatch{What: "seal (Merkle root of the parent's records)", Expected: root.String(), Actual: b.Seal.String()}
	}
	return false, nil
}

// sealedRecordChanged looks, after a seal mismatch, for a sealed record that no
// longer verifies on its own, and fails there: a changed byte is then named by its
// record, not only by the seal that no longer matches.
func (v *verifier) sealedRecordChanged(attached []store.Attached, raws [][]byte, branch Key, parentNo, sealedBy uint64) error {
	for i, a := range attached {
		txID := Hash(a.TxID)
		if _, err := CheckStored(v.db, txID, raws[i], Location{Block: blockName(branch, parentNo)}); err != nil {
			var te *TamperedError
			errors.As(err, &te)
			return failAt(fmt.Sprintf("%s, sealed by block %d", te.Location.describeRecord(), sealedBy), te.Location, te.Err)
		}
	}
	return nil
}

// records checks every record on a pool of workers: signatures dominate the cost.
func (v *verifier) records(rep *Report) error {
	unsealed, err := v.checkRecords(v.st.EachRecord, nil)
	if err != nil {
		return err
	}
	rep.Records, rep.Unsealed = v.counts.records, unsealed
	return nil
}

// checkRecords checks the records each emits, on a pool of workers (one snapshot
// each), and hands each checked record to done (nil: none; called from the workers,
// one at a time). It returns how many are still unsealed, or the first failure.
func (v *verifier) checkRecords(each func(fn func(txID [32]byte, raw []byte) error) error, done func(*Record)) (unsealed int, err error) {
	type item struct {
		txID [32]byte
		raw  []byte
	}
	work := make(chan item, 256)
	ctx, cancel := context.WithCancel(v.ctx)
	defer cancel()
	var (
		once     sync.Once
		firstErr error
		mu       sync.Mutex
		wg       sync.WaitGroup
	)
	setErr := func(err error) {
		once.Do(func() { firstErr = err; cancel() })
	}
	for _, snap := range v.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				r, open, err := v.checkRecord(&snap.Reader, it.txID, it.raw)
				if err != nil {
					setErr(err)
					continue
				}
				mu.Lock()
				if open {
					unsealed++
				}
				if done != nil {
					done(r)
				}
				mu.Unlock()
			}
		}()
	}
	scanErr := each(func(txID [32]byte, raw []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		v.counts.records++
		work <- item{txID, raw}
		return nil
	})
	close(work)
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return unsealed, scanErr
}

// checkRecord verifies one record and that its three index entries exist. It reports
// whether the record is still unsealed (attached to its branch's head block).
func (v *verifier) checkRecord(st *store.Reader, txID [32]byte, raw []byte) (rec *Record, unsealed bool, err error) {
	r, err := CheckStored(v.db, txID, raw, Location{})
	if err != nil {
		var te *TamperedError
		errors.As(err, &te)
		return nil, false, failAt(te.Location.describeRecord(), te.Location, te.Err)
	}
	loc := recordLocation(txID, raw, Location{})
	where := loc.describeRecord()
	want, ok := v.headOf(st, r.Block.Branch, r.Block.No)
	if !ok || want != r.Block.Hash {
		return nil, false, failAt(where, locate(v.db, store.RecordKey(txID), loc), &Mismatch{What: "record block", Expected: fmt.Sprintf("block %d of branch %s with hash %s", r.Block.No, r.Block.Branch, want), Actual: r.Block.Hash.String()})
	}
	thingKey, err := store.ThingIndexKey(r.Thing, r.Time, r.TxID)
	if err != nil {
		return nil, false, failAt(where, loc, err)
	}
	checks := []struct {
		what string
		key  []byte
		val  []byte // nil: any value
	}{
		{"key index entry", store.KeyIndexKey(r.Key, r.TxID), nil},
		{"thing index entry", thingKey, nil},
		{"block attachment entry", store.AttachmentKey(r.Block.Branch, r.Block.No, r.Seq), r.TxID[:]},
	}
	for _, c := range checks {
		val, err := st.Get(c.key)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil, false, failAt(where, locate(nil, c.key, loc), &Mismatch{What: c.what, Expected: fmt.Sprintf("entry %x", c.key), Actual: "no such entry"})
		case err != nil:
			return nil, false, err
		case c.val != nil && !bytes.Equal(val, c.val):
			return nil, false, failAt(where, locate(v.db, c.key, loc), &Mismatch{What: c.what, Expected: fmt.Sprintf("%x", c.val), Actual: fmt.Sprintf("%x", val)})
		}
	}
	top, hasBlocks := v.tops[r.Block.Branch]
	if !hasBlocks {
		v.branchMu.Lock()
		v.recordBranches[r.Block.Branch] = true
		v.branchMu.Unlock()
	}
	return r, !hasBlocks && r.Block.No == 0 || hasBlocks && r.Block.No == top, nil
}

// indices counts index entries. Every record was found to have its own entry of each
// kind, so when the counts match there is nothing else; a surplus means an entry that
// points nowhere or at the wrong record, and a second, slower pass names it.
func (v *verifier) indices() error {
	if err := v.scanIndices(true); err != nil {
		return err
	}
	n := v.counts.records
	if v.counts.keyIdx == n && v.counts.thingIdx == n && v.counts.attach == n {
		return nil
	}
	if err := v.scanIndices(false); err != nil {
		return err
	}
	return fail("indices", &Mismatch{What: "index entries (key, thing, attachment)", Expected: fmt.Sprintf("%d each", n),
		Actual: fmt.Sprintf("%d, %d, %d", v.counts.keyIdx, v.counts.thingIdx, v.counts.attach)})
}

// scanIndices walks the three indices, counting entries. Unless countOnly, it also
// reads each entry's record and fails on the first that does not match.
func (v *verifier) scanIndices(countOnly bool) error {
	v.counts.keyIdx, v.counts.thingIdx, v.counts.attach = 0, 0, 0
	check := func(what string, entry []byte, txID [32]byte, matches func(*Record) bool) error {
		if countOnly {
			return nil
		}
		return v.indexTarget(what, entry, txID, matches)
	}
	if err := v.st.EachKeyIndex(func(key [20]byte, txID [32]byte) error {
		v.counts.keyIdx++
		return check("key index entry "+Key(key).String(), store.KeyIndexKey(key, txID), txID, func(r *Record) bool { return r.Key == key })
	}); err != nil {
		return err
	}
	if err := v.st.EachThingIndex(func(thing string, t int64, txID [32]byte) error {
		v.counts.thingIdx++
		entry, _ := store.ThingIndexKey(thing, t, txID) // it was read, so thing fits
		return check(fmt.Sprintf("thing index entry %s@%d", thing, t), entry, txID, func(r *Record) bool { return r.Thing == thing && r.Time == t })
	}); err != nil {
		return err
	}
	return v.st.EachAttachment(func(branch [20]byte, no, seq uint64, txID [32]byte) error {
		v.counts.attach++
		return check(fmt.Sprintf("block attachment %s/%d/%d", Key(branch), no, seq), store.AttachmentKey(branch, no, seq), txID,
			func(r *Record) bool { return r.Block.Branch == branch && r.Block.No == no && r.Seq == seq })
	})
}

// indexTarget checks that an index entry points at a stored record it describes.
func (v *verifier) indexTarget(what string, entry []byte, txID [32]byte, matches func(*Record) bool) error {
	loc := locate(v.db, entry, Location{Record: Hash(txID).String()})
	raw, err := v.st.Record(txID)
	if err != nil {
		return failAt(what, loc, &Mismatch{What: "target record", Expected: Hash(txID).String(), Actual: err.Error()})
	}
	r, err := ParseRecord(raw)
	if err != nil || !matches(r) {
		return failAt(what, loc, &Mismatch{What: "target record fields", Expected: "a record matching the entry", Actual: "record " + Hash(txID).String() + " that does not"})
	}
	return nil
}
