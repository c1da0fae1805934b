package audit

import (
	"bufio"
	"encoding/hex"
	"sort"
	"time"

	"github.com/flownode/flownode/ledger"
)

// mergeLess is the merge order: block time, then branch ID, then block number.
// Every block has one place in it whatever node it was read from, so two
// auditors of one window write the same sequence and the same digests.
func mergeLess(x, y *ledger.Block) bool {
	if x.Time != y.Time {
		return x.Time < y.Time
	}
	if c := x.Branch.Cmp(y.Branch); c != 0 {
		return c < 0
	}
	return x.No < y.No
}

// write merges the windows of all branches and writes the audit file.
func (a *auditor) write(branches []*branch, seals map[*ledger.Block]*sealed, rep *Report) (*Report, error) {
	type item struct {
		b *branch
		i int
	}
	var items []item
	for _, b := range branches {
		for i := b.lo; i < b.hi; i++ {
			items = append(items, item{b, i})
		}
	}
	sort.Slice(items, func(x, y int) bool { return mergeLess(items[x].b.blocks[items[x].i], items[y].b.blocks[items[y].i]) })

	now := time.Now
	if a.cfg.Now != nil {
		now = a.cfg.Now
	}
	h := Header{Type: FileType, Version: FileVersion, Network: a.desc, Genesis: a.g.Hash,
		From: formatTime(a.cfg.From), To: formatTime(a.cfg.To), Node: a.base, Walked: formatTime(now())}
	for _, b := range branches {
		h.Branches = append(h.Branches, a.branchHeader(b))
	}
	w := &lineWriter{w: bufio.NewWriterSize(a.cfg.Out, 1<<20)}
	w.line(&h)
	tr := Trailer{Type: "end", Missing: []Missing{}, Short: []Short{}}
	d := a.g.Hash
	for _, it := range items {
		blk := it.b.blocks[it.i]
		s := seals[blk]
		d = nextDigest(d, blk.Hash)
		covers := s.covers
		if covers == nil {
			covers = []Cover{}
		}
		w.line(&BlockLine{Type: "block", Block: it.b.raws[it.i], Covers: covers, Digest: d})
		tr.Records += s.records
		tr.Missing = append(tr.Missing, s.missing...)
		if s.short != nil {
			tr.Short = append(tr.Short, *s.short)
		}
	}
	tr.Blocks, tr.Head = len(items), d
	w.line(&tr)
	if err := w.flush(); err != nil {
		return nil, err
	}
	rep.Valid, rep.Head, rep.Blocks, rep.Records, rep.Missing, rep.Short = true, d, tr.Blocks, tr.Records, tr.Missing, tr.Short
	return rep, nil
}

// branchHeader describes a branch's window: its anchor (the block before it)
// and its head (the last block in it, else the anchor).
func (a *auditor) branchHeader(b *branch) Branch {
	out := Branch{ID: b.id, Addr: b.addr, Source: b.source, Membership: b.member, Blocks: b.hi - b.lo, Head: Ref{No: 0, Hash: a.g.Hash}}
	if b.lo > 0 {
		out.Anchor = b.raws[b.lo-1]
		out.Head = Ref{No: uint64(b.lo), Hash: b.blocks[b.lo-1].Hash}
	}
	if b.hi > b.lo {
		out.Head = Ref{No: uint64(b.hi), Hash: b.blocks[b.hi-1].Hash}
	}
	return out
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// lineWriter writes summed lines (lineSum), keeping the first error.
type lineWriter struct {
	w    *bufio.Writer
	prev []byte
	err  error
}

// summed is a line with a "sum" field.
type summed interface{ setSum(string) }

func (h *Header) setSum(s string)    { h.Sum = s }
func (l *BlockLine) setSum(s string) { l.Sum = s }
func (t *Trailer) setSum(s string)   { t.Sum = s }

func (lw *lineWriter) line(v summed) {
	if lw.err != nil {
		return
	}
	v.setSum("")
	unsummed, err := encodeLine(v)
	if err != nil {
		lw.err = err
		return
	}
	sum := lineSum(lw.prev, unsummed)
	lw.prev, _ = hex.DecodeString(sum)
	v.setSum(sum)
	b, err := encodeLine(v)
	if err != nil {
		lw.err = err
		return
	}
	lw.w.Write(b)
	_, lw.err = lw.w.Write([]byte{'\n'})
}

func (lw *lineWriter) flush() error {
	if lw.err != nil {
		return lw.err
	}
	return lw.w.Flush()
}
