package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/flownode/flownode/ledger"
)

// rawBlockLine is a block line split into its fields, so that a field that
// does not parse is named.
type rawBlockLine struct {
	Type   string            `json:"type"`
	Block  json.RawMessage   `json:"block"`
	Covers []json.RawMessage `json:"covers"`
	Digest json.RawMessage   `json:"digest"`
	Sum    json.RawMessage   `json:"sum"`
}

func (c *checker) checkBlockLine(where string, body []byte) *failure {
	var raw rawBlockLine
	if f := decodeAt(where, body, &raw, func() any { return &rawBlockLine{} }); f != nil {
		return f
	}
	// The block's place, read leniently, names the line even when the
	// block does not parse.
	var place struct {
		Branch ledger.Key `json:"branch"`
		No     uint64     `json:"no,string"`
	}
	if json.Unmarshal(raw.Block, &place) == nil {
		where = fmt.Sprintf("%s (%s)", where, blockPlace(place.Branch, place.No))
	}
	blk, err := ledger.ParseBlock(raw.Block)
	if err != nil {
		if field := locateDecode(raw.Block, func() any { return &ledger.Block{} }); field != "" {
			return fail(where+": block."+field, err)
		}
		return fail(where+": block", err)
	}
	if f := c.checkBlock(where+": block", blk, raw.Block); f != nil {
		return f
	}
	line := BlockLine{Type: raw.Type, Block: raw.Block, Covers: make([]Cover, len(raw.Covers))}
	for k, rc := range raw.Covers {
		if f := decodeAt(fmt.Sprintf("%s: covers[%d]", where, k), rc, &line.Covers[k], func() any { return &Cover{} }); f != nil {
			return f
		}
	}
	if f := c.checkCovers(where, blk, line.Covers); f != nil {
		return f
	}
	if err := json.Unmarshal(raw.Digest, &line.Digest); err != nil {
		return fail(where+": digest", err)
	}
	if err := json.Unmarshal(raw.Sum, &line.Sum); err != nil {
		return fail(where+": sum", err)
	}
	c.digest = nextDigest(c.digest, blk.Hash)
	if line.Digest != c.digest {
		return failf(where+": digest", "running digest SHA-256(previous digest ‖ block hash)", c.digest.String(), line.Digest.String())
	}
	if f := c.checkForm(where, body, &line, line.Sum); f != nil {
		return f
	}
	st := c.branches[blk.Branch]
	st.last, st.count = blk, st.count+1
	c.last = blk
	c.blocks++
	return nil
}

