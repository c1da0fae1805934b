package store

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := openLocal(t, dir)

	rec := testRecord(1)
	rec.Value = []byte("{\"b\": 1,\n \"a\": \"ü\\u00fc\"}  ") // odd bytes stay odd
	blk := Block{Branch: branchID(1), No: 0, Hash: txID(100), Value: []byte(`{"no":"0"}`)}
	mustWrite(t, s, Write{
		Records: []Record{rec},
		Blocks:  []Block{blk},
		Meta:    map[string][]byte{"genesis": []byte("g"), "empty": {}},
	})

	check := func(s *Store) {
		t.Helper()
		got, err := s.Record(rec.TxID)
		if err != nil || !bytes.Equal(got, rec.Value) {
			t.Fatalf("Record = %q, %v; want %q", got, err, rec.Value)
		}
		got, err = s.Block(blk.Branch, blk.No)
		if err != nil || !bytes.Equal(got, blk.Value) {
			t.Fatalf("Block = %q, %v", got, err)
		}
		br, no, err := s.BlockByHash(blk.Hash)
		if err != nil || br != blk.Branch || no != blk.No {
			t.Fatalf("BlockByHash = %x %d %v", br, no, err)
		}
		if got, err := s.Meta("genesis"); err != nil || string(got) != "g" {
			t.Fatalf("Meta = %q, %v", got, err)
		}
		if got, err := s.Meta("empty"); err != nil || len(got) != 0 {
			t.Fatalf("Meta(empty) = %q, %v", got, err)
		}
	}
	check(s)

	// The copy returned is the caller's: changing it changes nothing stored.
	got, _ := s.Record(rec.TxID)
	got[0] = 'X'
	check(s)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(openLocal(t, dir))
}

func TestPointReadMisses(t *testing.T) {
	s := openLocal(t, "")
	if _, err := s.Record(txID(1)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Record: %v", err)
	}
	if _, err := s.Block(branchID(1), 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("Block: %v", err)
	}
	if _, _, err := s.BlockByHash(txID(1)); !errors.Is(err, ErrNotFound) {
		t.Errorf("BlockByHash: %v", err)
	}
	if _, _, err := s.Head(branchID(1)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Head: %v", err)
	}
	if _, err := s.Meta("x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Meta: %v", err)
	}
	if ids, err := s.RecordsByKey([20]byte{}, 0); err != nil || len(ids) != 0 {
		t.Errorf("RecordsByKey = %v, %v", ids, err)
	}
	if brs, err := s.Branches(); err != nil || len(brs) != 0 {
		t.Errorf("Branches = %v, %v", brs, err)
	}
}

func TestRecordsByKey(t *testing.T) {
	s := openLocal(t, "")
	var recs []Record
	for i := range 70 {
		recs = append(recs, testRecord(i))
	}
	mustWrite(t, s, Write{Records: recs})

	var key3 [20]byte
	key3[19] = 3
	var want [][32]byte
	for _, r := range recs {
		if r.Key == key3 {
			want = append(want, r.TxID)
		}
	}
	slices.SortFunc(want, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })

	got, err := s.RecordsByKey(key3, 0)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("RecordsByKey = %x, %v; want %x", got, err, want)
	}
	got, err = s.RecordsByKey(key3, 4)
	if err != nil || !slices.Equal(got, want[:4]) {
		t.Fatalf("RecordsByKey limit 4 = %x, %v", got, err)
	}
}

func TestRecordsByThing(t *testing.T) {
	s := openLocal(t, "")
	times := []int64{math.MinInt64, -5e9, -1, 0, 1, 7, 1e9, math.MaxInt64}
	var recs []Record
	for i, tm := range times {
		r := testRecord(i)
		r.Thing, r.Time = "ab", tm
		recs = append(recs, r)
	}
	// Things whose names share a prefix with "ab" must not leak into its range.
	for i, th := range []string{"a", "abc", "ab\x00", "b", ""} {
		r := testRecord(100 + i)
		r.Thing, r.Time = th, 3
		recs = append(recs, r)
	}
	slices.Reverse(recs) // write order must not matter
	mustWrite(t, s, Write{Records: recs})

	ids := func(idx ...int) [][32]byte {
		var out [][32]byte
		for _, i := range idx {
			out = append(out, txID(i))
		}
		return out
	}
	tests := []struct {
		name     string
		from, to int64
		limit    int
		want     [][32]byte
	}{
		{"all", math.MinInt64, 0, 0, ids(0, 1, 2, 3, 4, 5, 6, 7)},
		{"from is inclusive", -1, 0, 0, ids(2, 3, 4, 5, 6, 7)},
		{"to is exclusive", math.MinInt64, 1, 0, ids(0, 1, 2, 3)},
		{"negative range", -5e9, -1, 0, ids(1)},
		{"across zero", -1, 8, 0, ids(2, 3, 4, 5)},
		{"one instant", 7, 8, 0, ids(5)},
		{"empty range", 2, 7, 0, nil},
		{"to before from", 5, 1, 0, nil},
		{"to == 0 means open", 1, 0, 0, ids(4, 5, 6, 7)},
		{"limit", math.MinInt64, 0, 3, ids(0, 1, 2)},
		{"max time", math.MaxInt64, 0, 0, ids(7)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.RecordsByThing("ab", tt.from, tt.to, tt.limit)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("RecordsByThing(ab, %d, %d, %d) = %x, %v; want %x", tt.from, tt.to, tt.limit, got, err, tt.want)
			}
		})
	}
	for i, th := range []string{"a", "abc", "ab\x00", "b", ""} {
		got, err := s.RecordsByThing(th, math.MinInt64, 0, 0)
		if err != nil || !slices.Equal(got, ids(100+i)) {
			t.Errorf("RecordsByThing(%q) = %x, %v", th, got, err)
		}
	}
	if got, err := s.RecordsByThing("nobody", math.MinInt64, 0, 0); err != nil || got != nil {
		t.Errorf("RecordsByThing(nobody) = %x, %v", got, err)
	}
	if _, err := s.RecordsByThing(string(make([]byte, MaxThingLen+1)), 0, 0, 0); !errors.Is(err, ErrTooLarge) {
		t.Errorf("RecordsByThing(too long) err = %v", err)
	}
}

