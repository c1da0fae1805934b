package audit

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
	"github.com/flownode/flownode/node"
)

// maxLine bounds one line of an audit file: a block sealing 100 000 records
// takes about 25 MB.
const maxLine = 256 << 20

// checker is the state of one Check: what the lines read so far establish.
type checker struct {
	line     int
	prevSum  []byte
	header   *Header
	desc     network.Description
	g        *ledger.Genesis
	proof    ledger.ProofCheck
	from, to int64
	branches map[ledger.Key]*branchState
	digest   ledger.Hash
	last     *ledger.Block // the previous merged block
	blocks   int
	records  int
	missing  []Missing // expected in the trailer, from covers without a leaf
	short    []Short
	// headerSum holds a header whose sum did not match while its fields
	// checked: the changed field shows later (a head, a count, the window),
	// or nowhere else.
	headerSum *failure
	trailer   *Trailer
}

type branchState struct {
	index  int
	hdr    Branch
	member *network.Membership
	last   *ledger.Block // the anchor or the last block read; nil: genesis
	count  int
}

// Check re-checks an audit file offline (docs/merged.md): every line's form and
// sum, the header's network, genesis and memberships, every block's hash,
// signature, link and proof of mining, the merge order, the window, each seal
// against its listed leaves, each txID against its hData, every running
// digest, and the trailer's totals, head digest and missing records. The
// Report names the first failure by line, block and field. An error means the
// file could not be read.
func Check(r io.Reader) (*Report, error) {
	c := &checker{branches: map[ledger.Key]*branchState{}}
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			line, err = readLong(br, line)
		}
		if len(line) == 0 && errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		c.line++
		if f := c.check(line); f != nil {
			return c.report(f), nil
		}
	}
	if c.trailer == nil {
		return c.report(failf(fmt.Sprintf("line %d", c.line+1), "trailer", `a last line of type "end"`, "the end of the file")), nil
	}
	if f := c.branchTotals(); f != nil {
		c.headerSum = nil // this is the changed header field, or a block line gone
		return c.report(f), nil
	}
	if c.headerSum != nil {
		return c.report(c.headerSum), nil
	}
	rep := &Report{Valid: true, Head: c.trailer.Head, Branches: len(c.branches), Blocks: c.blocks, Records: c.records,
		Missing: c.trailer.Missing, Short: c.trailer.Short}
	return rep, nil
}

// readLong reads the rest of a line longer than the reader's buffer.
func readLong(br *bufio.Reader, first []byte) ([]byte, error) {
	buf := append([]byte(nil), first...)
	for len(buf) <= maxLine {
		more, err := br.ReadSlice('\n')
		buf = append(buf, more...)
		if !errors.Is(err, bufio.ErrBufferFull) {
			return buf, err
		}
	}
	return nil, fmt.Errorf("a line is longer than %d bytes", maxLine)
}

// report turns a failure into the Report; a changed header outranks what it
// caused further on.
func (c *checker) report(f *failure) *Report {
	if c.headerSum != nil && f != c.headerSum {
		f = fail(c.headerSum.where, fmt.Errorf("%v (its consequence: %s)", c.headerSum.err, f.Error()))
	}
	return (&Report{}).invalid(f)
}

// check checks one line, with its newline.
func (c *checker) check(line []byte) *failure {
	where := fmt.Sprintf("line %d", c.line)
	if c.trailer != nil {
		return failf(where, "end of file", "nothing after the trailer", fmt.Sprintf("%d more byte(s)", len(line)))
	}
	body, ok := bytes.CutSuffix(line, []byte("\n"))
	if !ok {
		return failf(where, "line end", "a newline", "the end of the file")
	}
	var probe struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fail(syntaxPlace(where, body, int(se.Offset)), fmt.Errorf("not valid JSON at byte %d: %v", se.Offset, err))
		}
		return fail(where, fmt.Errorf("not valid JSON: %v", err))
	}
	switch {
	case c.line == 1:
		return c.checkHeader(where+" (header)", body)
	case probe.Type == "block":
		return c.checkBlockLine(where, body)
	case probe.Type == "end":
		return c.checkTrailer(where+" (trailer)", body)
	}
	return failf(where, "type", `"block" or "end"`, fmt.Sprintf("%q", probe.Type))
}

var (
	blockBranch = regexp.MustCompile(`"branch":"([0-9a-f]{40})"`)
	blockNo     = regexp.MustCompile(`"no":"([0-9]+)"`)
	fieldName   = regexp.MustCompile(`"([A-Za-z]+)":`)
)

// syntaxPlace names where a line that is not JSON broke: the block it holds
// (read from its bytes as they are) and the last field name before the break.
func syntaxPlace(where string, body []byte, offset int) string {
	if bytes.HasPrefix(body, []byte(`{"type":"block"`)) {
		b, n := blockBranch.FindSubmatch(body), blockNo.FindSubmatch(body)
		if b != nil && n != nil {
			where += fmt.Sprintf(" (block %s of branch %s)", n[1], b[1])
		}
	}
	offset = min(max(offset, 0), len(body))
	if names := fieldName.FindAllSubmatch(body[:offset], -1); len(names) > 0 {
		where += ": near " + string(names[len(names)-1][1])
	}
	return where
}

