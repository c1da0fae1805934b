package store

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// Locate names the Badger file that holds key's newest value, for reports of a
// tampered entry, as far as Badger's table index can tell without reading files: a
// memtable (its write-ahead log, a *.mem file) when no table holds a version that new,
// else the tables whose key range covers key and whose newest version is at least the
// entry's — one table when the index leaves one candidate, all of them otherwise. A
// value of ValueThreshold bytes or more lives in a value-log file (*.vlog), which
// Badger's public API does not name; the key and its pointer are in the table.
func (s *Store) Locate(key []byte) string {
	version, size, err := s.entryInfo(key)
	if err != nil {
		return fmt.Sprintf("(no file: %v)", err)
	}
	where := s.tableOf(key, version)
	if size >= s.valueThreshold {
		where += ", its value in a value-log file (*.vlog)"
	}
	return where
}

// entryInfo returns the version and approximate value size of key's newest value.
func (s *Store) entryInfo(key []byte) (version uint64, size int64, err error) {
	err = s.view(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		version, size = item.Version(), item.ValueSize()
		return nil
	})
	return version, size, err
}

// tableOf names the table that holds key at version, or the candidates.
func (s *Store) tableOf(key []byte, version uint64) string {
	var newest uint64
	var cands []string
	for _, t := range s.db.Tables() {
		newest = max(newest, t.MaxVersion)
		if t.MaxVersion < version || len(t.Left) < 8 || len(t.Right) < 8 {
			continue
		}
		left, right := t.Left[:len(t.Left)-8], t.Right[:len(t.Right)-8] // without the version suffix
		if bytes.Compare(key, left) < 0 || bytes.Compare(key, right) > 0 {
			continue
		}
		cands = append(cands, fmt.Sprintf("%06d.sst (level %d)", t.ID, t.Level))
	}
	switch {
	case version > newest || len(cands) == 0:
		return "a memtable, not yet in a table: its write-ahead log is a *.mem file"
	case len(cands) == 1:
		return "table " + cands[0]
	default:
		return "one of the tables " + strings.Join(cands, ", ")
	}
}
