package store

import (
	"github.com/dgraph-io/badger/v4"
)

// Reader holds the read methods. A Store reads each call in a fresh read transaction;
// a Snapshot reads every call in one transaction, at one moment.
type Reader struct {
	view func(fn func(txn *badger.Txn) error) error
	ends *endsHints // the Store's (HistoryEnds); nil in a Snapshot
}

// Snapshot is a read-only view of the store at one moment: writes committed after it
// was taken are invisible to it. It is not safe for concurrent use; take one per
// goroutine with Snapshots, which gives them all the same moment.
type Snapshot struct {
	Reader
	txn     *badger.Txn
	release func()
}

// Snapshots returns n snapshots that all see the same commits: the committer is held
// while they are taken, so no group commit lands between them. Close each one; Close of
// the store waits for them.
func (s *Store) Snapshots(n int) ([]*Snapshot, error) {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	out := make([]*Snapshot, 0, n)
	for i := 0; i < n; i++ {
		if err := s.addReader(); err != nil {
			for _, sn := range out {
				sn.Close()
			}
			return nil, err
		}
		txn := s.db.NewTransaction(false)
		sn := &Snapshot{txn: txn, release: s.doneReader}
		sn.Reader = Reader{view: func(fn func(txn *badger.Txn) error) error { return fn(txn) }}
		out = append(out, sn)
	}
	return out, nil
}

// Close releases the snapshot. It may be called more than once.
func (sn *Snapshot) Close() {
	if sn.release == nil {
		return
	}
	sn.txn.Discard()
	sn.release()
	sn.release = nil
}
