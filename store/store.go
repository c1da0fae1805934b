package store

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"
)

// Store is the ledger's Badger database. Its methods are safe for concurrent
// use.
type Store struct {
	Reader // every read in its own read transaction

	path string
	db   *badger.DB
	log  *zap.Logger
	dir  *dirSync // used by the committer only

	// Per-transaction limits, below Badger's so that packing never hits
	// ErrTxnTooBig: room is left for the marker entry Badger adds to each
	// transaction.
	maxCount int
	maxSize  int64
	maxValue int64

	valueThreshold int64 // values this large go to the value log (Locate)

	// commitMu is held around each Badger commit, so Snapshots can take several
	// read transactions at the same commit.
	commitMu sync.Mutex

	// The write queue, drained by commitLoop.
	mu       sync.Mutex
	queue    []*pending
	closed   bool
	wake     chan struct{}
	loopDone chan struct{}

	// Readers in flight; Close waits for them before closing Badger. A
	// counter rather than an RWMutex so that a read nested in an Each
	// callback cannot deadlock against a waiting Close.
	rmu      sync.Mutex
	rcond    *sync.Cond
	readers  int
	dbClosed bool

	closeOnce sync.Once
	closeErr  error

	stats counters

	// beforeCommit, if set, runs in the committer just before each Badger
	// commit of the given number of writes. Tests use it to hold a commit
	// while writers queue up.
	beforeCommit func(writes int)
}

// Open opens the store in dir, creating dir (0700) if it is missing. log may
// be nil. A data directory on JFFS2 is refused (ErrJFFS2).
func Open(dir string, opts Options, log *zap.Logger) (*Store, error) {
	if log == nil {
		log = zap.NewNop()
	}
	fail := func(err error) (*Store, error) { return nil, fmt.Errorf("open store %s: %w", dir, err) }
	if err := checkDataDir(dir); err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	opts = opts.withDefaults(strconv.IntSize)
	db, err := badger.Open(badgerOptions(dir, opts, log))
	if err != nil {
		return fail(err)
	}
	d, err := newDirSync(dir)
	if err != nil {
		return fail(errors.Join(err, db.Close()))
	}
	s := &Store{
		path:     dir,
		db:       db,
		log:      log,
		dir:      d,
		maxCount: int(db.MaxBatchCount()) - 2,
		maxSize:  db.MaxBatchSize() - 1024,
		wake:     make(chan struct{}, 1),
		loopDone: make(chan struct{}),

		valueThreshold: opts.ValueThreshold,
	}
	// An entry of the longest key must still fit into an empty transaction.
	s.maxValue = s.maxSize - (thingFixedLen + MaxThingLen + 12)
	s.rcond = sync.NewCond(&s.rmu)
	s.Reader = Reader{view: s.view, ends: &endsHints{}}
	go s.commitLoop()
	log.Info("store opened", zap.String("dir", dir), zap.String("profile", opts.Profile),
		zap.Int64("memtable_bytes", opts.MemTableSize), zap.Int64("vlog_file_bytes", opts.ValueLogFileSize))
	return s, nil
}

// Close commits the writes queued before it, then closes the database. Writes
// and reads after Close return ErrClosed. Close waits for reads in flight,
// including Each iterations, to end, so it must not be called from an Each
// callback. Calling it again returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.signal()
		<-s.loopDone

		s.rmu.Lock()
		s.dbClosed = true
		for s.readers > 0 {
			s.rcond.Wait()
		}
		s.rmu.Unlock()

		err := errors.Join(s.db.Close(), s.dir.close())
		if err != nil {
			s.closeErr = fmt.Errorf("close store %s: %w", s.path, err)
		}
		s.log.Info("store closed", zap.String("dir", s.path), zap.Error(err))
	})
	return s.closeErr
}

// Raw returns the underlying Badger database, for tests that tamper with raw
// entries and for tools. Writes through it bypass group commit and indexing;
// keys are built with the functions in keys.go.
func (s *Store) Raw() *badger.DB { return s.db }

// Dir returns the data directory.
func (s *Store) Dir() string { return s.path }

// view runs fn in a read transaction unless the store is closed.
func (s *Store) view(fn func(txn *badger.Txn) error) error {
	if err := s.addReader(); err != nil {
		return err
	}
	defer s.doneReader()
	return s.db.View(fn)
}

// addReader counts a read in flight, so Close waits for it; it fails once the store
// is closing.
func (s *Store) addReader() error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.dbClosed {
		return ErrClosed
	}
	s.readers++
	return nil
}

func (s *Store) doneReader() {
	s.rmu.Lock()
	s.readers--
	if s.readers == 0 {
		s.rcond.Broadcast()
	}
	s.rmu.Unlock()
}
