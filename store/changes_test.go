package store

import (
	"context"
	"testing"
)

// TestChangesSinceAVersion: what a snapshot saw is left out; what came after, written
// or deleted, comes once per key, newest version; Before gives the old value.
func TestChangesSinceAVersion(t *testing.T) {
	s, err := Open(t.TempDir(), LocalOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	a := Record{TxID: [32]byte{1}, Thing: "t", Value: []byte(`"a"`)}
	b := Record{TxID: [32]byte{2}, Thing: "t", Value: []byte(`"b"`)}
	if err := s.Write(ctx, Write{Records: []Record{a, b}}); err != nil {
		t.Fatal(err)
	}
	snaps, err := s.Snapshots(1)
	if err != nil {
		t.Fatal(err)
	}
	since := snaps[0].Version()
	snaps[0].Close()
	c := Record{TxID: [32]byte{3}, Thing: "t", Value: []byte(`"c"`)}
	a2 := a
	a2.Value = []byte(`"a2"`)
	for _, w := range []Write{{Records: []Record{c}}, {Records: []Record{a2}}, {Records: []Record{c}}, {DropRecords: []Record{b}}} {
		if err := s.Write(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	type seen struct {
		val     string
		deleted bool
	}
	got := map[[32]byte]seen{}
	err = s.Changes(PrefixRecord, since, true, func(c Change) error {
		id, err := ParseRecordKey(c.Key)
		if err != nil {
			return err
		}
		if _, again := got[id]; again {
			t.Errorf("%x came twice", id)
		}
		if c.Version <= since {
			t.Errorf("%x at version %d, not after %d", id, c.Version, since)
		}
		got[id] = seen{string(c.Value), c.Deleted}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[[32]byte]seen{a.TxID: {`"a2"`, false}, b.TxID: {"", true}, c.TxID: {`"c"`, false}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%x: %+v, want %+v", id, got[id], w)
		}
	}
	if old, ok, err := s.Before(RecordKey(b.TxID), since); err != nil || !ok || string(old) != `"b"` {
		t.Fatalf("b before: %q %v %v", old, ok, err)
	}
	if _, ok, err := s.Before(RecordKey(c.TxID), since); err != nil || ok {
		t.Fatalf("c did not exist before: %v %v", ok, err)
	}
	if n, err := s.Count(PrefixRecord); err != nil || n != 2 {
		t.Fatalf("count %d %v", n, err)
	}
}
