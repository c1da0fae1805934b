package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

func (s *Store) queueLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// waitQueue waits until n writes are queued.
func waitQueue(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.queueLen() < n {
		if time.Now().After(deadline) {
			t.Errorf("queue has %d writes, want %d", s.queueLen(), n)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommitShares holds the first commit until every other writer has
// queued: they must then all share the second commit.
func TestGroupCommitShares(t *testing.T) {
	s := openLocal(t, "")
	const writers = 64
	first := true
	s.beforeCommit = func(n int) {
		if first {
			first = false
			waitQueue(t, s, writers-n)
		}
	}
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() { mustWrite(t, s, Write{Records: []Record{testRecord(i)}}) })
	}
	wg.Wait()
	st := s.Stats()
	if st.Writes != writers || st.Records != writers || st.Groups != 2 {
		t.Fatalf("Stats = %+v; want %d writes in 2 groups", st, writers)
	}
	for i := range writers {
		if _, err := s.Record(txID(i)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGroupCommitUnderLoad lets concurrent writers run freely: while one
// group syncs, the next one gathers.
func TestGroupCommitUnderLoad(t *testing.T) {
	s := openLocal(t, "")
	const writers, each = 32, 40
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				mustWrite(t, s, Write{Records: []Record{testRecord(w*each + i)}})
			}
		})
	}
	wg.Wait()
	st := s.Stats()
	t.Logf("%d writes in %d groups, %.1f writes per sync", st.Writes, st.Groups, st.MeanGroupSize)
	if st.Writes != writers*each || st.Groups*4 > st.Writes {
		t.Fatalf("Stats = %+v; want %d writes in at most a quarter as many groups", st, writers*each)
	}
}

func TestWriteCancelled(t *testing.T) {
	s := openLocal(t, "")

	// Cancelled before Write: nothing happens.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Write(ctx, Write{Records: []Record{testRecord(0)}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with cancelled ctx: %v", err)
	}

	// Hold the committer inside the commit of write 1.
	hold, entered := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.beforeCommit = func(int) {
		once.Do(func() { close(entered); <-hold })
	}
	ctx1, cancel1 := context.WithCancel(context.Background())
	err1 := make(chan error)
	go func() { err1 <- s.Write(ctx1, Write{Records: []Record{testRecord(1)}}) }()
	<-entered

	// Write 2 is queued behind it and cancelled while waiting.
	ctx2, cancel2 := context.WithCancel(context.Background())
	err2 := make(chan error)
	go func() { err2 <- s.Write(ctx2, Write{Records: []Record{testRecord(2)}}) }()
	waitQueue(t, s, 1)
	cancel2()
	if err := <-err2; !errors.Is(err, context.Canceled) {
		t.Fatalf("queued Write cancelled: %v", err)
	}

	// Cancelling write 1 now changes nothing: it is being committed.
	cancel1()
	close(hold)
	if err := <-err1; err != nil {
		t.Fatalf("Write cancelled during its commit: %v; want nil, it is durable", err)
	}

	mustWrite(t, s, Write{Records: []Record{testRecord(3)}}) // the committer goes on
	for i, want := range []error{ErrNotFound, nil, ErrNotFound, nil} {
		if _, err := s.Record(txID(i)); !errors.Is(err, want) {
			t.Errorf("record %d: %v, want %v", i, err, want)
		}
	}
	if _, err := s.RecordsByKey(testRecord(2).Key, 0); err != nil {
		t.Fatal(err)
	}
	ids, _ := s.RecordsByThing(testRecord(2).Thing, -1<<63, 0, 0)
	for _, id := range ids {
		if id == txID(2) {
			t.Errorf("cancelled record 2 is in the thing index")
		}
	}
	if st := s.Stats(); st.Writes != 2 {
		t.Errorf("Stats.Writes = %d, want 2", st.Writes)
	}
}

