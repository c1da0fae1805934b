package ledger

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/flownode/flownode/store"
)

// The branch tree is the RFC 6962 Merkle tree over a branch's block hashes: leaf i is
// SHA256(0x00 ‖ H_BLOCK of block i+1), so a tree of size N commits to blocks 1..N,
// in order. A checkpoint signs its root; an inclusion proof shows one block is in it,
// and a consistency proof that a later tree extends an earlier one. A hash chain
// proves the same, but only by handing over every block in between.
//
// The ledger keeps the tree of its own branch: every complete node is written with
// the block that completes it (store.TreeNode), and the compact range (the right
// border, at most log2 N hashes) stays in memory so that sealing a block costs one
// append and no reads.

// metaBranchTree holds the size of the stored branch tree (8 bytes, big-endian). It
// is written with the nodes, so it never counts a block whose nodes are missing.
const metaBranchTree = "branch-tree"

// BlockLeaf is the branch tree's leaf hash of a block.
func BlockLeaf(blockHash Hash) Hash { return Hash(rfc6962.DefaultHasher.HashLeaf(blockHash[:])) }

func hashChildren(l, r []byte) []byte { return rfc6962.DefaultHasher.HashChildren(l, r) }

// treeNodes is the visitor that collects the nodes an append completes.
type treeNodes struct {
	branch Key
	nodes  []store.TreeNode
}

func (t *treeNodes) visit(id compact.NodeID, h []byte) {
	if id.Level > 255 {
		return // a tree of 2^255 blocks: never
	}
	n := store.TreeNode{Branch: t.branch, Level: uint8(id.Level), Index: id.Index}
	copy(n.Hash[:], h)
	t.nodes = append(t.nodes, n)
}

func sizeBytes(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// loadTree restores the compact range of the own branch's tree from the store and
// extends it to the head: a store written before the tree was kept has none (a block
// and the nodes it completes share one write, so nothing else lags).
func (l *Ledger) loadTree() error {
	branch := l.cfg.Identity.ID
	var size uint64
	switch v, err := l.cfg.Store.Meta(metaBranchTree); {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return fmt.Errorf("read branch tree size: %w", err)
	case len(v) != 8:
		return fmt.Errorf("branch tree size: %d bytes, want 8", len(v))
	default:
		size = binary.BigEndian.Uint64(v)
	}
	if size > l.head.no {
		return fmt.Errorf("branch tree has %d blocks, the branch %d", size, l.head.no)
	}
	hashes, err := l.treeHashes(branch, compact.RangeNodes(0, size, nil))
	if err != nil {
		return err
	}
	rng, err := rangeFactory.NewRange(0, size, hashes)
	if err != nil {
		return fmt.Errorf("branch tree: %w", err)
	}
	// Extend over blocks stored before the tree was kept, a thousand a write.
	for size < l.head.no {
		t := &treeNodes{branch: branch}
		for ; size < l.head.no && len(t.nodes) < 4000; size++ {
			raw, err := l.cfg.Store.Block(branch, size+1)
			if err != nil {
				return fmt.Errorf("branch tree: %w", err)
			}
			b, err := ParseBlock(raw)
			if err != nil {
				return fmt.Errorf("branch tree: block %d: %w", size+1, err)
			}
			leaf := BlockLeaf(b.Hash)
			if err := rng.Append(leaf[:], t.visit); err != nil {
				return err
			}
		}
		w := store.Write{TreeNodes: t.nodes, Meta: map[string][]byte{metaBranchTree: sizeBytes(size)}}
		if err := l.cfg.Store.Write(context.Background(), w); err != nil {
			return fmt.Errorf("branch tree: %w", err)
		}
	}
	l.tree = rng
	return nil
}

// treeHashes reads the stored nodes ids of branch's tree.
func (l *Ledger) treeHashes(branch Key, ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := l.cfg.Store.TreeNode(branch, uint8(id.Level), id.Index)
		if err != nil {
			return nil, err
		}
		out[i] = h[:]
	}
	return out, nil
}

// extendTree returns the tree with blk appended, and the write that stores what it
// adds, without changing the ledger's: the caller swaps it in once the write is
// durable.
func (l *Ledger) extendTree(blk *Block) (*compact.Range, store.Write, error) {
	hashes := l.tree.Hashes()
	cp := make([][]byte, len(hashes))
	copy(cp, hashes)
	next, err := rangeFactory.NewRange(l.tree.Begin(), l.tree.End(), cp)
	if err != nil {
		return nil, store.Write{}, err
	}
	t := &treeNodes{branch: blk.Branch}
	leaf := BlockLeaf(blk.Hash)
	if err := next.Append(leaf[:], t.visit); err != nil {
		return nil, store.Write{}, err
	}
	return next, store.Write{TreeNodes: t.nodes, Meta: map[string][]byte{metaBranchTree: sizeBytes(next.End())}}, nil
}

