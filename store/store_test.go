package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
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
	o, err := ProfileOptions("local")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir, o, zaptest.NewLogger(t))
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
