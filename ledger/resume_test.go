package ledger

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/flownode/flownode/store"
)

func (f *fixture) verifyInc(full bool) *Report {
	f.t.Helper()
	rep, err := VerifyIncremental(context.Background(), f.st, f.g, testProof, f.id.ID, full)
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

// sameCounts holds an incremental report to the full verification's counts.
func sameCounts(t *testing.T, inc, full *Report) {
	t.Helper()
	if inc.Branches != full.Branches || inc.Blocks != full.Blocks || inc.Records != full.Records ||
		inc.Unsealed != full.Unsealed || inc.Partial != full.Partial {
		t.Fatalf("incremental counts %+v differ from full %+v", inc, full)
	}
}

func TestIncrementalVerifyResumes(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 5; i++ {
		f.put("sensor-1", fmt.Sprint(i))
	}
	f.mine()
	f.put("sensor-1", `"x"`)

	first := f.verifyInc(false)
	if !first.Valid || first.Mode != ModeFull || !strings.Contains(first.Fallback, "no verification") {
		t.Fatalf("first verification: %+v", first)
	}
	for i := 0; i < 7; i++ {
		f.put("sensor-2", fmt.Sprint(i))
	}
	f.mine()
	f.mine()
	for i := 0; i < 3; i++ {
		f.put("sensor-3", fmt.Sprint(i))
	}
	second := f.verifyInc(false)
	if !second.Valid || second.Mode != ModeIncremental || second.Since != first.At || second.At <= first.At {
		t.Fatalf("second verification: %+v", second)
	}
	if second.CheckedRecords != 10 || second.CheckedBlocks != 2 {
		t.Fatalf("checked %d records and %d blocks, want the 10 and 2 written since", second.CheckedRecords, second.CheckedBlocks)
	}
	sameCounts(t, second, f.mustBeValid())

	// Nothing new: nothing read, nothing written.
	third := f.verifyInc(false)
	if !third.Valid || third.Mode != ModeIncremental || third.CheckedRecords != 0 || third.CheckedBlocks != 0 {
		t.Fatalf("third verification: %+v", third)
	}
	sameCounts(t, third, second)

	// After a restart it resumes from what it remembered.
	f.reopen()
	f.put("sensor-4", `1`)
	fourth := f.verifyInc(false)
	if !fourth.Valid || fourth.Mode != ModeIncremental || fourth.CheckedRecords != 1 {
		t.Fatalf("after reopening: %+v", fourth)
	}
	sameCounts(t, fourth, f.mustBeValid())

	if full := f.verifyInc(true); !full.Valid || full.Mode != ModeFull || full.Fallback != "" {
		t.Fatalf("full: %+v", full)
	}
}

// resumable builds a ledger, verifies it (remembering), and returns its receipts.
func resumable(t *testing.T) (*fixture, []Receipt) {
	f := newFixture(t)
	var rcs []Receipt
	for i := 0; i < 4; i++ {
		rcs = append(rcs, f.put("sensor-1", fmt.Sprintf(`{"i":%d}`, i)))
	}
	f.mine()
	rcs = append(rcs, f.put("sensor-2", `{"i":9}`))
	if rep := f.verifyInc(false); !rep.Valid {
		t.Fatalf("%+v", rep)
	}
	return f, rcs
}

// failsTwice asserts that an incremental verification fails, names parts, and that
// the failure was not remembered as passed: the next run fails the same way.
func failsTwice(t *testing.T, f *fixture, parts ...string) *Report {
	t.Helper()
	var rep *Report
	for i := 0; i < 2; i++ {
		rep = f.verifyInc(false)
		if rep.Valid || rep.Mode != ModeIncremental {
			t.Fatalf("run %d: %+v", i, rep)
		}
		for _, p := range parts {
			if !strings.Contains(rep.Where, p) {
				t.Errorf("where %q does not name %q", rep.Where, p)
			}
		}
	}
	t.Logf("incremental: %s (expected %s, actual %s) at %+v", rep.Where, rep.Expected, rep.Actual, rep.Location)
	return rep
}

func TestIncrementalFindsChangedRecord(t *testing.T) {
	f, rcs := resumable(t)
	f.put("sensor-3", `1`) // something legitimate changes too
	k := store.RecordKey(rcs[1].TxID)
	v := rawGet(t, f.st.Raw(), k)
	at := strings.Index(string(v), `"i":1`) + 4
	rawSet(t, f.st.Raw(), k, flipByte(v, at))
	rep := failsTwice(t, f, "record "+rcs[1].TxID.String(), "key "+rcs[1].Key.String(), "thing sensor-1", "block "+f.id.ID.String()+"/0")
	if rep.Location == nil || rep.Location.Entry != "r/"+rcs[1].TxID.String() || rep.Location.File == "" {
		t.Fatalf("location %+v", rep.Location)
	}
}

func TestIncrementalFindsDeletedRecord(t *testing.T) {
	f, rcs := resumable(t)
	r, err := ParseRecord(rcs[4].Record)
	if err != nil {
		t.Fatal(err)
	}
	tk, _ := store.ThingIndexKey(r.Thing, r.Time, r.TxID)
	keys := [][]byte{store.RecordKey(r.TxID), store.KeyIndexKey(r.Key, r.TxID), tk, store.AttachmentKey(r.Block.Branch, r.Block.No, r.Seq)}
	if err := f.st.Raw().Update(func(txn *badger.Txn) error {
		for _, k := range keys {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rep := failsTwice(t, f, "record "+r.TxID.String(), "thing sensor-2", "key "+r.Key.String(), fmt.Sprintf("block %s/1", f.id.ID))
	if !strings.Contains(rep.Actual, "deleted") {
		t.Fatalf("actual %q", rep.Actual)
	}
}

func TestIncrementalFindsRewrittenBlock(t *testing.T) {
	f, _ := resumable(t)
	f.mine()
	if rep := f.verifyInc(false); !rep.Valid {
		t.Fatalf("%+v", rep)
	}
	k := store.BlockKey(f.id.ID, 1)
	v := rawGet(t, f.st.Raw(), k)
	at := strings.Index(string(v), `"time":"`) + len(`"time":"`) + 5
	rawSet(t, f.st.Raw(), k, flipByte(v, at))
	rep := failsTwice(t, f, "block 1 of branch "+f.id.ID.String())
	if rep.Location == nil || rep.Location.Block != f.id.ID.String()+"/1" {
		t.Fatalf("location %+v", rep.Location)
	}
}

func TestIncrementalFindsRemovedIndexEntry(t *testing.T) {
	f, rcs := resumable(t)
	if err := f.st.Raw().Update(func(txn *badger.Txn) error { return txn.Delete(store.KeyIndexKey(rcs[2].Key, rcs[2].TxID)) }); err != nil {
		t.Fatal(err)
	}
	failsTwice(t, f, "record "+rcs[2].TxID.String(), "key index entry")
}

func TestIncrementalFallsBackAfterDroppedCopies(t *testing.T) {
	f, _ := resumable(t)
	if err := f.st.Write(context.Background(), store.Write{Meta: map[string][]byte{metaCopiesDropped: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	rep := f.verifyInc(false)
	if !rep.Valid || rep.Mode != ModeFull || !strings.Contains(rep.Fallback, "dropped") {
		t.Fatalf("%+v", rep)
	}
	if rep := f.verifyInc(false); !rep.Valid || rep.Mode != ModeIncremental {
		t.Fatalf("after the full one: %+v", rep)
	}
}

// TestIncrementalVerifyWhileWriting runs incremental verifications while records are
// appended and blocks mined: each sees one moment of the store, so each is valid,
// and together they match a full verification at the end.
func TestIncrementalVerifyWhileWriting(t *testing.T) {
	f := newFixture(t)
	f.put("sensor-0", `0`)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 60; i++ {
			if _, err := f.l.Append(context.Background(), []Reading{{Thing: "sensor-w", Data: []byte(fmt.Sprint(i))}}); err != nil {
				t.Error(err)
				return
			}
			if i%10 == 9 {
				if err := f.l.Extend(context.Background(), 1, f.advance(1e9)); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	for i := 0; i < 8; i++ {
		if rep := f.verifyInc(false); !rep.Valid {
			t.Fatalf("run %d: %+v", i, rep)
		}
	}
	wg.Wait()
	rep := f.verifyInc(false)
	if !rep.Valid || rep.Mode != ModeIncremental {
		t.Fatalf("%+v", rep)
	}
	sameCounts(t, rep, f.mustBeValid())
}

// TestIncrementalOfReplicatedBranches: another node's branch arrives in parts —
// records that leave a seal partial, the rest that complete it, a new block, records
// of a branch with no block yet — then copies are dropped. Each incremental run
// agrees with a full verification's counts; the drop makes the next run full.
func TestIncrementalOfReplicatedBranches(t *testing.T) {
	a, d := nodeWithBranch(t)
	b := newFixture(t)
	ctx := context.Background()
	b.put("local", `1`)
	if rep := b.verifyInc(false); !rep.Valid || rep.Mode != ModeFull {
		t.Fatalf("%+v", rep)
	}
	step := func(what string, wantMode string) *Report {
		t.Helper()
		rep := b.verifyInc(false)
		if !rep.Valid || rep.Mode != wantMode {
			t.Fatalf("%s: %+v", what, rep)
		}
		sameCounts(t, rep, b.mustBeValid())
		return rep
	}
	some := append(append([][]byte(nil), d.byBlock[0][1:3]...), d.byBlock[1]...)
	if _, err := b.l.Ingest(ctx, d.blocks, some); err != nil {
		t.Fatal(err)
	}
	if rep := step("part of A's branch", ModeIncremental); rep.Partial != 1 || rep.CheckedBlocks != 2 || rep.CheckedRecords != 4 {
		t.Fatalf("part of A's branch: %+v", rep)
	}
	if _, err := b.l.Ingest(ctx, nil, d.records); err != nil {
		t.Fatal(err)
	}
	if rep := step("the rest of it", ModeIncremental); rep.Partial != 0 || rep.CheckedRecords != 3 {
		t.Fatalf("the rest of A's branch: %+v", rep)
	}
	a.mine()
	more := exportBranch(t, a)
	if _, err := b.l.Ingest(ctx, more.blocks[1:], more.byBlock[2]); err != nil {
		t.Fatal(err)
	}
	if rep := step("A's next block", ModeIncremental); rep.CheckedBlocks != 1 {
		t.Fatalf("A's next block: %+v", rep)
	}
	c := newFixture(t)
	c.put("sensor-c", `1`)
	if _, err := b.l.Ingest(ctx, nil, exportBranch(t, c).records); err != nil {
		t.Fatal(err)
	}
	if rep := step("a branch without blocks", ModeIncremental); rep.Unsealed != 2 {
		t.Fatalf("a branch without blocks: %+v", rep)
	}
	r, _ := ParseRecord(d.byBlock[0][0])
	if n, err := b.l.DropCopies(ctx, [][32]byte{r.TxID}, nil, nil); err != nil || n != 1 {
		t.Fatalf("drop: %d %v", n, err)
	}
	if rep := step("dropped copies", ModeFull); rep.Partial != 1 || !strings.Contains(rep.Fallback, "dropped") {
		t.Fatalf("after the drop: %+v", rep)
	}
	step("after the drop", ModeIncremental)
}

func TestIncrementalFallsBackOnTooManyChanges(t *testing.T) {
	f, _ := resumable(t)
	defer func(n int) { maxIncrementalRecords = n }(maxIncrementalRecords)
	maxIncrementalRecords = 2
	for i := 0; i < 3; i++ {
		f.put("sensor-9", fmt.Sprint(i))
	}
	rep := f.verifyInc(false)
	if !rep.Valid || rep.Mode != ModeFull || !strings.Contains(rep.Fallback, "more than 2 records changed") {
		t.Fatalf("%+v", rep)
	}
	f.put("sensor-9", `9`)
	if rep := f.verifyInc(false); !rep.Valid || rep.Mode != ModeIncremental || rep.CheckedRecords != 1 {
		t.Fatalf("after the full one: %+v", rep)
	}
}
