package ledger

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/flownode/flownode/store"
)

// tamperedLedger builds a small valid ledger — sealed records, unsealed ones, two blocks —
// and then lets change alter the raw Badger entries directly, as an attacker with the
// disk would. verify must then fail and name the place.
func tamperedLedger(t *testing.T, change func(f *fixture, db *badger.DB, rcs []Receipt)) *Report {
	t.Helper()
	f := newFixture(t)
	var rcs []Receipt
	for i := 0; i < 4; i++ {
		rcs = append(rcs, f.put("sensor-1", `{"i":`+string(rune('0'+i))+`}`))
	}
	f.mine()
	rcs = append(rcs, f.put("sensor-2", `{"i":9}`))
	f.mine()
	rcs = append(rcs, f.put("sensor-2", `"open"`))
	f.mustBeValid()
	change(f, f.st.Raw(), rcs)
	rep := f.verify()
	if rep.Valid {
		t.Fatal("verify did not notice the change")
	}
	t.Logf("verify: %s (expected %s, actual %s)", rep.Where, rep.Expected, rep.Actual)
	return rep
}

func rawGet(t *testing.T, db *badger.DB, key []byte) []byte {
	t.Helper()
	var v []byte
	err := db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(key)
		if err != nil {
			return err
		}
		v, err = it.ValueCopy(nil)
		return err
	})
	if err != nil {
		t.Fatalf("raw get %x: %v", key, err)
	}
	return v
}

func rawSet(t *testing.T, db *badger.DB, key, val []byte) {
	t.Helper()
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set(key, val) }); err != nil {
		t.Fatal(err)
	}
}

// flipByte changes one byte inside the value, keeping it printable so the test is
// about tampering, not about JSON syntax.
func flipByte(v []byte, at int) []byte {
	out := append([]byte(nil), v...)
	if out[at] == '1' {
		out[at] = '2'
	} else {
		out[at] = '1'
	}
	return out
}

func wantWhere(t *testing.T, rep *Report, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(rep.Where, p) {
			t.Errorf("where %q does not name %q", rep.Where, p)
		}
	}
}

func TestTamperRecordByte(t *testing.T) {
	var tx Hash
	rep := tamperedLedger(t, func(f *fixture, db *badger.DB, rcs []Receipt) {
		tx = rcs[1].TxID
		k := store.RecordKey(tx)
		v := rawGet(t, db, k)
		at := strings.Index(string(v), `"i":1`) + 4
		rawSet(t, db, k, flipByte(v, at))
	})
	// The sealed record's leaf no longer matches block 1's seal, or its signature
	// fails: either way the place is named.
	if !strings.Contains(rep.Where, tx.String()) && !strings.Contains(rep.Where, "block 1") {
		t.Fatalf("where %q names neither the record nor its sealing block", rep.Where)
	}
}

func TestTamperUnsealedRecordSignature(t *testing.T) {
	var tx Hash
	rep := tamperedLedger(t, func(f *fixture, db *badger.DB, rcs []Receipt) {
		tx = rcs[5].TxID
		k := store.RecordKey(tx)
		v := rawGet(t, db, k)
		at := strings.Index(string(v), `"open"`) + 1
		rawSet(t, db, k, append(append(append([]byte(nil), v[:at]...), 'O'), v[at+1:]...))
	})
	wantWhere(t, rep, "record "+tx.String(), "signature")
}

func TestTamperBlockByte(t *testing.T) {
	rep := tamperedLedger(t, func(f *fixture, db *badger.DB, rcs []Receipt) {
		k := store.BlockKey(f.id.ID, 2)
		v := rawGet(t, db, k)
		at := strings.Index(string(v), `"time":"`) + len(`"time":"`) + 5
		rawSet(t, db, k, flipByte(v, at))
	})
	wantWhere(t, rep, "block 2", "block hash")
}

