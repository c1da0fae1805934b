package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
)

// branch is one branch of the ring: its blocks as fetched and checked from
// genesis, and the window of them the audit merges.
type branch struct {
	id      ledger.Key
	addr    string   // the owner's address in the ring walk
	sources []string // HTTP bases to read it from: the owner first (when owned)
	owned   bool     // sources[0] is the owner's
	source  string   // the one that answered
	raws    [][]byte
	blocks  []*ledger.Block // blocks[i] is block i+1
	lo, hi  int             // the window: blocks[lo:hi]
	member  []byte          // the owner's membership (DER)
	notes   []witnessNote   // checkpoints its witnesses held before its blocks were read
}

// fetchBlocks reads the branch's blocks from its owner (a branch with no block
// yet is one that has only genesis), or, when the owner cannot be reached, the
// longest copy another node holds (a replica holds a prefix of the branch: the
// audit then covers less, and the header says where it read).
func (a *auditor) fetchBlocks(ctx context.Context, b *branch) error {
	var errs []error
	for k, base := range b.sources {
		raws, err := a.c.blocks(ctx, base, b.id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if k == 0 && b.owned {
			b.raws, b.source = raws, base
			return nil
		}
		if b.source == "" || len(raws) > len(b.raws) {
			b.raws, b.source = raws, base
		}
	}
	if b.source == "" {
		return fmt.Errorf("no node supplied the blocks of branch %s: %w", b.id, errors.Join(errs...))
	}
	return nil
}

// checkChain checks every block from genesis: canonical bytes, position, hash,
// signature, network, link and proof (ledger.CheckLink), as ledger.Verify does.
func (a *auditor) checkChain(b *branch) *failure {
	b.blocks = make([]*ledger.Block, len(b.raws))
	var parent *ledger.Block
	for i, raw := range b.raws {
		no := uint64(i + 1)
		where := blockPlace(b.id, no) + " (from " + b.source + ")"
		blk, err := ledger.ParseBlock(raw)
		if err != nil {
			return fail(where, err)
		}
		if canon, err := ledger.Canonical(blk); err != nil || !bytes.Equal(canon, raw) {
			return failf(where, "block bytes", "RFC 8785 canonical JSON", "bytes that differ from their canonical form")
		}
		if blk.Branch != b.id || blk.No != no {
			return failf(where, "block position", fmt.Sprintf("%s/%d", b.id, no), fmt.Sprintf("%s/%d", blk.Branch, blk.No))
		}
		if err := ledger.CheckLink(blk, parent, a.g, a.proof); err != nil {
			return fail(where, err)
		}
		b.blocks[i], parent = blk, blk
	}
	return nil
}

// window selects the blocks with from ≤ time < to. A branch's block times rise
// strictly (the proof check refuses a block not after its parent), so the
// window is one run of blocks.
func (a *auditor) window(b *branch) {
	b.lo, b.hi = len(b.blocks), len(b.blocks)
	for i, blk := range b.blocks {
		if b.lo == len(b.blocks) && (a.from == 0 || blk.Time >= a.from) {
			b.lo = i
		}
		if a.to != 0 && blk.Time >= a.to {
			b.hi = i
			break
		}
	}
	if b.lo > b.hi {
		b.lo = b.hi
	}
}

// checkMember finds the branch owner's membership (from the node asked, else
// from the owner) and checks that the network's authority signed it and that
// no block in the window was mined after it expired.
func (a *auditor) checkMember(ctx context.Context, b *branch, known []network.MemberInfo) *failure {
	where := "branch " + b.id.String()
	der := memberCert(known, b.id)
	if der == nil {
		if info, err := a.c.network(ctx, b.sources[0]); err == nil {
			der = memberCert(info.Members, b.id)
		}
	}
	if der == nil {
		return failf(where, "membership", "the owner's membership signed by the network's authority", "none found on the node asked or the owner")
	}
	b.member = der
	return checkMembership(where, &a.desc, der, b.id, b.blocks[b.lo:b.hi])
}

func memberCert(known []network.MemberInfo, id ledger.Key) []byte {
	for _, m := range known {
		if m.ID == id && len(m.Cert) > 0 {
			return m.Cert
		}
	}
	return nil
}

// checkMembership checks a membership certificate of the branch id against the
// network's authority, and the blocks' times against its expiry. (Blocks from
// before a renewed membership's start are allowed: the node was a member then
// under its earlier one.)
func checkMembership(where string, desc *network.Description, der []byte, id ledger.Key, blocks []*ledger.Block) *failure {
	mem, err := network.ParseMembership(der)
	if err != nil {
		return fail(where, fmt.Errorf("membership: %w", err))
	}
	if mem.Node != id {
		return failf(where, "membership node", id.String(), mem.Node.String())
	}
	if err := desc.Check(mem, mem.NotBefore); err != nil {
		return fail(where, fmt.Errorf("membership: %w", err))
	}
	for _, blk := range blocks {
		if t := time.Unix(0, blk.Time); t.After(mem.NotAfter) {
			return failf(blockPlace(id, blk.No), "block time within the miner's membership",
				"at most "+mem.NotAfter.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339Nano))
		}
	}
	return nil
}
