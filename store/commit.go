package store

import (
	"context"
	"fmt"
)

// Group commit.
//
// Every Write is queued; one committer goroutine takes everything queued,
// packs it into as few Badger transactions as the size limits allow (usually
// one), commits each and only then acknowledges the writes in it. Writers that
// arrive while a commit is being synced queue up for the next one, so under
// load one sync is shared by many writes: the sync cost, ~200–300 µs per
// commit on the reference machine, is paid per group instead of per record.
//
// Why an acknowledged write is durable: the DB is opened with SyncWrites, so
// Badger's Txn.Commit returns only after (value.go valueLog.write) the value
// log file has been msync'ed and (db.go writeToLSM) the memtable WAL that
// received the transaction has been msync'ed. A transaction never spans two
// memtables (ensureRoomForWrite runs before each request) and a value-log
// rotation syncs the finished file (logFile.doneWriting), so everything in the
// transaction is on disk. Then the committer fsyncs the data directory if
// Badger created a file (dirsync.go), which Badger itself does not. (One gap
// remains in Badger: a failed value-log msync is logged, not returned; it
// matters only for values of ValueThreshold bytes or more.)
//
// The other way, SyncWrites off plus db.Sync after each group, is not
// durable: db.Sync does msync the memtable WAL and the value log, but only the
// current ones, so entries of the group that went into a memtable that
// filled up during the group, or into a value-log file rotated during it
// (doneWriting syncs only with SyncWrites on), stay in the page cache until a
// background flush.

// Write makes w durable: it returns nil only once every record with all its
// index entries, every block, every pointer and every meta entry of w is
// synced to disk.
//
// Concurrent calls share syncs (see above). If ctx ends before the committer
// has taken w, Write returns ctx.Err() and nothing of w is written; once taken,
// Write waits for the commit and reports its outcome. A Write larger than one
// Badger transaction is split into several; should the disk fail between them,
// a prefix of it may persist. After Close, Write returns ErrClosed. w's byte
// slices must not change until Write returns; they are not kept after.
func (s *Store) Write(ctx context.Context, w Write) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.prepare(w)
	if err != nil {
		return err
	}
	if err := s.enqueue(p); err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		if p.state.CompareAndSwap(statePending, stateCancelled) {
			return ctx.Err() // the committer will skip it
		}
		<-p.done // already in a commit: its outcome is the truth
	}
	s.ends.wrote(w, p.err == nil)
	return p.err
}

// enqueue hands p to the committer. An empty write is not queued but still
// refused after Close.
func (s *Store) enqueue(p *pending) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if len(p.ops) == 0 {
		s.mu.Unlock()
		close(p.done)
		return nil
	}
	s.queue = append(s.queue, p)
	s.mu.Unlock()
	s.signal()
	return nil
}

// signal wakes the committer; a wake-up already pending is enough.
func (s *Store) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// commitLoop is the committer goroutine. After Close it commits what was
// queued before Close and exits.
func (s *Store) commitLoop() {
	defer close(s.loopDone)
	var spare []*pending
	for {
		batch, closing := s.take(spare)
		s.commitBatch(batch)
		if closing {
			return
		}
		clear(batch) // drop references to finished writes
		spare = batch[:0]
	}
}

// take waits for queued writes or Close and returns the queue, swapping in buf
// so that the two slices are reused.
func (s *Store) take(buf []*pending) (batch []*pending, closing bool) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 || s.closed {
			batch, closing = s.queue, s.closed
			s.queue = buf
			s.mu.Unlock()
			return batch, closing
		}
		s.mu.Unlock()
		<-s.wake
	}
}

// commitBatch commits batch in queue order, packing writes into transactions
// up to Badger's limits.
func (s *Store) commitBatch(batch []*pending) {
	var (
		group []*pending
		ops   [][]op
		count int
		size  int64
	)
	flush := func() {
		if len(group) == 0 {
			return
		}
		err := s.commitTxn(len(group), ops...)
		for _, p := range group {
			s.finish(p, err)
		}
		clear(ops)
		group, ops, count, size = group[:0], ops[:0], 0, 0
	}
	for _, p := range batch {
		if !p.state.CompareAndSwap(statePending, stateClaimed) {
			continue // its caller gave up
		}
		if len(p.ops) > s.maxCount || p.size > s.maxSize {
			flush()
			s.commitLarge(p)
			continue
		}
		if count+len(p.ops) > s.maxCount || size+p.size > s.maxSize {
			flush()
		}
		group = append(group, p)
		ops = append(ops, p.ops)
		count += len(p.ops)
		size += p.size
	}
	flush()
}

// commitLarge commits a write too large for one transaction in several.
func (s *Store) commitLarge(p *pending) {
	var err error
	for rest := p.ops; len(rest) > 0 && err == nil; {
		n, size := 0, int64(0)
		// n ends ≥ 1: prepare refused every entry larger than maxSize.
		for n < len(rest) && n < s.maxCount && size+opSize(rest[n]) <= s.maxSize {
			size += opSize(rest[n])
			n++
		}
		err = s.commitTxn(1, rest[:n])
		rest = rest[n:]
	}
	s.finish(p, err)
}

// commitTxn writes ops, which belong to the given number of writes, in one
// Badger transaction and returns when it is durable.
func (s *Store) commitTxn(writes int, ops ...[]op) error {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	for _, group := range ops {
		for _, o := range group {
			var err error
			if o.del {
				err = txn.Delete(o.key)
			} else {
				err = txn.Set(o.key, o.val)
			}
			if err != nil {
				return err
			}
		}
	}
	if s.beforeCommit != nil {
		s.beforeCommit(writes)
	}
	s.commitMu.Lock()
	err := txn.Commit()
	s.commitMu.Unlock()
	if err != nil {
		return err
	}
	s.stats.groups.Add(1)
	return s.dir.sync()
}

// finish acknowledges p with the outcome of its commit.
func (s *Store) finish(p *pending, err error) {
	if err != nil {
		s.stats.failed.Add(1)
		p.err = fmt.Errorf("store %s: commit: %w", s.path, err)
	} else {
		s.stats.writes.Add(1)
		s.stats.records.Add(uint64(p.records))
		s.stats.blocks.Add(uint64(p.blocks))
	}
	close(p.done)
}
