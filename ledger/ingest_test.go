package ledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flownode/flownode/store"
)

func TestStampedReadingKeepsEntryNodeKey(t *testing.T) {
	owner := newFixture(t)
	clientKey, _ := ParseKey(strings.Repeat("cd", 20))
	rs := []Reading{
		{Thing: "sensor-1", Data: []byte(`{"temperature": 21.5}`)},
		{Thing: "sensor-1", Data: []byte(`{"temperature": 21.5}`)},
		{Thing: "sensor-2", Data: []byte(`true`), Key: &clientKey},
	}
	// The entry node stamps with its own clock, a little behind the owner's.
	taken := owner.advance(0).Add(-time.Minute)
	if err := StampReadings(rs, taken, rand.Reader); err != nil {
		t.Fatal(err)
	}
	keys := make([]Key, len(rs))
	for i := range rs {
		if rs[i].Time != taken.UnixNano() || len(rs[i].Salt) != SaltSize {
			t.Fatalf("reading %d stamped %d/%x", i, rs[i].Time, rs[i].Salt)
		}
		var err error
		if keys[i], err = ReadingKey(rs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if bytes.Equal(rs[0].Salt, rs[1].Salt) || keys[0] == keys[1] {
		t.Fatal("two readings of the same data in one batch got the same salt or key")
	}
	if keys[2] != clientKey {
		t.Fatal("ReadingKey ignores the client's key")
	}
	// Stamping again keeps the stamp.
	before := append([]byte(nil), rs[0].Salt...)
	if err := StampReadings(rs, taken.Add(time.Hour), rand.Reader); err != nil || rs[0].Time != taken.UnixNano() || !bytes.Equal(rs[0].Salt, before) {
		t.Fatalf("restamping changed a stamp (%v)", err)
	}

	rcs, err := owner.l.Append(context.Background(), rs)
	if err != nil {
		t.Fatal(err)
	}
	for i, rc := range rcs {
		r, err := ParseRecord(rc.Record)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := CanonicalData(rs[i].Data)
		if rc.Key != keys[i] || r.Key != keys[i] || r.Time != rs[i].Time || !bytes.Equal(r.Salt, rs[i].Salt) ||
			r.HData != DataHash(data, rs[i].Time, rs[i].Salt) {
			t.Errorf("reading %d: record key %s hData %s time %d, entry node computed key %s at %d", i, r.Key, r.HData, r.Time, keys[i], rs[i].Time)
		}
		if i < 2 && r.HData != keys[i] {
			t.Errorf("reading %d: hData %s is not the entry node's key %s", i, r.HData, keys[i])
		}
	}
	// The extremes of the allowed skew are taken too.
	for _, d := range []time.Duration{MaxClockSkew - time.Second, -MaxClockSkew + time.Second} {
		r := []Reading{{Thing: "t", Data: []byte(`1`)}}
		if err := StampReadings(r, owner.advance(0).Add(d), rand.Reader); err != nil {
			t.Fatal(err)
		}
		if _, err := owner.l.Append(context.Background(), r); err != nil {
			t.Errorf("skew %v: %v", d, err)
		}
	}
	if rep := owner.mustBeValid(); rep.Records != 5 {
		t.Fatalf("report %+v", rep)
	}
}

func TestReadingKeyNeedsAStamp(t *testing.T) {
	salt := make([]byte, SaltSize)
	cases := []struct {
		name string
		r    Reading
	}{
		{"not stamped", Reading{Thing: "t", Data: []byte(`1`)}},
		{"time only", Reading{Thing: "t", Data: []byte(`1`), Time: 5}},
		{"salt only", Reading{Thing: "t", Data: []byte(`1`), Salt: salt}},
		{"short salt", Reading{Thing: "t", Data: []byte(`1`), Time: 5, Salt: salt[:8]}},
		{"bad data", Reading{Thing: "t", Data: []byte(`{"a":`), Time: 5, Salt: salt}},
	}
	for _, c := range cases {
		_, err := ReadingKey(c.r)
		var ie *InputError
		if !errors.As(err, &ie) {
			t.Errorf("%s: err = %v", c.name, err)
		}
	}
	err := StampReadings([]Reading{{Data: []byte(`1`)}, {Data: []byte(`1`), Time: 5}}, time.Now(), rand.Reader)
	var ie *InputError
	if !errors.As(err, &ie) || ie.Index != 1 {
		t.Errorf("half a stamp: err = %v", err)
	}
}

func TestBadStampStoresNothing(t *testing.T) {
	f := newFixture(t)
	now := f.advance(0).UnixNano()
	salt := bytes.Repeat([]byte{7}, SaltSize)
	cases := []struct {
		name string
		r    Reading
		want string
	}{
		{"salt too short", Reading{Time: now, Salt: salt[:SaltSize-1]}, "salt is 15 bytes"},
		{"salt too long", Reading{Time: now, Salt: append(salt, 1)}, "salt is 17 bytes"},
		{"empty salt", Reading{Time: now, Salt: []byte{}}, "salt is 0 bytes"},
		{"time without salt", Reading{Time: now}, "set together"},
		{"salt without time", Reading{Salt: salt}, "set together"},
		{"time ahead", Reading{Time: now + int64(MaxClockSkew) + int64(time.Second), Salt: salt}, "away from this node's clock"},
		{"time behind", Reading{Time: now - int64(MaxClockSkew) - int64(time.Second), Salt: salt}, "away from this node's clock"},
		{"time 1970", Reading{Time: 1, Salt: salt}, "away from this node's clock"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := c.r
			bad.Thing, bad.Data = "t", []byte(`1`)
			_, err := f.l.Append(context.Background(), []Reading{{Thing: "ok", Data: []byte(`1`)}, bad})
			var ie *InputError
			if !errors.As(err, &ie) || ie.Index != 1 || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want an InputError at 1 saying %q", err, c.want)
			}
		})
	}
	if got := countStore(t, f.st); got != (storeCounts{}) {
		t.Fatalf("refused readings stored %+v", got)
	}
}