// checkBlock checks a merged block: its bytes, place in the merge order and the
// window, and its link to the branch's previous block (or anchor, or genesis).
func (c *checker) checkBlock(where string, blk *ledger.Block, raw []byte) *failure {
	if canon, err := ledger.Canonical(blk); err != nil || !bytes.Equal(canon, raw) {
		return failf(where, "block bytes", "RFC 8785 canonical JSON", "bytes that differ from their canonical form")
	}
	st, ok := c.branches[blk.Branch]
	if !ok {
		return failf(where, "block branch", "a branch the header lists", blk.Branch.String())
	}
	if c.last != nil && !mergeLess(c.last, blk) {
		return failf(where, "merge order (block time, then branch, then number)", "after "+blockPlace(c.last.Branch, c.last.No)+
			" at "+fmt.Sprint(c.last.Time), fmt.Sprint(blk.Time))
	}
	if blk.Time < c.from || (c.to != 0 && blk.Time >= c.to) {
		return failf(where, "block time within the window", c.header.From+" ≤ time < "+c.header.To, time.Unix(0, blk.Time).UTC().Format(time.RFC3339Nano))
	}
	if err := ledger.CheckLink(blk, st.last, c.g, c.proof); err != nil {
		return fail(where, err)
	}
	if t := time.Unix(0, blk.Time); t.After(st.member.NotAfter) {
		return failf(where, "block time within the miner's membership", "at most "+st.member.NotAfter.UTC().Format(time.RFC3339), t.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// checkCovers checks what a block's seal covers as the line lists it: each
// txID against its hData and the parent's hash (the block's prev), the seal
// against the leaves when every covered record was supplied, and it collects
// the missing records and short seals the trailer must list.
func (c *checker) checkCovers(where string, blk *ledger.Block, covers []Cover) *failure {
	if uint64(len(covers)) > blk.Sealed {
		return failf(where+": covers", "records covered", fmt.Sprintf("at most the %d the block seals", blk.Sealed), fmt.Sprint(len(covers)))
	}
	leaves := make([]ledger.Hash, 0, len(covers))
	complete := uint64(len(covers)) == blk.Sealed
	for k, cv := range covers {
		at := fmt.Sprintf("%s: covers[%d]", where, k)
		if k > 0 && cv.Seq <= covers[k-1].Seq {
			return failf(at+".seq", "position order", fmt.Sprintf("after %d", covers[k-1].Seq), fmt.Sprint(cv.Seq))
		}
		if (cv.HData == nil) != (cv.Leaf == nil) {
			return failf(at, "hData and leaf", "both, or neither for a missing record", "one of them")
		}
		if cv.Leaf == nil {
			complete = false
			c.missing = append(c.missing, Missing{TxID: cv.TxID, Branch: blk.Branch, Block: blk.No - 1, Seq: cv.Seq})
			continue
		}
		if tx := ledger.TxID(blk.Prev, *cv.HData); tx != cv.TxID {
			return failf(at+".txID", "txID = SHA256(SHA256(parent hash ‖ hData))", tx.String(), cv.TxID.String())
		}
		leaves = append(leaves, *cv.Leaf)
		c.records++
	}
	if uint64(len(covers)) < blk.Sealed {
		c.short = append(c.short, Short{Branch: blk.Branch, Block: blk.No, Sealed: blk.Sealed, Listed: len(covers)})
	}
	if complete {
		if root := ledger.MerkleRoot(leaves); root != blk.Seal {
			return failf(where+": covers[].leaf", "seal (Merkle root of the listed leaves)", blk.Seal.String(), root.String())
		}
	}
	return nil
}

func (c *checker) checkTrailer(where string, body []byte) *failure {
	var t Trailer
	if f := decodeAt(where, body, &t, func() any { return &Trailer{} }); f != nil {
		return f
	}
	switch {
	case t.Blocks != c.blocks:
		return failf(where+": blocks", "block lines", fmt.Sprint(c.blocks), fmt.Sprint(t.Blocks))
	case t.Records != c.records:
		return failf(where+": records", "covered records with a leaf", fmt.Sprint(c.records), fmt.Sprint(t.Records))
	case t.Head != c.digest:
		return failf(where+": head", "merged head digest (the last running digest)", c.digest.String(), t.Head.String())
	case len(t.Missing) != len(c.missing):
		return failf(where+": missing", "missing records (covers without a leaf)", fmt.Sprint(len(c.missing)), fmt.Sprint(len(t.Missing)))
	case len(t.Short) != len(c.short):
		return failf(where+": short", "short seals", fmt.Sprint(len(c.short)), fmt.Sprint(len(t.Short)))
	}
	for i, m := range t.Missing {
		w := c.missing[i]
		if m.TxID != w.TxID || m.Branch != w.Branch || m.Block != w.Block || m.Seq != w.Seq {
			return failf(fmt.Sprintf("%s: missing[%d]", where, i), "missing record", fmt.Sprintf("%s at %s/%d/%d", w.TxID, w.Branch, w.Block, w.Seq),
				fmt.Sprintf("%s at %s/%d/%d", m.TxID, m.Branch, m.Block, m.Seq))
		}
	}
	for i, s := range t.Short {
		if s != c.short[i] {
			return failf(fmt.Sprintf("%s: short[%d]", where, i), "short seal", fmt.Sprintf("%+v", c.short[i]), fmt.Sprintf("%+v", s))
		}
	}
	if f := c.checkForm(where, body, &t, t.Sum); f != nil {
		return f
	}
	c.trailer = &t
	return nil
}
