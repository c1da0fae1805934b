package store

import (
	"bytes"
	"errors"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func TestEach(t *testing.T) {
	s := openLocal(t, "")
	const n = 50
	var recs []Record
	for i := range n {
		recs = append(recs, testRecord(i))
	}
	blocks := []Block{
		{Branch: branchID(1), No: 0, Hash: txID(-1), Value: []byte("b0")},
		{Branch: branchID(1), No: 1, Hash: txID(-2), Value: []byte("b1")},
	}
	mustWrite(t, s, Write{Records: recs, Blocks: blocks, Meta: map[string][]byte{"m": []byte("v")}})

	byID := map[[32]byte]Record{}
	for _, r := range recs {
		byID[r.TxID] = r
	}
	count := 0
	err := s.EachRecord(func(id [32]byte, v []byte) error {
		count++
		if !bytes.Equal(v, byID[id].Value) {
			t.Errorf("EachRecord %x: value differs", id)
		}
		return nil
	})
	if err != nil || count != n {
		t.Fatalf("EachRecord: %d records, %v", count, err)
	}

	count = 0
	err = s.EachKeyIndex(func(key [20]byte, id [32]byte) error {
		count++
		if byID[id].Key != key {
			t.Errorf("EachKeyIndex %x: key %x", id, key)
		}
		return nil
	})
	if err != nil || count != n {
		t.Fatalf("EachKeyIndex: %d entries, %v", count, err)
	}

	count = 0
	err = s.EachThingIndex(func(thing string, tm int64, id [32]byte) error {
		count++
		if r := byID[id]; r.Thing != thing || r.Time != tm {
			t.Errorf("EachThingIndex %x: %q %d", id, thing, tm)
		}
		return nil
	})
	if err != nil || count != n {
		t.Fatalf("EachThingIndex: %d entries, %v", count, err)
	}

	count = 0
	err = s.EachAttachment(func(br [20]byte, no, seq uint64, id [32]byte) error {
		count++
		if r := byID[id]; r.Branch != br || r.BlockNo != no || r.Seq != seq {
			t.Errorf("EachAttachment %x: %x/%d/%d", id, br, no, seq)
		}
		return nil
	})
	if err != nil || count != n {
		t.Fatalf("EachAttachment: %d entries, %v", count, err)
	}

	var got []string
	err = s.EachBlock(func(br [20]byte, no uint64, v []byte) error {
		got = append(got, string(v))
		return nil
	})
	if err != nil || len(got) != 2 || got[0] != "b0" || got[1] != "b1" {
		t.Fatalf("EachBlock = %q, %v", got, err)
	}

	// fn's error stops the walk and comes back as is.
	stop := errors.New("stop")
	count = 0
	err = s.EachRecord(func([32]byte, []byte) error { count++; return stop })
	if err != stop || count != 1 {
		t.Fatalf("EachRecord with failing fn: %v after %d", err, count)
	}

	// A read nested in a callback works (the verifier reads records while
	// walking attachments).
	err = s.EachAttachment(func(_ [20]byte, _, _ uint64, id [32]byte) error {
		_, err := s.Record(id)
		return err
	})
	if err != nil {
		t.Fatalf("nested read: %v", err)
	}
}

// TestCorruptEntries plants entries of the wrong shape with Raw and expects
// errors wrapping ErrCorrupt, never a panic.
func TestCorruptEntries(t *testing.T) {
	br := branchID(1)
	tests := []struct {
		name     string
		key, val []byte
		read     func(s *Store) error
	}{
		{"short record key", []byte("r123"), []byte("x"), func(s *Store) error {
			return s.EachRecord(func([32]byte, []byte) error { return nil })
		}},
		{"long key index", append(KeyIndexKey([20]byte{}, txID(1)), 0), nil, func(s *Store) error {
			_, err := s.RecordsByKey([20]byte{}, 0)
			return err
		}},
		{"key index walk", []byte("k"), nil, func(s *Store) error {
			return s.EachKeyIndex(func([20]byte, [32]byte) error { return nil })
		}},
		{"thing length past the key", []byte("t\xff\xffab"), nil, func(s *Store) error {
			return s.EachThingIndex(func(string, int64, [32]byte) error { return nil })
		}},
		{"thing key short", []byte("t\x00\x02ab\x80"), nil, func(s *Store) error {
			_, err := s.RecordsByThing("ab", -1<<63, 0, 0)
			return err
		}},
		{"attachment value", AttachmentKey(br, 1, 0), []byte("short"), func(s *Store) error {
			_, err := s.BlockRecords(br, 1)
			return err
		}},
		{"attachment walk", AttachmentKey(br, 1, 0)[:20], []byte("x"), func(s *Store) error {
			return s.EachAttachment(func([20]byte, uint64, uint64, [32]byte) error { return nil })
		}},
		{"block key short", BlockKey(br, 0)[:25], []byte("x"), func(s *Store) error {
			_, err := s.Branches()
			return err
		}},
		{"head key short", BlockKey(br, 0)[:25], []byte("x"), func(s *Store) error {
			_, _, err := s.Head(br)
			return err
		}},
		{"blocks walk", []byte("b"), []byte("x"), func(s *Store) error {
			return s.EachBlock(func([20]byte, uint64, []byte) error { return nil })
		}},
		{"block ref", BlockHashKey(txID(1)), []byte("short"), func(s *Store) error {
			_, _, err := s.BlockByHash(txID(1))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openLocal(t, "")
			err := s.Raw().Update(func(txn *badger.Txn) error { return txn.Set(tt.key, tt.val) })
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.read(s); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
		})
	}
}
