package ledger

import (
	"context"
	"testing"

	"github.com/flownode/flownode/store"
)

// blockHashes reads the own branch's block hashes 1..head from the store: the
// oracle the tree is checked against.
func (f *fixture) blockHashes() []Hash {
	f.t.Helper()
	no := f.l.HeadRef().No
	var out []Hash
	for i := uint64(1); i <= uint64(no); i++ {
		raw, err := f.st.Block(f.id.ID, i)
		if err != nil {
			f.t.Fatal(err)
		}
		b, err := ParseBlock(raw)
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, b.Hash)
	}
	return out
}

func leavesOf(blocks []Hash) []Hash {
	out := make([]Hash, len(blocks))
	for i, h := range blocks {
		out[i] = BlockLeaf(h)
	}
	return out
}

// checkTree checks every root, inclusion and consistency proof of the tree against
// roots recomputed from the blocks.
func checkTree(t *testing.T, f *fixture) {
	t.Helper()
	blocks := f.blockHashes()
	n := uint64(len(blocks))
	if got := f.l.TreeSize(); got != n {
		t.Fatalf("tree size %d, branch has %d blocks", got, n)
	}
	roots := make([]Hash, n+1)
	for size := uint64(0); size <= n; size++ {
		roots[size] = MerkleRoot(leavesOf(blocks[:size]))
		got, err := f.l.TreeRoot(size)
		if err != nil || got != roots[size] {
			t.Fatalf("root of %d blocks: %s (%v), want %s", size, got, err, roots[size])
		}
	}
	for size := uint64(1); size <= n; size++ {
		for no := uint64(1); no <= size; no++ {
			path, err := f.l.BlockInclusion(no, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyBlockInclusion(blocks[no-1], no, size, path, roots[size]); err != nil {
				t.Fatalf("block %d in %d: %v", no, size, err)
			}
			if no > 1 && VerifyBlockInclusion(blocks[no-2], no, size, path, roots[size]) == nil {
				t.Fatalf("block %d's proof verifies block %d", no, no-1)
			}
		}
		for size1 := uint64(0); size1 <= size; size1++ {
			path, err := f.l.BlockConsistency(size1, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyConsistency(size1, size, path, roots[size1], roots[size]); err != nil {
				t.Fatalf("consistency %d→%d: %v", size1, size, err)
			}
		}
	}
	if _, err := f.l.BlockInclusion(1, n+1); err == nil {
		t.Fatal("a proof in a tree larger than the branch")
	}
}

func TestBranchTreeProvesEveryBlock(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 13; i++ {
		f.put("sensor-1", `{"n":1}`)
		f.mine()
	}
	checkTree(t, f)
	f.reopen() // the compact range comes back from the stored nodes
	f.mine()
	checkTree(t, f)
}

// A store whose blocks were mined before the tree was kept gets its tree on open.
func TestBranchTreeIsBuiltForAnOldStore(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 9; i++ {
		f.mine()
	}
	// Forget the tree as an older version would never have written it.
	err := f.st.Raw().DropPrefix([]byte{store.PrefixBranchTree}, store.MetaKey(metaBranchTree))
	if err != nil {
		t.Fatal(err)
	}
	f.reopen()
	checkTree(t, f)
	if err := f.l.Extend(context.Background(), 1, f.advance(1e9)); err != nil {
		t.Fatal(err)
	}
	checkTree(t, f)
}

func TestRecordInclusionProvesEachLeaf(t *testing.T) {
	for n := 1; n <= 17; n++ {
		var leaves []Hash
		var records [][]byte
		for i := 0; i < n; i++ {
			rec := []byte{byte(i), byte(n)}
			records = append(records, rec)
			leaves = append(leaves, LeafHash(rec))
		}
		seal := MerkleRoot(leaves)
		for i := range records {
			path, err := RecordInclusion(leaves, uint64(i))
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyRecordInclusion(records[i], uint64(i), uint64(n), path, seal); err != nil {
				t.Fatalf("record %d of %d: %v", i, n, err)
			}
			flipped := append([]byte(nil), records[i]...)
			flipped[0] ^= 1
			if VerifyRecordInclusion(flipped, uint64(i), uint64(n), path, seal) == nil {
				t.Fatalf("record %d of %d: a flipped bit verifies", i, n)
			}
		}
	}
}