// TestCloseWithPendingWrites closes the store under a stream of writes: every
// Write either succeeded and is durable, or returned ErrClosed and left no
// trace; no goroutine outlives Close.
func TestCloseWithPendingWrites(t *testing.T) {
	checkGoroutines(t)
	dir := t.TempDir()
	s := openLocal(t, dir)

	const writers = 16
	acked := make([][]int, writers)
	refused := make([]int, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w * 1_000_000; ; i++ {
				err := s.Write(context.Background(), Write{Records: []Record{testRecord(i)}})
				if err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("Write: %v", err)
					}
					refused[w] = i
					return
				}
				acked[w] = append(acked[w], i)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	if err := s.Write(context.Background(), Write{Records: []Record{testRecord(-1)}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := s.Write(context.Background(), Write{}); !errors.Is(err, ErrClosed) {
		t.Errorf("empty Write after Close: %v", err)
	}
	if _, err := s.Record(txID(0)); !errors.Is(err, ErrClosed) {
		t.Errorf("Record after Close: %v", err)
	}
	if err := s.EachRecord(func([32]byte, []byte) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("EachRecord after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	s = openLocal(t, dir)
	total := 0
	for w := range writers {
		total += len(acked[w])
		for _, i := range acked[w] {
			if _, err := s.Record(txID(i)); err != nil {
				t.Fatalf("acked record %d: %v", i, err)
			}
		}
		if _, err := s.Record(txID(refused[w])); !errors.Is(err, ErrNotFound) {
			t.Errorf("refused record %d: %v", refused[w], err)
		}
	}
	t.Logf("%d writes acked before Close", total)
	if total == 0 {
		t.Fatal("no write was acked")
	}
}

// TestLargeWrite writes more than one Badger transaction holds, between small
// writes: it is split, and everything lands.
func TestLargeWrite(t *testing.T) {
	s := openLocal(t, "")
	const n = 3000
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = testRecord(i)
	}
	small := func(i int) Write {
		r := testRecord(i)
		r.Branch = branchID(9)
		return Write{Records: []Record{r}}
	}
	hold, entered := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.beforeCommit = func(int) { once.Do(func() { close(entered); <-hold }) }
	var wg sync.WaitGroup
	wg.Go(func() { mustWrite(t, s, small(-1)) })
	<-entered // the committer holds write -1
	wg.Go(func() { mustWrite(t, s, small(-2)) })
	waitQueue(t, s, 1)
	wg.Go(func() { mustWrite(t, s, Write{Records: recs}) })
	waitQueue(t, s, 2)
	wg.Go(func() { mustWrite(t, s, small(-3)) })
	waitQueue(t, s, 3)
	close(hold)
	wg.Wait()

	st := s.Stats()
	if st.Records != n+3 || st.Groups < 4 {
		t.Fatalf("Stats = %+v; want %d records in ≥ 4 groups", st, n+3)
	}
	t.Logf("%d records in %d groups", st.Records, st.Groups)
	count := 0
	if err := s.EachRecord(func([32]byte, []byte) error { count++; return nil }); err != nil || count != n+3 {
		t.Fatalf("EachRecord: %d, %v", count, err)
	}
	for no := range uint64(n / 10) {
		if got, err := s.BlockRecords(branchID(1), no); err != nil || len(got) != 10 {
			t.Fatalf("BlockRecords(%d) = %d, %v", no, len(got), err)
		}
	}
}

func TestWriteRefusesBadInput(t *testing.T) {
	s := openLocal(t, "")
	big := testRecord(1)
	big.Value = make([]byte, s.maxValue+1)
	long := testRecord(2)
	long.Thing = strings.Repeat("x", MaxThingLen+1)
	tests := []struct {
		name string
		w    Write
		want error
	}{
		{"value too large", Write{Records: []Record{testRecord(0), big}}, ErrTooLarge},
		{"thing too long", Write{Records: []Record{long}}, ErrTooLarge},
		{"block too large", Write{Blocks: []Block{{Value: big.Value}}}, ErrTooLarge},
		{"meta too large", Write{Meta: map[string][]byte{"x": big.Value}}, ErrTooLarge},
		{"empty meta name", Write{Meta: map[string][]byte{"": nil}}, nil},
		{"long meta name", Write{Meta: map[string][]byte{strings.Repeat("m", MaxMetaNameLen+1): nil}}, nil},
	}
	for _, tt := range tests {
		err := s.Write(context.Background(), tt.w)
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: Write = %v, want %v", tt.name, err, tt.want)
		}
	}
	// The largest value allowed fits.
	big.Value = big.Value[:s.maxValue]
	mustWrite(t, s, Write{Records: []Record{big}})
	if got, err := s.Record(big.TxID); err != nil || len(got) != len(big.Value) {
		t.Fatalf("largest record: %d bytes, %v", len(got), err)
	}
	if _, err := s.Record(txID(0)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("record 0 of a refused Write: %v", err)
	}
	// An empty Write succeeds without a commit.
	before := s.Stats().Groups
	mustWrite(t, s, Write{})
	if s.Stats().Groups != before {
		t.Fatal("empty Write committed")
	}
}
