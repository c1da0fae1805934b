package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// openLocal opens a store with the local profile in dir (a fresh temp dir if
// empty) and closes it when the test ends.
func openLocal(t testing.TB, dir string) *Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := Open(dir, LocalOptions(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// txID returns a deterministic txID for i.
func txID(i int) [32]byte { return sha256.Sum256([]byte(fmt.Sprintf("tx %d", i))) }

// branchID returns a deterministic branch for i.
func branchID(i int) [20]byte {
	var b [20]byte
	binary.BigEndian.PutUint32(b[16:], uint32(i))
	b[0] = 0xb0
	return b
}

// testRecord returns record i: key i%7, thing "thing-(i%3)", time i seconds,
// attached to block i/10 of branch 1 at seq i%10, with a 300-byte JSON-ish
// value that depends on its txID.
func testRecord(i int) Record {
	id := txID(i)
	var key [20]byte
	key[19] = byte(i % 7)
	return Record{
		TxID:    id,
		Key:     key,
		Thing:   fmt.Sprintf("thing-%d", i%3),
		Time:    int64(i) * int64(time.Second),
		Branch:  branchID(1),
		BlockNo: uint64(i / 10),
		Seq:     uint64(i % 10),
		Value:   recordValue(id),
	}
}

// recordValue is a 300-byte value derived from txID, so that any reader can
// check a record's bytes from its ID alone.
func recordValue(id [32]byte) []byte {
	v := fmt.Appendf(nil, `{"txID":"%x","data":"`, id)
	for len(v) < 298 {
		v = append(v, 'x')
	}
	return append(v, `"}`...)
}

func mustWrite(t testing.TB, s *Store, w Write) {
	t.Helper()
	if err := s.Write(context.Background(), w); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// checkGoroutines fails the test if goroutines started during it outlive it.
// Register it before opening stores so that it runs after their Close.
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines leaked:\n%s", n-before, buf[:runtime.Stack(buf, true)])
		}
	})
}

// TestSnapshotsSeeOneMoment: snapshots taken together agree with each other and do not
// see writes committed after them, while the store itself does.
func TestSnapshotsSeeOneMoment(t *testing.T) {
	s := openLocal(t, t.TempDir())
	ctx := context.Background()
	write := func(i byte) {
		t.Helper()
		if err := s.Write(ctx, Write{Records: []Record{{TxID: [32]byte{i}, Key: [20]byte{i}, Thing: "t", Time: int64(i), Value: []byte{i}}}}); err != nil {
			t.Fatal(err)
		}
	}
	write(1)
	snaps, err := s.Snapshots(3)
	if err != nil {
		t.Fatal(err)
	}
	write(2)
	for i, sn := range snaps {
		if _, err := sn.Record([32]byte{1}); err != nil {
			t.Fatalf("snapshot %d misses a record written before it: %v", i, err)
		}
		if _, err := sn.Record([32]byte{2}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("snapshot %d sees a record written after it: %v", i, err)
		}
		n := 0
		if err := sn.EachRecord(func([32]byte, []byte) error { n++; return nil }); err != nil || n != 1 {
			t.Fatalf("snapshot %d iterates %d records (%v)", i, n, err)
		}
		sn.Close()
		sn.Close() // twice is fine
	}
	if _, err := s.Record([32]byte{2}); err != nil {
		t.Fatalf("the store itself misses the later record: %v", err)
	}
}