func TestTamperKeyIndexEntry(t *testing.T) {
	rep := tamperedLedger(t, func(f *fixture, db *badger.DB, rcs []Receipt) {
		// Re-point the key index: one byte of the entry's key changes.
		old := store.KeyIndexKey(rcs[2].Key, rcs[2].TxID)
		moved := append([]byte(nil), old...)
		moved[1] ^= 0x01
		if err := db.Update(func(txn *badger.Txn) error {
			if err := txn.Delete(old); err != nil {
				return err
			}
			return txn.Set(moved, nil)
		}); err != nil {
			t.Fatal(err)
		}
	})
	wantWhere(t, rep, "record ", "key index entry")
}

func TestTamperAttachmentValue(t *testing.T) {
	rep := tamperedLedger(t, func(f *fixture, db *badger.DB, rcs []Receipt) {
		k := store.AttachmentKey(f.id.ID, 0, 2)
		v := rawGet(t, db, k)
		v[0] ^= 0xff
		rawSet(t, db, k, v)
	})
	// The seal of block 1 covers the attachment list; either check may fire first.
	if !strings.Contains(rep.Where, "block 1") && !strings.Contains(rep.Where, "attachment") {
		t.Fatalf("where %q", rep.Where)
	}
}

func TestExtraIndexEntryIsFound(t *testing.T) {
	rep := tamperedLedger(t, func(f *fixture, db *badger.DB, rcs []Receipt) {
		k, err := store.ThingIndexKey("sensor-1", 42, rcs[4].TxID)
		if err != nil {
			t.Fatal(err)
		}
		rawSet(t, db, k, nil)
	})
	wantWhere(t, rep, "thing index entry sensor-1@42")
}

func TestVerifyOfEmptyStoreIsValid(t *testing.T) {
	f := newFixture(t)
	rep, err := Verify(context.Background(), f.st, f.g, testProof, f.id.ID)
	if err != nil || !rep.Valid {
		t.Fatalf("%+v %v", rep, err)
	}
}

// TestTamperNamesRecordBlockEntryAndFile: a changed byte of a sealed record is named
// by the record (txID, key, Thing), its block and its store entry, and — once Badger
// wrote the entry to a table — by that table's file, which exists in the data dir.
func TestTamperNamesRecordBlockEntryAndFile(t *testing.T) {
	var rc Receipt
	var f *fixture
	rep := tamperedLedger(t, func(fx *fixture, db *badger.DB, rcs []Receipt) {
		f, rc = fx, rcs[1]
		k := store.RecordKey(rc.TxID)
		v := rawGet(t, db, k)
		rawSet(t, db, k, flipByte(v, strings.Index(string(v), `"i":1`)+4))
	})
	want := Location{Record: rc.TxID.String(), Key: rc.Key.String(), Thing: "sensor-1",
		Block: blockName(rc.Block.Branch, rc.Block.No), Entry: "r/" + rc.TxID.String()}
	if rep.Location == nil || rep.Location.File == "" {
		t.Fatalf("location %+v", rep.Location)
	}
	if got := *rep.Location; got.Record != want.Record || got.Key != want.Key || got.Thing != want.Thing || got.Block != want.Block || got.Entry != want.Entry {
		t.Fatalf("location %+v, want %+v", got, want)
	}
	wantWhere(t, rep, "record "+rc.TxID.String(), "key "+rc.Key.String(), "thing sensor-1", "sealed by block 1")

	f.reopen() // Badger writes its memtable to a table on close
	rep = f.verify()
	m := regexp.MustCompile(`^table (\d{6}\.sst) \(level \d\)`).FindStringSubmatch(rep.Location.File)
	if rep.Valid || m == nil {
		t.Fatalf("after a flush: %+v at %+v", rep, rep.Location)
	}
	if _, err := os.Stat(filepath.Join(f.dir, m[1])); err != nil {
		t.Fatal(err)
	}
	t.Logf("after a flush: %s, %s", rep.Location.Entry, rep.Location.File)
}
