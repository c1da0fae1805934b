package store

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// TestDropRemovesRecordsAndPointers: a dropped record goes with every index
// entry (key, thing, attachment) and a dropped pointer with its entry; what is
// kept, and dropping what is not stored, change nothing else.
func TestDropRemovesRecordsAndPointers(t *testing.T) {
	s := openLocal(t, "")
	ctx := context.Background()
	var w Write
	for i := 0; i < 20; i++ {
		w.Records = append(w.Records, testRecord(i))
		w.Pointers = append(w.Pointers, Pointer{TxID: txID(100 + i), Key: testRecord(i).Key})
	}
	if err := s.Write(ctx, w); err != nil {
		t.Fatal(err)
	}
	before, err := s.RangeDigest([20]byte{}, [20]byte{})
	if err != nil {
		t.Fatal(err)
	}
	drop := Write{DropRecords: []Record{testRecord(3), testRecord(10), testRecord(999)}, DropPointers: [][32]byte{txID(105), txID(7777)}}
	drop.DropRecords[0].Value = nil // not needed to drop
	if err := s.Write(ctx, drop); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{3, 10} {
		r := testRecord(i)
		if _, err := s.Record(r.TxID); !errors.Is(err, ErrNotFound) {
			t.Errorf("record %d after its drop: %v", i, err)
		}
		ids, _ := s.RecordsByKey(r.Key, 0)
		things, _ := s.RecordsByThing(r.Thing, 0, 0, 0)
		if slices.Contains(ids, r.TxID) || slices.Contains(things, r.TxID) {
			t.Errorf("record %d still indexed after its drop", i)
		}
		att, _ := s.BlockRecords(r.Branch, r.BlockNo)
		for _, a := range att {
			if a.TxID == r.TxID {
				t.Errorf("record %d still attached after its drop", i)
			}
		}
	}
	if _, err := s.Pointer(txID(105)); !errors.Is(err, ErrNotFound) {
		t.Errorf("pointer after its drop: %v", err)
	}
	if b, err := s.Record(txID(4)); err != nil || string(b) != string(recordValue(txID(4))) {
		t.Errorf("a kept record: %v", err)
	}
	after, err := s.RangeDigest([20]byte{}, [20]byte{})
	if err != nil {
		t.Fatal(err)
	}
	if after.Records != before.Records-2 || after.Pointers != before.Pointers-1 {
		t.Errorf("digest counts %d records, %d pointers after the drop; want %d, %d", after.Records, after.Pointers, before.Records-2, before.Pointers-1)
	}
}
