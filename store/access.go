package store

import (
	"os"
	"path/filepath"
)

// Get returns a copy of the value of a raw key built with the functions in keys.go,
// or ErrNotFound. The verifier uses it to check index entries one by one.
func (r *Reader) Get(key []byte) ([]byte, error) { return r.get(key) }

// Closed reports whether Close has been called.
func (s *Store) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Exists reports whether dir holds a Badger store (its MANIFEST), so offline tools can
// say "no store here" instead of creating an empty one.
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "MANIFEST"))
	return err == nil
}