// ErrTreeSize is returned for a proof about a tree larger than the branch.
var ErrTreeSize = errors.New("the branch has fewer blocks")

// TreeSize is the number of blocks the own branch's tree covers (the head's number).
func (l *Ledger) TreeSize() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tree.End()
}

func (l *Ledger) checkSize(size uint64) error {
	if n := l.TreeSize(); size > n {
		return fmt.Errorf("tree of %d blocks: %w (%d)", size, ErrTreeSize, n)
	}
	return nil
}

// TreeRoot is the root of the own branch's tree at size blocks (size 0: SHA256("")).
func (l *Ledger) TreeRoot(size uint64) (Hash, error) {
	if err := l.checkSize(size); err != nil {
		return Hash{}, err
	}
	hashes, err := l.treeHashes(l.cfg.Identity.ID, compact.RangeNodes(0, size, nil))
	if err != nil {
		return Hash{}, err
	}
	rng, err := rangeFactory.NewRange(0, size, hashes)
	if err != nil {
		return Hash{}, err
	}
	if size == 0 {
		return Hash(rfc6962.DefaultHasher.EmptyRoot()), nil
	}
	root, err := rng.GetRootHash(nil)
	return Hash(root), err
}

// BlockInclusion is the RFC 6962 inclusion proof of block no in the own branch's
// tree of size blocks.
func (l *Ledger) BlockInclusion(no, size uint64) ([]Hash, error) {
	if no == 0 || no > size {
		return nil, fmt.Errorf("block %d is not in a tree of %d blocks", no, size)
	}
	if err := l.checkSize(size); err != nil {
		return nil, err
	}
	nodes, err := proof.Inclusion(no-1, size)
	if err != nil {
		return nil, err
	}
	return l.proofHashes(nodes)
}

// BlockConsistency is the RFC 6962 consistency proof that the own branch's tree of
// size2 blocks extends its tree of size1.
func (l *Ledger) BlockConsistency(size1, size2 uint64) ([]Hash, error) {
	if size1 > size2 {
		return nil, fmt.Errorf("no consistency proof from %d blocks back to %d", size1, size2)
	}
	if err := l.checkSize(size2); err != nil {
		return nil, err
	}
	nodes, err := proof.Consistency(size1, size2)
	if err != nil {
		return nil, err
	}
	return l.proofHashes(nodes)
}

func (l *Ledger) proofHashes(nodes proof.Nodes) ([]Hash, error) {
	hashes, err := l.treeHashes(l.cfg.Identity.ID, nodes.IDs)
	if err != nil {
		return nil, err
	}
	return rehash(nodes, hashes)
}

// VerifyBlockInclusion checks an inclusion proof of a block (by its hash, at number
// no) in a branch tree of size blocks with root.
func VerifyBlockInclusion(blockHash Hash, no, size uint64, path []Hash, root Hash) error {
	if no == 0 {
		return errors.New("block 0 (genesis) is in no branch tree")
	}
	leaf := BlockLeaf(blockHash)
	return proof.VerifyInclusion(rfc6962.DefaultHasher, no-1, size, leaf[:], hashSlices(path), root[:])
}

// VerifyConsistency checks that a branch tree of size2 blocks with root2 extends the
// one of size1 with root1.
func VerifyConsistency(size1, size2 uint64, path []Hash, root1, root2 Hash) error {
	return proof.VerifyConsistency(rfc6962.DefaultHasher, size1, size2, hashSlices(path), root1[:], root2[:])
}

// VerifyRecordInclusion checks an RFC 6962 audit path of a record's stored bytes at
// index among size records against a block's seal.
func VerifyRecordInclusion(recordBytes []byte, index, size uint64, path []Hash, seal Hash) error {
	leaf := LeafHash(recordBytes)
	return proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, leaf[:], hashSlices(path), seal[:])
}

// RecordInclusion is the audit path of leaf index among leaves (a block's seal).
func RecordInclusion(leaves []Hash, index uint64) ([]Hash, error) {
	size := uint64(len(leaves))
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	// Every node a proof names is a complete subtree of the leaves: hash it from them.
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		begin, end := id.Coverage()
		h := MerkleRoot(leaves[begin:end])
		hashes[i] = append([]byte(nil), h[:]...)
	}
	return rehash(nodes, hashes)
}

func hashSlices(hs []Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// rehash folds a proof's node hashes into its path (proof.Nodes.Rehash).
func rehash(nodes proof.Nodes, hashes [][]byte) ([]Hash, error) {
	hashes, err := nodes.Rehash(hashes, hashChildren)
	if err != nil {
		return nil, err
	}
	out := make([]Hash, len(hashes))
	for i := range hashes {
		copy(out[i][:], hashes[i])
	}
	return out, nil
}
