package store

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestLocateNamesTheFile: an entry still in the memtable is named as such; once Badger
// wrote it to a table (on Close), Locate names that table's file, which exists.
func TestLocateNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, LocalOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := Record{TxID: [32]byte{1}, Key: [20]byte{2}, Thing: "t", Value: []byte(`{"x":1}`)}
	if err := s.Write(context.Background(), Write{Records: []Record{rec}}); err != nil {
		t.Fatal(err)
	}
	if got := s.Locate(RecordKey(rec.TxID)); !regexp.MustCompile(`memtable.*\.mem`).MatchString(got) {
		t.Fatalf("before a flush: %q", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, LocalOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := s.Locate(RecordKey(rec.TxID))
	m := regexp.MustCompile(`^table (\d{6}\.sst) \(level \d\)$`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("after a flush: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, m[1])); err != nil {
		t.Fatalf("%s: %v", got, err)
	}
	if got := s.Locate(RecordKey([32]byte{9})); !regexp.MustCompile(`not found`).MatchString(got) {
		t.Fatalf("a missing entry: %q", got)
	}
}