// decodeStrict decodes one JSON value, refusing unknown fields and trailing data.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// checkForm checks that body is exactly the encoding of v (which it parsed to)
// and that its sum chains to the line before. v's sum is left as it was read.
func (c *checker) checkForm(where string, body []byte, v summed, sum string) *failure {
	want, err := encodeLine(v)
	if err != nil {
		return fail(where, err)
	}
	if !bytes.Equal(want, body) {
		field := locateDiff(body, want)
		if field == "" {
			field = "spacing between fields"
		}
		return failf(where+": "+field, "form", "the bytes flownode writes", "other bytes (a changed character)")
	}
	v.setSum("")
	unsummed, err := encodeLine(v)
	v.setSum(sum)
	if err != nil {
		return fail(where, err)
	}
	wantSum := lineSum(c.prevSum, unsummed)
	c.prevSum, _ = hex.DecodeString(sum)
	if len(c.prevSum) != 32 {
		c.prevSum = []byte(sum)
	}
	if wantSum != sum {
		return failf(where+": sum", "line sum (SHA-256 of the previous line's sum and this line without its sum)", wantSum, sum)
	}
	return nil
}

func (c *checker) checkHeader(where string, body []byte) *failure {
	var h Header
	if f := decodeAt(where, body, &h, func() any { return &Header{} }); f != nil {
		return f
	}
	if h.Type != FileType || h.Version != FileVersion {
		return failf(where+": type and version", "file type", fmt.Sprintf("%s %d", FileType, FileVersion), fmt.Sprintf("%s %d", h.Type, h.Version))
	}
	g, err := h.Network.Genesis()
	if err != nil {
		return fail(where+": network", err)
	}
	if g.Hash != h.Genesis {
		return failf(where+": genesis", "genesis hash derived from the network", g.Hash.String(), h.Genesis.String())
	}
	c.header, c.desc, c.g, c.proof, c.digest = &h, h.Network, g, node.ProofCheck(g), g.Hash
	if c.from, err = parseWindow(h.From); err != nil {
		return fail(where+": from", err)
	}
	if c.to, err = parseWindow(h.To); err != nil {
		return fail(where+": to", err)
	}
	for i := range h.Branches {
		if f := c.checkBranchHeader(fmt.Sprintf("%s: branches[%d]", where, i), i, &h.Branches[i]); f != nil {
			return f
		}
	}
	if f := c.checkForm(where, body, &h, h.Sum); f != nil {
		if f.where != where+": sum" {
			return f
		}
		// The changed field may show later (heads, counts, the window).
		c.headerSum = fail(where+": sum", errors.New("a header field changed that no signature covers (from, to, node, walked, addr, source, blocks, head) or the sum itself"))
	}
	return nil
}

func parseWindow(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, err
	}
	return t.UnixNano(), nil
}

// checkBranchHeader checks what a branch's header entry proves on its own:
// its membership and its anchor block.
func (c *checker) checkBranchHeader(where string, i int, b *Branch) *failure {
	if _, dup := c.branches[b.ID]; dup {
		return failf(where+".id", "branch", "each branch once", b.ID.String()+" again")
	}
	if i > 0 && !c.header.Branches[i-1].ID.Less(b.ID) {
		return failf(where+".id", "branch order", "IDs in ascending order", b.ID.String())
	}
	st := &branchState{index: i, hdr: *b}
	if f := checkMembership(where+".membership", &c.desc, b.Membership, b.ID, nil); f != nil {
		return f
	}
	st.member, _ = network.ParseMembership(b.Membership)
	if b.Anchor != nil {
		blk, err := ledger.ParseBlock(b.Anchor)
		if err != nil {
			return fail(where+".anchor", err)
		}
		if canon, err := ledger.Canonical(blk); err != nil || !bytes.Equal(canon, b.Anchor) {
			return failf(where+".anchor", "block bytes", "RFC 8785 canonical JSON", "bytes that differ from their canonical form")
		}
		if err := blk.CheckSelf(); err != nil {
			return fail(where+".anchor", err)
		}
		if blk.Branch != b.ID || blk.Network != c.g.Hash || blk.No == 0 {
			return failf(where+".anchor", "anchor block", "a block of branch "+b.ID.String()+" of this network", fmt.Sprintf("block %d of branch %s of network %s", blk.No, blk.Branch, blk.Network))
		}
		if c.from != 0 && blk.Time >= c.from {
			return failf(where+".anchor", "anchor time", "before from", time.Unix(0, blk.Time).UTC().Format(time.RFC3339Nano))
		}
		st.last = blk
	}
	c.branches[b.ID] = st
	return nil
}

// branchTotals checks, once every block is read, each branch's count and head
// as the header states them.
func (c *checker) branchTotals() *failure {
	for _, b := range c.header.Branches {
		st := c.branches[b.ID]
		where := fmt.Sprintf("line 1 (header): branches[%d]", st.index)
		if st.count != b.Blocks {
			return failf(where+".blocks", "blocks of the branch in the file", fmt.Sprint(st.count), fmt.Sprint(b.Blocks))
		}
		head := Ref{No: 0, Hash: c.g.Hash}
		if st.last != nil {
			head = Ref{No: st.last.No, Hash: st.last.Hash}
		}
		if head != b.Head {
			return failf(where+".head", "branch head", fmt.Sprintf("%d %s", head.No, head.Hash), fmt.Sprintf("%d %s", b.Head.No, b.Head.Hash))
		}
	}
	return nil
}
