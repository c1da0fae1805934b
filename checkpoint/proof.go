package checkpoint

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
)

// Proof is that one record is in the ledger: the answer of GET
// /api/v1/records/{txID}/proof, and the file flownode verify-record checks. Each
// step hands the next one a hash it commits to:
//
//	record bytes ─(Proof: audit path)→ Block.seal ─ Block's hash ─(BlockProof)→
//	Checkpoint root ─ signed by the branch's owner, cosigned by its witnesses
//
// and Members carries the memberships that say whose signatures count, so only the
// network's public description (its authority key and genesis) is needed to check it.
type Proof struct {
	Record     json.RawMessage `json:"record"`     // the record as stored
	Proof      Path            `json:"proof"`      // the record's leaf among those the block seals
	Block      json.RawMessage `json:"block"`      // the block that seals it, as stored
	BlockProof Path            `json:"blockProof"` // the block's leaf in the checkpoint's tree
	Checkpoint string          `json:"checkpoint"` // the branch's signed note, with its cosignatures
	Members    [][]byte        `json:"members"`    // membership certificates (DER): the owner's and the witnesses'
}

// Path is an RFC 6962 inclusion proof: leaf Index of a tree of Size leaves.
type Path struct {
	Index uint64        `json:"index"`
	Size  uint64        `json:"size"`
	Path  []ledger.Hash `json:"path"`
}

// MaxProofSize bounds a proof a node accepts from a peer or a file: a record is at
// most 64 KiB of data, a path at most 64 hashes, a handful of memberships.
const MaxProofSize = 256 << 10

// Verified is what a valid proof establishes.
type Verified struct {
	Record     *ledger.Record
	Block      *ledger.Block
	Checkpoint *Signed
}

// ProofError is a proof that does not hold, with the step that failed.
type ProofError struct {
	Where string // record, membership, proof, block, blockProof, checkpoint
	Err   error
}

func (e *ProofError) Error() string { return e.Where + ": " + e.Err.Error() }
func (e *ProofError) Unwrap() error { return e.Err }

func proofErr(where string, err error) error { return &ProofError{Where: where, Err: err} }

// Verify checks p with only the network's public description d: the record verifies
// on its own and its signer was a member when it signed; the audit path leads from
// the record's bytes to the seal of the block after the record's block, which its
// owner signed; that block is in the checkpointed tree; and the checkpoint is signed
// by the branch's owner. Cosignatures count only from members of the network at the
// time they were made.
func (p *Proof) Verify(d *network.Description) (*Verified, error) {
	g, err := d.Genesis()
	if err != nil {
		return nil, err
	}
	rec, err := ledger.ParseRecord(p.Record)
	if err != nil {
		return nil, proofErr("record", err)
	}
	if err := rec.CheckSelf(p.Record); err != nil {
		return nil, proofErr("record", err)
	}
	members := map[ledger.Key]*network.Membership{}
	for i, der := range p.Members {
		m, err := network.ParseMembership(der)
		if err != nil {
			return nil, proofErr("membership", fmt.Errorf("%d: %w", i, err))
		}
		if err := d.Check(m, m.NotBefore); err != nil {
			return nil, proofErr("membership", fmt.Errorf("%d: %w", i, err))
		}
		if old, ok := members[m.Node]; !ok || m.NotAfter.After(old.NotAfter) {
			members[m.Node] = m
		}
	}
	branch := rec.Block.Branch
	owner, ok := members[branch]
	if !ok {
		return nil, proofErr("membership", fmt.Errorf("the proof carries no membership of the record's signer %s", branch))
	}
	if err := d.Check(owner, time.Unix(0, rec.Time)); err != nil {
		return nil, proofErr("membership", fmt.Errorf("the signer at the record's time: %w", err))
	}

	blk, err := ledger.ParseBlock(p.Block)
	if err != nil {
		return nil, proofErr("block", err)
	}
	if err := blk.CheckSelf(); err != nil {
		return nil, proofErr("block", err)
	}
	switch {
	case blk.Network != g.Hash:
		return nil, proofErr("block", fmt.Errorf("block of another network (%s)", blk.Network))
	case blk.Branch != branch || blk.No != rec.Block.No+1:
		return nil, proofErr("block", fmt.Errorf("block %s/%d does not seal the records of block %s/%d", blk.Branch, blk.No, branch, rec.Block.No))
	case blk.No == 1 && rec.Block.Hash != g.Hash, blk.No > 1 && blk.Prev != rec.Block.Hash:
		return nil, proofErr("block", fmt.Errorf("block %d's parent is %s, the record is attached to %s", blk.No, blk.Prev, rec.Block.Hash))
	}
	if err := d.Check(owner, time.Unix(0, blk.Time)); err != nil {
		return nil, proofErr("membership", fmt.Errorf("the miner at the block's time: %w", err))
	}

	if p.Proof.Size != blk.Sealed {
		return nil, proofErr("proof", fmt.Errorf("a path among %d records, the block seals %d", p.Proof.Size, blk.Sealed))
	}
	if err := ledger.VerifyRecordInclusion(p.Record, p.Proof.Index, p.Proof.Size, p.Proof.Path, blk.Seal); err != nil {
		return nil, proofErr("proof", err)
	}

	cp, err := Open([]byte(p.Checkpoint), g.Hash, func(id ledger.Key) (ed25519.PublicKey, bool) {
		m, ok := members[id]
		if !ok {
			return nil, false
		}
		return m.Public, true
	})
	if err != nil {
		return nil, proofErr("checkpoint", err)
	}
	if cp.Branch() != branch {
		return nil, proofErr("checkpoint", fmt.Errorf("a checkpoint of branch %s, the record is on %s", cp.Branch(), branch))
	}
	// Witnesses count only while members.
	kept := cp.Cosigners[:0]
	for i, id := range cp.Cosigners {
		if d.Check(members[id], cp.CosignedAt[i]) == nil {
			kept = append(kept, id)
		}
	}
	cp.Cosigners = kept
	if p.BlockProof.Size != cp.Size || p.BlockProof.Index != blk.No-1 {
		return nil, proofErr("blockProof", fmt.Errorf("a path to leaf %d of %d, want leaf %d of the checkpoint's %d", p.BlockProof.Index, p.BlockProof.Size, blk.No-1, cp.Size))
	}
	if err := ledger.VerifyBlockInclusion(blk.Hash, blk.No, cp.Size, p.BlockProof.Path, cp.Root); err != nil {
		return nil, proofErr("blockProof", err)
	}
	return &Verified{Record: rec, Block: blk, Checkpoint: cp}, nil
}

// ErrNotSealed is returned for a record its branch has not sealed yet.
var ErrNotSealed = errors.New("not sealed yet")
