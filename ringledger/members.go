package ringledger

import (
	"context"
	"fmt"
	"time"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
)

// Members is this node's view of the network's memberships (network.Members
// in the daemon, through a small adapter). The transport has authenticated
// the sender of every message, so a message's from.ID is a fact; whether that
// node is still a member, and whether the signer of a record was one when it
// signed, is asked here.
type Members interface {
	// ValidAt says why node id was not a member at t (not known, expired,
	// revoked by then), or nil.
	ValidAt(id ledger.Key, t time.Time) error
	// Current is ValidAt now.
	Current(id ledger.Key) error
	// MembershipDER returns the membership of node id this node has seen.
	MembershipDER(id ledger.Key) ([]byte, bool)
	// Learn checks a membership a peer showed (it is signed by the network
	// authority, so it proves itself) and remembers it.
	Learn(der []byte) error
}

// membershipBody asks a peer for a node's membership (opMembership).
type membershipBody struct {
	Node ledger.Key `json:"node"`
}

// membershipAnswer is the membership's DER, or none when the peer has not
// seen it.
type membershipAnswer struct {
	DER []byte `json:"der,omitempty"`
}

// maxLearn bounds the memberships one message may make this node ask for: a
// peer cannot make it call back once per record of a batch.
const maxLearn = 4

// memberNow refuses a peer that is not a member now (its connection may
// outlive its membership). This node itself always is.
func (d *Ledger) memberNow(id ledger.Key) error {
	if d.cfg.Members == nil || id == d.self() {
		return nil
	}
	if err := d.cfg.Members.Current(id); err != nil {
		d.stats.notMember.Add(1)
		return refuse(CodeRefused, "node %s is not a member of this network now: %v", id.Short(), err)
	}
	return nil
}

// handleMembership answers opMembership: the membership of a node, as this
// node has seen it. It proves itself, so nothing is checked but the asker.
func (d *Ledger) handleMembership(b membershipBody) (membershipAnswer, error) {
	if d.cfg.Members == nil {
		return membershipAnswer{}, nil
	}
	der, _ := d.cfg.Members.MembershipDER(b.Node)
	return membershipAnswer{DER: der}, nil
}

// signers checks that each record's signer (its branch) was a member at the
// record's time. A signer this node has not seen is asked of p, the peer that
// handed the records on, at most maxLearn of them per call.
func (d *Ledger) signers(ctx context.Context, p chord.Peer, recs []*ledger.Record) error {
	m := d.cfg.Members
	if m == nil {
		return nil
	}
	learnt := map[ledger.Key]bool{}
	for _, r := range recs {
		signer := r.Block.Branch
		if _, ok := m.MembershipDER(signer); !ok && !learnt[signer] && p.ID != d.self() {
			if len(learnt) == maxLearn {
				d.stats.notMember.Add(1)
				return refuse(CodeRefused, "records of more than %d signers this node has not seen", maxLearn)
			}
			learnt[signer] = true
			if err := d.learnMember(ctx, p, signer); err != nil {
				d.stats.notMember.Add(1)
				return refuse(CodeRefused, "record %s is signed by node %s, whose membership is unknown: %v", r.TxID, signer.Short(), err)
			}
		}
		if err := m.ValidAt(signer, time.Unix(0, r.Time)); err != nil {
			d.stats.notMember.Add(1)
			return refuse(CodeRefused, "record %s is signed by node %s, not a member at the record's time: %v", r.TxID, signer.Short(), err)
		}
	}
	return nil
}

// learnMember asks p for node id's membership and learns it.
func (d *Ledger) learnMember(ctx context.Context, p chord.Peer, id ledger.Key) error {
	var ans membershipAnswer
	if err := d.call(ctx, p, opMembership, membershipBody{Node: id}, &ans); err != nil {
		return err
	}
	if len(ans.DER) == 0 {
		return fmt.Errorf("%s does not know it either", p.Addr)
	}
	if err := d.cfg.Members.Learn(ans.DER); err != nil {
		return fmt.Errorf("%s showed a membership that does not check: %w", p.Addr, err)
	}
	if _, ok := d.cfg.Members.MembershipDER(id); !ok {
		return fmt.Errorf("%s showed another node's membership", p.Addr)
	}
	return nil
}