func TestBlockRecords(t *testing.T) {
	s := openLocal(t, "")
	br := branchID(1)
	seqs := []uint64{0, 1, 2, 255, 256, 1 << 40}
	var recs []Record
	for i, seq := range seqs {
		r := testRecord(i)
		r.Branch, r.BlockNo, r.Seq = br, 5, seq
		recs = append(recs, r)
	}
	// Neighbours in key space: the blocks before and after, another branch.
	for i, at := range []struct {
		br [20]byte
		no uint64
	}{{br, 4}, {br, 6}, {branchID(2), 5}} {
		r := testRecord(50 + i)
		r.Branch, r.BlockNo, r.Seq = at.br, at.no, 0
		recs = append(recs, r)
	}
	slices.Reverse(recs)
	mustWrite(t, s, Write{Records: recs})

	got, err := s.BlockRecords(br, 5)
	if err != nil {
		t.Fatal(err)
	}
	var want []Attached
	for i, seq := range seqs {
		want = append(want, Attached{Seq: seq, TxID: txID(i)})
	}
	if !slices.Equal(got, want) {
		t.Fatalf("BlockRecords = %v\nwant %v", got, want)
	}
	if got, err := s.BlockRecords(br, 7); err != nil || len(got) != 0 {
		t.Fatalf("BlockRecords(empty block) = %v, %v", got, err)
	}
}

func TestBlocksHeadBranches(t *testing.T) {
	s := openLocal(t, "")
	// Adjacent branch IDs, and block numbers whose bytes differ in every
	// position, catch off-by-one prefix and ordering mistakes.
	b1, b2, b3 := branchID(1), branchID(2), branchID(3)
	nos := []uint64{0, 1, 2, 255, 256, 1 << 32, math.MaxUint64}
	var blocks []Block
	for _, no := range nos {
		for _, br := range [][20]byte{b1, b3} {
			blocks = append(blocks, Block{Branch: br, No: no, Hash: txID(int(no%1000) + int(br[19])*1000),
				Value: []byte{br[19], byte(no)}})
		}
	}
	blocks = append(blocks, Block{Branch: b2, No: 9, Hash: txID(-1), Value: []byte("b2")})
	mustWrite(t, s, Write{Blocks: blocks})

	brs, err := s.Branches()
	if err != nil || !slices.Equal(brs, [][20]byte{b1, b2, b3}) {
		t.Fatalf("Branches = %x, %v", brs, err)
	}
	no, v, err := s.Head(b1)
	if err != nil || no != math.MaxUint64 || !bytes.Equal(v, []byte{1, 0xff}) {
		t.Fatalf("Head(b1) = %d %x %v", no, v, err)
	}
	no, v, err = s.Head(b2)
	if err != nil || no != 9 || string(v) != "b2" {
		t.Fatalf("Head(b2) = %d %q %v", no, v, err)
	}
	got, err := s.Blocks(b3, 2, 3)
	want := [][]byte{{3, 2}, {3, 255}, {3, 0}} // 256 is byte 0
	if err != nil || !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("Blocks(b3, 2, 3) = %x, %v", got, err)
	}
	if got, _ := s.Blocks(b1, 0, 0); len(got) != len(nos) {
		t.Fatalf("Blocks(b1) has %d blocks, want %d", len(got), len(nos))
	}
	if got, _ := s.Blocks(b2, 10, 0); len(got) != 0 {
		t.Fatalf("Blocks(b2, 10) = %x", got)
	}
	if _, _, err := s.Head(branchID(4)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Head(no blocks) err = %v", err)
	}
}

// TestRawAccess covers access.go: raw reads by key, Closed and Exists.
func TestRawAccess(t *testing.T) {
	dir := t.TempDir()
	if Exists(dir) {
		t.Fatal("Exists before Open")
	}
	s := openLocal(t, dir)
	r := testRecord(1)
	mustWrite(t, s, Write{Records: []Record{r}})
	tk, _ := ThingIndexKey(r.Thing, r.Time, r.TxID)
	for _, k := range [][]byte{RecordKey(r.TxID), KeyIndexKey(r.Key, r.TxID), tk, AttachmentKey(r.Branch, r.BlockNo, r.Seq)} {
		if _, err := s.Get(k); err != nil {
			t.Errorf("Get(%x): %v", k, err)
		}
	}
	if v, _ := s.Get(AttachmentKey(r.Branch, r.BlockNo, r.Seq)); !bytes.Equal(v, r.TxID[:]) {
		t.Errorf("attachment value = %x", v)
	}
	if _, err := s.Get(RecordKey(txID(2))); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(missing): %v", err)
	}
	if s.Closed() {
		t.Error("Closed before Close")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !s.Closed() || !Exists(dir) {
		t.Errorf("after Close: Closed %v, Exists %v", s.Closed(), Exists(dir))
	}
}
