package audit

import (
	"strings"
	"testing"

	"github.com/flownode/flownode/ledger"
)

func TestLocateDiffNamesTheField(t *testing.T) {
	want := `{"type":"block","covers":[{"seq":"1","leaf":"ab"},{"seq":"2","leaf":"cd"}],"sum":"00"}`
	cases := []struct{ got, field string }{
		{`{"type":"block","covers":[{"seq":"1","leaf":"ab"},{"seq":"2","leaf":"cD"}],"sum":"00"}`, "covers[1].leaf"},
		{`{"Type":"block","covers":[{"seq":"1","leaf":"ab"},{"seq":"2","leaf":"cd"}],"sum":"00"}`, "type"},
		{`{"type":"block", "covers":[{"seq":"1","leaf":"ab"},{"seq":"2","leaf":"cd"}],"sum":"00"}`, ""},
		{`{"type":"block","covers":[{"seq":"1","leaf":"ab"}],"sum":"00"}`, "covers"},
	}
	for _, c := range cases {
		if got := locateDiff([]byte(c.got), []byte(want)); got != c.field {
			t.Errorf("locateDiff(%s) = %q, want %q", c.got, got, c.field)
		}
	}
}

func TestLocateDecodeNamesTheField(t *testing.T) {
	line := `{"type":"flownode-audit","version":1,"branches":[{"id":"` + strings.Repeat("ab", 20) + `","membership":"AAAA"},{"id":"` +
		strings.Repeat("cd", 20) + `","membership":"A*AA"}],"sum":""}`
	if got := locateDecode([]byte(line), func() any { return &Header{} }); got != "branches[1].membership" {
		t.Errorf("locateDecode = %q, want branches[1].membership", got)
	}
	if got := locateDecode([]byte(`{"seq":"1","txID":"zz"}`), func() any { return &Cover{} }); got != "txID" {
		t.Errorf("locateDecode of a cover = %q, want txID", got)
	}
}

func blockAt(branch byte, no uint64, t int64) *ledger.Block {
	b := &ledger.Block{}
	b.Branch[0], b.No, b.Time = branch, no, t
	return b
}

func TestMergeOrderIsTimeThenBranchThenNumber(t *testing.T) {
	order := []*ledger.Block{blockAt(2, 1, 5), blockAt(1, 1, 7), blockAt(2, 2, 7), blockAt(1, 2, 9)}
	for i := 1; i < len(order); i++ {
		if !mergeLess(order[i-1], order[i]) || mergeLess(order[i], order[i-1]) {
			t.Errorf("block %d and %d out of merge order", i-1, i)
		}
	}
}

func TestWindowIsOneRunOfBlocks(t *testing.T) {
	b := &branch{blocks: []*ledger.Block{blockAt(1, 1, 10), blockAt(1, 2, 20), blockAt(1, 3, 30), blockAt(1, 4, 40)}}
	cases := []struct {
		from, to int64
		lo, hi   int
	}{{0, 0, 0, 4}, {15, 35, 1, 3}, {20, 30, 1, 2}, {0, 5, 0, 0}, {50, 0, 4, 4}}
	for _, c := range cases {
		a := &auditor{from: c.from, to: c.to}
		a.window(b)
		if b.lo != c.lo || b.hi != c.hi {
			t.Errorf("from %d to %d: window [%d,%d), want [%d,%d)", c.from, c.to, b.lo, b.hi, c.lo, c.hi)
		}
	}
}

func TestHoldersAreTheKeysSuccessorAndNext(t *testing.T) {
	id := func(b byte) ledger.Key { var k ledger.Key; k[0] = b; return k }
	a := &auditor{ring: []Holder{{ID: id(0x10)}, {ID: id(0x40)}, {ID: id(0x80)}, {ID: id(0xc0)}}}
	for _, c := range []struct {
		key  byte
		want []byte
	}{{0x20, []byte{0x40, 0x80, 0xc0}}, {0x40, []byte{0x40, 0x80, 0xc0}}, {0xd0, []byte{0x10, 0x40, 0x80}}, {0xb0, []byte{0xc0, 0x10, 0x40}}} {
		k := id(c.key)
		got := a.holders(&k)
		if len(got) != len(c.want) {
			t.Fatalf("key %x: %d holders", c.key, len(got))
		}
		for i, h := range got {
			if h.ID[0] != c.want[i] {
				t.Errorf("key %x: holder %d is %x, want %x", c.key, i, h.ID[0], c.want[i])
			}
		}
	}
	if a.holders(nil) != nil {
		t.Error("a record whose key is unknown has holders")
	}
}

func TestCheckRefusesWhatIsNotAnAuditFile(t *testing.T) {
	for _, c := range []struct{ in, where string }{
		{"", "line 1: trailer"},
		{"{}\n", "line 1 (header): type and version"},
		{"not json\n", "line 1"},
		{`{"type":"flownode-audit"}`, "line 1: line end"},
	} {
		rep, err := Check(strings.NewReader(c.in))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Valid || !strings.HasPrefix(rep.Where, c.where) {
			t.Errorf("Check(%q): %+v, want invalid at %q", c.in, rep, c.where)
		}
	}
}
