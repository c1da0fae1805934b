package audit

import (
	"context"
	"crypto/ed25519"
	"fmt"

	"github.com/flownode/flownode/checkpoint"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
)

// A branch verifies on its own even when its owner re-mined and re-signed it:
// it holds its key. Its witnesses (the next k-1 nodes) cosigned checkpoints of
// it as it grew (package witness, docs/audit.md), so the branch the owner serves
// must agree with the newest checkpoint each witness holds (docs/merged.md).

// checkpointAnswer is the part of GET /api/v1/checkpoints?branch=ID an audit reads.
type checkpointAnswer struct {
	Checkpoint string `json:"checkpoint"` // the signed note with its cosignatures
}

// fetchCheckpoints asks the branch's witnesses for the checkpoint of it they
// hold, before its blocks are read: a checkpoint cosigned before the read names
// a block the owner must still serve. A witness that does not answer, or holds
// none, is skipped: a witnessed checkpoint adds evidence, it is not required.
func (a *auditor) fetchCheckpoints(ctx context.Context, b *branch) {
	for _, base := range b.sources[1:min(len(b.sources), witnessCount)] {
		var ans checkpointAnswer
		if err := a.c.get(ctx, base, "/api/v1/checkpoints?branch="+b.id.String(), &ans); err == nil {
			b.notes = append(b.notes, witnessNote{base: base, raw: []byte(ans.Checkpoint)})
		}
	}
}

// witnessNote is a signed checkpoint as a witness answered it.
type witnessNote struct {
	base string
	raw  []byte
}

// checkWitnessed checks that each checkpoint of the branch that its owner
// signed and a witness cosigned names a block of the branch as read: same
// number, same hash. It reports whether any did.
func (a *auditor) checkWitnessed(b *branch, keys checkpoint.Keys) (bool, *failure) {
	witnessed := false
	for _, n := range b.notes {
		s, err := checkpoint.Open(n.raw, a.g.Hash, keys)
		if err != nil || s.Branch() != b.id || len(s.Cosigners) == 0 {
			continue // not a checkpoint of this branch that a witness cosigned
		}
		where := fmt.Sprintf("branch %s: checkpoint cosigned by %s (from %s)", b.id, s.Cosigners[0], n.base)
		if s.Size > uint64(len(b.blocks)) {
			if !b.owned || b.source != b.sources[0] {
				continue // a replica's copy may lag its witnesses
			}
			return false, failf(where, "branch length", fmt.Sprintf("at least the %d blocks the owner checkpointed", s.Size), fmt.Sprintf("%d blocks served by the owner", len(b.blocks)))
		}
		head := a.g.Hash
		if s.Size > 0 {
			head = b.blocks[s.Size-1].Hash
		}
		if head != s.Head {
			return false, failf(where, fmt.Sprintf("block %d (the branch was rewritten after its witnesses cosigned it)", s.Size), s.Head.String(), head.String())
		}
		witnessed = true
	}
	return witnessed, nil
}

// witnessCount bounds the nodes asked for a branch's checkpoint: its owner's
// sources list the owner, then the nodes after it in ring order; the first k-1 of
// those are its witnesses.
const witnessCount = 3

// memberKeys are the branch owners' keys from their memberships, for
// checkpoint.Open: whose signatures count.
func memberKeys(branches []*branch) checkpoint.Keys {
	keys := map[ledger.Key]ed25519.PublicKey{}
	for _, b := range branches {
		if m, err := network.ParseMembership(b.member); err == nil {
			keys[m.Node] = m.Public
		}
	}
	return func(id ledger.Key) (ed25519.PublicKey, bool) {
		k, ok := keys[id]
		return k, ok
	}
}
