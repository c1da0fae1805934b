package audit

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/flownode/flownode/api"
	"github.com/flownode/flownode/ledger"
)

// sealed is what one block's seal covers, as the ring supplied it.
type sealed struct {
	covers  []Cover
	records int // covers with their record supplied and checked
	missing []Missing
	short   *Short
}

// sealOf gathers the records block blocks[i] of b seals — those attached to its
// parent — from the branch's source (the owner holds all of its branch), each
// record the source lists but does not hold from the ring, and checks each
// record and the seal. A record no node supplies is missing, not a failure.
func (a *auditor) sealOf(ctx context.Context, b *branch, i int) (*sealed, *failure, error) {
	blk := b.blocks[i]
	parentNo, parentHash := uint64(i), a.g.Hash
	if i > 0 {
		parentHash = b.blocks[i-1].Hash
	}
	where := blockPlace(b.id, blk.No)
	entries, err := a.listAttached(ctx, b, parentNo)
	if err != nil {
		return nil, nil, err
	}
	if uint64(len(entries)) > blk.Sealed {
		return nil, failf(where, "sealed record count", fmt.Sprintf("%d records attached to block %d", blk.Sealed, parentNo), fmt.Sprint(len(entries))), nil
	}
	out := &sealed{covers: make([]Cover, len(entries))}
	leaves := make([]ledger.Hash, 0, len(entries))
	for k, e := range entries {
		out.covers[k] = Cover{Seq: e.Seq, TxID: e.TxID}
		raw := []byte(e.Record)
		if raw == nil {
			raw, err = a.c.record(ctx, a.base, e.TxID)
			if errors.Is(err, errNotFound) {
				out.missing = append(out.missing, Missing{TxID: e.TxID, Branch: b.id, Block: parentNo, Seq: e.Seq, Key: e.Key, Holders: a.holders(e.Key)})
				continue
			}
			if err != nil {
				return nil, nil, err
			}
		}
		r, f := checkCovered(where, raw, e, b.id, parentNo, parentHash)
		if f != nil {
			return nil, f, nil
		}
		leaf, hData := ledger.LeafHash(raw), r.HData
		out.covers[k].Leaf, out.covers[k].HData = &leaf, &hData
		leaves = append(leaves, leaf)
		out.records++
	}
	if uint64(len(entries)) < blk.Sealed {
		out.short = &Short{Branch: b.id, Block: blk.No, Sealed: blk.Sealed, Listed: len(entries)}
	}
	if out.short == nil && len(out.missing) == 0 {
		if root := ledger.MerkleRoot(leaves); root != blk.Seal {
			return nil, failf(where, "seal (Merkle root of the parent's records)", root.String(), blk.Seal.String()), nil
		}
	}
	return out, nil, nil
}

// listAttached asks the branch's source for the records attached to block no;
// when it cannot answer, every other node, merging their lists by position.
func (a *auditor) listAttached(ctx context.Context, b *branch, no uint64) ([]api.BlockRecord, error) {
	entries, err := a.c.blockRecords(ctx, b.source, b.id, no)
	if err == nil {
		return entries, nil
	}
	bySeq := map[uint64]api.BlockRecord{}
	answered := false
	for _, base := range b.sources {
		if base == b.source {
			continue
		}
		list, err := a.c.blockRecords(ctx, base, b.id, no)
		if err != nil {
			continue
		}
		answered = true
		for _, e := range list {
			if old, ok := bySeq[e.Seq]; !ok || old.Record == nil {
				bySeq[e.Seq] = e
			}
		}
	}
	if !answered {
		return nil, fmt.Errorf("no node listed the records of block %d of branch %s: %w", no, b.id, err)
	}
	out := make([]api.BlockRecord, 0, len(bySeq))
	for _, e := range bySeq {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// checkCovered checks a record a seal covers: on its own (canonical form,
// signature by the branch's owner, hData, txID) and that it is the record the
// attachment index names at that position of the parent block.
func checkCovered(where string, raw []byte, e api.BlockRecord, branch ledger.Key, parentNo uint64, parentHash ledger.Hash) (*ledger.Record, *failure) {
	where = fmt.Sprintf("%s: record %s at position %d of block %d", where, e.TxID, e.Seq, parentNo)
	r, err := ledger.ParseRecord(raw)
	if err != nil {
		return nil, fail(where, err)
	}
	if err := r.CheckSelf(raw); err != nil {
		return nil, fail(where, err)
	}
	if r.TxID != e.TxID {
		return nil, failf(where, "record txID", e.TxID.String(), r.TxID.String())
	}
	want := ledger.BlockRef{Branch: branch, Hash: parentHash, No: parentNo}
	if r.Block != want || r.Seq != e.Seq {
		return nil, failf(where, "record block and position", fmt.Sprintf("%s/%d (%s) position %d", branch, parentNo, parentHash, e.Seq),
			fmt.Sprintf("%s/%d (%s) position %d", r.Block.Branch, r.Block.No, r.Block.Hash, r.Seq))
	}
	return r, nil
}