// storeCounts counts the entries of each kind a store holds.
type storeCounts struct{ records, blocks, keys, things, attachments int }

func countStore(t *testing.T, st *store.Store) storeCounts {
	t.Helper()
	var c storeCounts
	errs := []error{
		st.EachRecord(func([32]byte, []byte) error { c.records++; return nil }),
		st.EachBlock(func([20]byte, uint64, []byte) error { c.blocks++; return nil }),
		st.EachKeyIndex(func([20]byte, [32]byte) error { c.keys++; return nil }),
		st.EachThingIndex(func(string, int64, [32]byte) error { c.things++; return nil }),
		st.EachAttachment(func([20]byte, uint64, uint64, [32]byte) error { c.attachments++; return nil }),
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return c
}

// branchData is what a node holds of its own branch, as the bytes it would replicate.
type branchData struct {
	blocks  [][]byte
	records [][]byte
	byBlock map[uint64][][]byte // records by the number of the block they are attached to
}

func exportBranch(t *testing.T, f *fixture) branchData {
	t.Helper()
	blocks, err := f.st.Blocks(f.id.ID, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := branchData{blocks: blocks, byBlock: map[uint64][][]byte{}}
	err = f.st.EachRecord(func(_ [32]byte, raw []byte) error {
		r, err := ParseRecord(raw)
		if err != nil {
			return err
		}
		d.records = append(d.records, raw)
		d.byBlock[r.Block.No] = append(d.byBlock[r.Block.No], raw)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// nodeWithBranch is node A with records attached to genesis (sealed by block 1), to
// block 1 (sealed by block 2) and to block 2 (its unsealed head).
func nodeWithBranch(t *testing.T) (*fixture, branchData) {
	t.Helper()
	a := newFixture(t)
	for i := 0; i < 4; i++ {
		a.put("sensor-1", `{"i":`+string(rune('0'+i))+`}`)
	}
	a.mine()
	a.put("sensor-2", `{"i":9}`)
	a.put("sensor-2", `{"i":8}`)
	a.mine()
	a.put("sensor-2", `"open"`)
	a.mustBeValid()
	return a, exportBranch(t, a)
}

func TestIngestReplicatesABranch(t *testing.T) {
	a, d := nodeWithBranch(t)
	b := newFixture(t) // another identity, another store, the same genesis
	if a.id.ID == b.id.ID || a.g.Hash != b.g.Hash {
		t.Fatal("fixtures should differ in identity only")
	}
	ctx := context.Background()
	b.put("own", `1`) // B's own branch is there too, and strict
	b.mine()

	stats, err := b.l.Ingest(ctx, d.blocks, d.records)
	if err != nil {
		t.Fatal(err)
	}
	if stats != (IngestStats{Blocks: 2, Records: 7}) {
		t.Fatalf("stats %+v", stats)
	}
	rep := b.mustBeValid()
	if rep.Records != 8 || rep.Blocks != 3 || rep.Branches != 2 || rep.Partial != 0 || rep.Unsealed != 1 {
		t.Fatalf("B's report %+v", rep)
	}
	for _, raw := range d.records {
		r, _ := ParseRecord(raw)
		got, err := b.st.Record(r.TxID)
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("record %s on B: %v\n%s\n%s", r.TxID, err, got, raw)
		}
		ids, err := b.st.RecordsByKey(r.Key, 0)
		if err != nil || len(ids) != 1 || ids[0] != r.TxID {
			t.Fatalf("key index of %s on B: %x %v", r.TxID, ids, err)
		}
	}
	// Offline verification of B's store by someone who does not know B is strict
	// everywhere, and B holds all of A's records: still valid.
	if rep, err := Verify(ctx, b.st, b.g, testProof, Key{}); err != nil || !rep.Valid {
		t.Fatalf("strict verify: %+v %v", rep, err)
	}

	before := countStore(t, b.st)
	stats, err = b.l.Ingest(ctx, d.blocks, d.records)
	if err != nil || stats != (IngestStats{}) {
		t.Fatalf("second ingest: %+v %v", stats, err)
	}
	// A's branch goes on; B takes the new part, given with the block it links to.
	a.mine()
	more := exportBranch(t, a)
	stats, err = b.l.Ingest(ctx, more.blocks[1:], more.byBlock[2])
	if err != nil || stats != (IngestStats{Blocks: 1}) {
		t.Fatalf("third ingest: %+v %v", stats, err)
	}
	if after := countStore(t, b.st); after.blocks != before.blocks+1 || after.records != before.records {
		t.Fatalf("store went from %+v to %+v", before, after)
	}
	if rep := b.mustBeValid(); rep.Unsealed != 0 || rep.Partial != 0 {
		t.Fatalf("report %+v", rep)
	}
	// B's own branch still works.
	b.put("own", `2`)
	b.mine()
	b.mustBeValid()
}

// extraRecord has a sign a record like like (same block, thing, time and salt) with
// other data at position seq.
func extraRecord(t *testing.T, a *fixture, like []byte, seq uint64) []byte {
	t.Helper()
	r, err := ParseRecord(like)
	if err != nil {
		t.Fatal(err)
	}
	r.Data = []byte(`"extra"`)
	r.HData = DataHash(r.Data, r.Time, r.Salt)
	r.Key = r.HData
	r.TxID = TxID(r.Block.Hash, r.HData)
	r.Seq = seq
	raw, err := SignRecord(r, a.id)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// resign re-signs a block of a's branch after change altered its header.
func resign(t *testing.T, raw []byte, id *Identity, change func(h *BlockHeader)) []byte {
	t.Helper()
	blk, err := ParseBlock(raw)
	if err != nil {
		t.Fatal(err)
	}
	h := blk.BlockHeader
	change(&h)
	_, out, err := SignBlock(h, id)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestIngestRefusesAndStoresNothing(t *testing.T) {
	a, d := nodeWithBranch(t)
	b := newFixture(t)
	g := a.g
	// Block 1 of B's own branch, correctly made: B still never takes it from others.
	ownBlock := func() []byte {
		h := BlockHeader{Network: g.Hash, No: 1, Prev: g.Hash, Time: b.advance(time.Second).UnixNano(), Nonce: 1, Seal: MerkleRoot(nil)}
		proof, _ := testProof(g.Hash, 0, b.id.ID, 1, h.Time)
		h.Proof = proof
		_, raw, err := SignBlock(h, b.id)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}()
	flip := func(raw []byte, after string, skip int) []byte {
		out := append([]byte(nil), raw...)
		at := bytes.Index(out, []byte(after)) + len(after) + skip
		if out[at] == '0' {
			out[at] = '1'
		} else {
			out[at] = '0'
		}
		return out
	}
	// index of one of A's genesis-attached records, whose data is {"i":N}.
	sealed := 0
	for i, raw := range d.records {
		if bytes.Equal(raw, d.byBlock[0][0]) {
			sealed = i
		}
	}
	withRecord := func(i int, raw []byte) [][]byte {
		out := append([][]byte(nil), d.records...)
		out[i] = raw
		return out
	}
	// A fifth record A signs into genesis, whose records block 1 seals only four of.
	fifth := extraRecord(t, a, d.byBlock[0][0], 4)
	cases := []struct {
		name            string
		blocks, records [][]byte
		kind            string
		index           int
		want            string
	}{
		{"forged record signature", d.blocks, withRecord(3, flip(d.records[3], `"signature":"`, 10)), "record", 3, "record signature"},
		{"record of a block B does not hold", d.blocks[:1], d.byBlock[2], "record", 0, "block 2 of branch " + a.id.ID.String() + " is neither stored nor in this call"},
		{"tampered record data", d.blocks, withRecord(sealed, bytes.Replace(d.records[sealed], []byte(`"data":{"i":`), []byte(`"data":{"i":1`), 1)), "record", sealed, "record signature"},
		{"truncated record", d.blocks, withRecord(5, d.records[5][:len(d.records[5])/2]), "record", 5, "not valid JSON"},
		{"more records than the seal covers", d.blocks, append(append([][]byte(nil), d.byBlock[0]...), fifth), "record", 4, "at most 4 (block 1 seals 4), actual 5 with this one"},
		{"block with bad prev", [][]byte{d.blocks[0], resign(t, d.blocks[1], a.id, func(h *BlockHeader) { h.Prev[0] ^= 1 })}, d.records, "block", 1, "block prev"},
		{"block with bad proof", [][]byte{d.blocks[0], resign(t, d.blocks[1], a.id, func(h *BlockHeader) { h.Proof[0] ^= 1 })}, d.records, "block", 1, "block proof seed"},
		{"block of another network", [][]byte{resign(t, d.blocks[0], a.id, func(h *BlockHeader) { h.Network[0] ^= 1 })}, nil, "block", 0, "block network"},
		{"block without its parent", d.blocks[1:], nil, "block", 0, "parent block 1"},
		{"forged block signature", [][]byte{flip(d.blocks[0], `"sig":"`, 10)}, nil, "block", 0, "block signature"},
		{"block not in canonical form", [][]byte{append([]byte(" "), d.blocks[0]...)}, nil, "block", 0, "canonical"},
		{"two blocks at one place", [][]byte{d.blocks[0], resign(t, d.blocks[0], a.id, func(h *BlockHeader) { h.Time++ })}, nil, "block", 1, "conflicts with block 0"},
		{"block of B's own branch", append([][]byte{ownBlock}, d.blocks...), d.records, "block", 0, "own branch"},
		{"garbage block", [][]byte{d.blocks[0], []byte("\x00\xffgarbage")}, d.records, "block", 1, "not valid JSON"},
		{"truncated block", [][]byte{d.blocks[0][:len(d.blocks[0])-1]}, nil, "block", 0, "not valid JSON"},
		{"empty record", d.blocks, [][]byte{{}}, "record", 0, "not valid JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stats, err := b.l.Ingest(context.Background(), c.blocks, c.records)
			var ie *IngestError
			if !errors.As(err, &ie) || ie.Kind != c.kind || ie.Index != c.index || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %s %d saying %q", err, c.kind, c.index, c.want)
			}
			t.Log(err)
			if stats != (IngestStats{}) {
				t.Errorf("stats %+v", stats)
			}
			if got := countStore(t, b.st); got != (storeCounts{}) {
				t.Fatalf("a refused ingest stored %+v", got)
			}
		})
	}
	if rep := b.mustBeValid(); rep.Records != 0 || rep.Blocks != 0 {
		t.Fatalf("report %+v", rep)
	}
}

func TestIngestRefusesConflictsWithStoredData(t *testing.T) {
	a, d := nodeWithBranch(t)
	b := newFixture(t)
	ctx := context.Background()
	if _, err := b.l.Ingest(ctx, d.blocks, d.records); err != nil {
		t.Fatal(err)
	}
	// A signs a second record at a position B already holds.
	r, _ := ParseRecord(d.byBlock[1][0])
	twice := extraRecord(t, a, d.byBlock[1][0], r.Seq)
	// B's own records, coming back from elsewhere, are refused too.
	mine := b.put("own", `1`)
	before := countStore(t, b.st)
	cases := []struct {
		name            string
		blocks, records [][]byte
		kind, want      string
	}{
		{"other block at a stored position", [][]byte{resign(t, d.blocks[1], a.id, func(h *BlockHeader) { h.Time++ })}, nil, "block", "conflicts with stored block 2"},
		{"record position taken", nil, [][]byte{twice}, "record", "is taken by stored record"},
		{"a stored record's own branch", nil, [][]byte{append([]byte(nil), mine.Record...)}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stats, err := b.l.Ingest(ctx, c.blocks, c.records)
			if c.kind == "" { // identical to what B holds: skipped
				if err != nil || stats != (IngestStats{}) {
					t.Fatalf("%+v %v", stats, err)
				}
				return
			}
			var ie *IngestError
			if !errors.As(err, &ie) || ie.Kind != c.kind || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %s saying %q", err, c.kind, c.want)
			}
			if got := countStore(t, b.st); got != before {
				t.Fatalf("store went from %+v to %+v", before, got)
			}
		})
	}
	// A record of B's own branch that B does not hold.
	other := newFixture(t)
	asB, err := Open(Config{Genesis: b.g, Identity: b.id, Store: other.st, Proof: testProof})
	if err != nil {
		t.Fatal(err)
	}
	stray, err := asB.Append(ctx, []Reading{{Thing: "own", Data: []byte(`2`)}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.l.Ingest(ctx, nil, [][]byte{stray[0].Record})
	t.Log(err)
	var ie *IngestError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "own branch") {
		t.Fatalf("own-branch record: %v", err)
	}
	if got := countStore(t, b.st); got != before {
		t.Fatalf("store went from %+v to %+v", before, got)
	}
}

// A block whose seal covers fewer records than a node already holds of its parent is
// refused: the node holds records its miner did not seal.
func TestIngestRefusesSealShortOfHeldRecords(t *testing.T) {
	a, d := nodeWithBranch(t)
	b := newFixture(t)
	ctx := context.Background()
	// Before block 1 is known, five records attached to genesis check.
	five := append(append([][]byte(nil), d.byBlock[0]...), extraRecord(t, a, d.byBlock[0][0], 4))
	if stats, err := b.l.Ingest(ctx, nil, five); err != nil || stats.Records != 5 {
		t.Fatalf("%+v %v", stats, err)
	}
	before := countStore(t, b.st)
	_, err := b.l.Ingest(ctx, d.blocks, nil)
	var ie *IngestError
	if !errors.As(err, &ie) || ie.Kind != "block" || ie.Index != 0 || !strings.Contains(err.Error(), "sealed record count") {
		t.Fatalf("err = %v", err)
	}
	t.Log(err)
	if got := countStore(t, b.st); got != before {
		t.Fatalf("store went from %+v to %+v", before, got)
	}
}

func TestVerifyOfPartialBranch(t *testing.T) {
	a, d := nodeWithBranch(t)
	b := newFixture(t)
	ctx := context.Background()
	// B holds two of the four records block 1 seals, and both records block 2 seals.
	some := append(append([][]byte(nil), d.byBlock[0][1:3]...), d.byBlock[1]...)
	stats, err := b.l.Ingest(ctx, d.blocks, some)
	if err != nil || stats != (IngestStats{Blocks: 2, Records: 4}) {
		t.Fatalf("%+v %v", stats, err)
	}
	rep := b.mustBeValid()
	if rep.Partial != 1 || rep.Records != 4 || rep.Blocks != 2 {
		t.Fatalf("B's report %+v", rep)
	}
	// Strict for A's branch (as A itself, or offline with no identity): the seal of
	// block 1 cannot be complete.
	for _, self := range []Key{a.id.ID, {}} {
		rep, err := Verify(ctx, b.st, b.g, testProof, self)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Valid || !strings.Contains(rep.Where, "block 1 of branch "+a.id.ID.String()) || !strings.Contains(rep.Where, "sealed record count") {
			t.Fatalf("self %s: %+v", self, rep)
		}
	}
	// The rest of A's records complete it.
	if _, err := b.l.Ingest(ctx, nil, d.records); err != nil {
		t.Fatal(err)
	}
	if rep := b.mustBeValid(); rep.Partial != 0 || rep.Records != 7 {
		t.Fatalf("report %+v", rep)
	}
	if rep, err := Verify(ctx, b.st, b.g, testProof, a.id.ID); err != nil || !rep.Valid {
		t.Fatalf("strict: %+v %v", rep, err)
	}
}

// A batch whose write failed leaves its positions unused, so a block's records may sit at
// positions beyond the count its seal covers: still valid, whole or in part.
func TestPartialBranchWithUnusedPositions(t *testing.T) {
	a := newFixture(t)
	ctx := context.Background()
	a.put("t", `1`) // position 0
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.l.Append(cancelled, []Reading{{Thing: "t", Data: []byte(`2`)}, {Thing: "t", Data: []byte(`3`)}}); err == nil {
		t.Fatal("append with a cancelled context stored")
	}
	last := a.put("t", `4`) // position 3
	a.mine()
	a.mustBeValid()
	d := exportBranch(t, a)
	if r, _ := ParseRecord(last.Record); r.Seq != 3 || len(d.records) != 2 {
		t.Fatalf("seq %d, %d records", r.Seq, len(d.records))
	}
	b := newFixture(t)
	if _, err := b.l.Ingest(ctx, d.blocks, [][]byte{last.Record}); err != nil {
		t.Fatal(err)
	}
	if rep := b.mustBeValid(); rep.Partial != 1 {
		t.Fatalf("report %+v", rep)
	}
	if _, err := b.l.Ingest(ctx, nil, d.records); err != nil {
		t.Fatal(err)
	}
	if rep := b.mustBeValid(); rep.Partial != 0 || rep.Records != 2 {
		t.Fatalf("report %+v", rep)
	}
}

// Ingests that arrive together are checked one after the other against what
// the ones before them accepted, then written together: of two records taking
// the same position in one group, the second is refused as if the first were
// stored, and a failing call stores nothing while the others are written.
func TestIngestGroupSeesEarlierCalls(t *testing.T) {
	a, d := nodeWithBranch(t)
	b := newFixture(t)
	ctx := context.Background()
	r, _ := ParseRecord(d.byBlock[1][0])
	twice := extraRecord(t, a, d.byBlock[1][0], r.Seq)
	calls := []*ingestCall{
		{ctx: ctx, blocks: d.blocks, records: d.records},
		{ctx: ctx, records: [][]byte{twice}},                    // the first call's record holds the position
		{ctx: ctx, blocks: d.blocks, records: d.byBlock[1][:1]}, // the same bytes again: nothing new
	}
	for _, c := range calls {
		var bad int
		var err error
		if c.parsed, bad, err = ParseCheckedAll(c.records); err != nil {
			t.Fatalf("record %d: %v", bad, err)
		}
	}
	b.l.ingestGroup(calls)
	if calls[0].err != nil || calls[0].stats != (IngestStats{Blocks: 2, Records: 7}) {
		t.Fatalf("first call: %+v %v", calls[0].stats, calls[0].err)
	}
	var ie *IngestError
	if !errors.As(calls[1].err, &ie) || !strings.Contains(calls[1].err.Error(), "is taken by stored record") {
		t.Fatalf("second call: %v, want the position taken", calls[1].err)
	}
	if calls[2].err != nil || calls[2].stats != (IngestStats{}) {
		t.Fatalf("third call: %+v %v", calls[2].stats, calls[2].err)
	}
	if rep := b.mustBeValid(); rep.Records != 7 || rep.Blocks != 2 {
		t.Fatalf("report %+v", rep)
	}
}

// Concurrent Ingests of the same branch all succeed and store it once.
func TestConcurrentIngests(t *testing.T) {
	_, d := nodeWithBranch(t)
	b := newFixture(t)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, errs[i] = b.l.Ingest(context.Background(), d.blocks, d.records) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("ingest %d: %v", i, err)
		}
	}
	if rep := b.mustBeValid(); rep.Records != 7 || rep.Blocks != 2 {
		t.Fatalf("report %+v", rep)
	}
}
