package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flownode/flownode/store"
)

// testProof accepts any nonce and chains seeds by hashing: these tests are about
// records, seals and indices; the miner's tests cover proofs, and the node tests
// verify real mined blocks.
func testProof(seed [32]byte, _ int64, branch [20]byte, nonce uint64, _ int64) ([32]byte, error) {
	return sha256.Sum256(append(append(seed[:], branch[:]...), byte(nonce))), nil
}

type fixture struct {
	t   testing.TB
	dir string
	st  *store.Store
	l   *Ledger
	g   *Genesis
	id  *Identity

	clock sync.Mutex // guards now: appends read the clock while a test mines
	now   int64
}

// advance moves the fixture's clock on by d and returns the new time.
func (f *fixture) advance(d time.Duration) time.Time {
	f.clock.Lock()
	defer f.clock.Unlock()
	f.now += int64(d)
	return time.Unix(0, f.now)
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()}
	var err error
	f.g, err = NewGenesis(Network{Name: "test", Mining: MiningParams{Rate: 20, MeanBlockTime: time.Second, Variance: 0.2}})
	if err != nil {
		t.Fatal(err)
	}
	f.id, _, err = LoadOrCreateIdentity(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	f.open()
	t.Cleanup(func() { f.st.Close() })
	return f
}

func (f *fixture) open() {
	f.t.Helper()
	var err error
	f.st, err = store.Open(f.dir, store.LocalOptions(), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	f.l, err = Open(Config{Genesis: f.g, Identity: f.id, Store: f.st, Proof: testProof,
		Now: func() time.Time { return f.advance(time.Microsecond) }})
	if err != nil {
		f.t.Fatal(err)
	}
}

// openBench opens a store and ledger on the laptop profile with the real clock.
func openBench(b *testing.B, dir string, g *Genesis, id *Identity) (*store.Store, *Ledger) {
	st, err := store.Open(dir, store.LaptopOptions(), nil)
	if err != nil {
		b.Fatal(err)
	}
	l, err := Open(Config{Genesis: g, Identity: id, Store: st, Proof: testProof})
	if err != nil {
		b.Fatal(err)
	}
	return st, l
}

func (f *fixture) reopen() {
	f.t.Helper()
	if err := f.st.Close(); err != nil {
		f.t.Fatal(err)
	}
	f.open()
}

func (f *fixture) put(thing string, data string) Receipt {
	f.t.Helper()
	rs, err := f.l.Append(context.Background(), []Reading{{Thing: thing, Data: []byte(data)}})
	if err != nil {
		f.t.Fatal(err)
	}
	return rs[0]
}

func (f *fixture) mine() {
	f.t.Helper()
	if err := f.l.Extend(context.Background(), 1, f.advance(time.Second)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) verify() *Report {
	f.t.Helper()
	rep, err := Verify(context.Background(), f.st, f.g, testProof, f.id.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

func (f *fixture) mustBeValid() *Report {
	f.t.Helper()
	rep := f.verify()
	if !rep.Valid {
		f.t.Fatalf("verify: %+v", rep)
	}
	return rep
}

func TestRecordsComeBackByteIdenticalAndVerify(t *testing.T) {
	f := newFixture(t)
	rc := f.put("sensor-1", `{"temperature": 21.5, "unit": "C"}`)
	got, err := f.st.Record(rc.TxID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, rc.Record) {
		t.Fatalf("stored bytes differ:\n%s\n%s", got, rc.Record)
	}
	r, err := ParseRecord(got)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CheckSelf(got); err != nil {
		t.Fatal(err)
	}
	// An independent check of the signature, not through CheckSelf.
	var m map[string]json.RawMessage
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "signature")
	unsigned, _ := Canonical(m)
	if !ed25519.Verify(f.id.Public, unsigned, r.Signature) {
		t.Fatal("signature does not verify over the record without its signature")
	}
	if string(r.Data) != `{"temperature":21.5,"unit":"C"}` {
		t.Fatalf("data = %s", r.Data)
	}
	if r.Block.No != 0 || r.Block.Hash != f.g.Hash {
		t.Fatalf("first record should attach to genesis, got %+v", r.Block)
	}
}

func TestRecordBeforeFirstBlockIsSealedLater(t *testing.T) {
	f := newFixture(t)
	var txs []Hash
	for i := 0; i < 5; i++ {
		txs = append(txs, f.put("t", fmt.Sprint(i)).TxID)
	}
	rep := f.mustBeValid()
	if rep.Unsealed != 5 || rep.Blocks != 0 {
		t.Fatalf("before mining: %+v", rep)
	}
	f.mine()
	raw, err := f.st.Block(f.id.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ParseBlock(raw)
	if b.Sealed != 5 {
		t.Fatalf("block 1 sealed %d records, want 5", b.Sealed)
	}
	var leaves []Hash
	for _, tx := range txs {
		rec, _ := f.st.Record(tx)
		leaves = append(leaves, LeafHash(rec))
	}
	if MerkleRoot(leaves) != b.Seal {
		t.Fatal("seal is not the Merkle root of the genesis-attached records in order")
	}
	rep = f.mustBeValid()
	if rep.Unsealed != 0 || rep.Blocks != 1 || rep.Records != 5 {
		t.Fatalf("after mining: %+v", rep)
	}
	rc := f.put("t", `"after"`)
	if rc.Block.No != 1 || rc.Block.Hash != b.Hash {
		t.Fatalf("new record should attach to block 1: %+v", rc.Block)
	}
}

func TestConcurrentAppendsRaceWithMining(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var all []Receipt
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				rs, err := f.l.Append(ctx, []Reading{{Thing: "t", Data: []byte(fmt.Sprint(i))}, {Thing: "u", Data: []byte(`true`)}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				all = append(all, rs...)
				mu.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 10; i++ {
			if err := f.l.Extend(ctx, 1, f.advance(time.Second)); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	<-done
	f.mine()
	rep := f.mustBeValid()
	if rep.Records != len(all) || rep.Unsealed != 0 || rep.Blocks != 11 {
		t.Fatalf("report %+v, appended %d", rep, len(all))
	}
}

func TestReopenKeepsHeadAndUnsealedRecords(t *testing.T) {
	f := newFixture(t)
	f.put("t", "1")
	f.mine()
	f.put("t", "2")
	f.put("t", "3")
	f.reopen()
	st := f.l.Stats()
	if st.HeadNo != 1 || st.Unsealed != 2 {
		t.Fatalf("after reopen: %+v", st)
	}
	f.put("t", "4")
	f.mine()
	raw, _ := f.st.Block(f.id.ID, 2)
	b, _ := ParseBlock(raw)
	if b.Sealed != 3 {
		t.Fatalf("block 2 sealed %d, want 3", b.Sealed)
	}
	f.mustBeValid()
}

func TestOtherNetworkIsRefused(t *testing.T) {
	f := newFixture(t)
	other, _ := NewGenesis(Network{Name: "other", Mining: f.g.Mining})
	_, err := Open(Config{Genesis: other, Identity: f.id, Store: f.st, Proof: testProof})
	if err == nil || !strings.Contains(err.Error(), `belongs to network "test", not "other"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestBadInputStoresNothing(t *testing.T) {
	f := newFixture(t)
	cases := map[string]Reading{
		"bad thing":   {Thing: "a/b", Data: []byte(`1`)},
		"empty thing": {Thing: "", Data: []byte(`1`)},
		"bad json":    {Thing: "t", Data: []byte(`{"a":`)},
		"two values":  {Thing: "t", Data: []byte(`1 2`)},
		"huge int":    {Thing: "t", Data: []byte(`{"n": 9007199254740993}`)},
		"huge float":  {Thing: "t", Data: []byte(`1e400`)},
		"deep":        {Thing: "t", Data: []byte(strings.Repeat("[", 40) + strings.Repeat("]", 40))},
		"empty":       {Thing: "t", Data: nil},
	}
	for name, rd := range cases {
		_, err := f.l.Append(context.Background(), []Reading{{Thing: "ok", Data: []byte(`1`)}, rd})
		var ie *InputError
		if !errors.As(err, &ie) || ie.Index != 1 {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	rep := f.mustBeValid()
	if rep.Records != 0 {
		t.Fatalf("bad input stored %d records", rep.Records)
	}
}

func TestClientKeyIndexesRecords(t *testing.T) {
	f := newFixture(t)
	key, _ := ParseKey(strings.Repeat("ab", 20))
	for i := 0; i < 3; i++ {
		rs, err := f.l.Append(context.Background(), []Reading{{Thing: "t", Data: []byte(`{"same":true}`), Key: &key}})
		if err != nil {
			t.Fatal(err)
		}
		if rs[0].Key != key {
			t.Fatal("receipt key is not the client's key")
		}
	}
	ids, err := f.st.RecordsByKey(key, 10)
	if err != nil || len(ids) != 3 {
		t.Fatalf("records by key: %d, %v (same data, same key, same block must still be 3 distinct records)", len(ids), err)
	}
	f.mustBeValid()
}

// TestStampedReadingAppendedAgainIsOneRecord: an entry node that did not get
// the owner's answer puts the same stamped readings again, possibly while
// the first put is still being written. Within one block they must become
// the same records at the same positions, not a second attachment of each
// txID (which broke the block's seal); in a later block they are new records
// and the ledger still verifies.
func TestStampedReadingAppendedAgainIsOneRecord(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rs := []Reading{{Thing: "a", Data: []byte(`1`)}, {Thing: "b", Data: []byte(`2`)}, {Thing: "c", Data: []byte(`3`)}}
	if err := StampReadings(rs, f.advance(0), f.l.cfg.Rand); err != nil {
		t.Fatal(err)
	}
	f.put("other", `0`) // the retried readings do not start the block
	var wg sync.WaitGroup
	got := make([][]Receipt, 4)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rcs, err := f.l.Append(ctx, rs)
			if err != nil {
				t.Error(err)
			}
			got[i] = rcs
		}()
	}
	wg.Wait()
	again, err := f.l.Append(ctx, []Reading{rs[1], rs[1]}) // twice in one batch, too
	if err != nil {
		t.Fatal(err)
	}
	for _, rcs := range append(got[1:], again) {
		for j, rc := range rcs {
			want := got[0][j]
			if len(rcs) == 2 {
				want = got[0][1]
			}
			if rc.TxID != want.TxID || !bytes.Equal(rc.Record, want.Record) {
				t.Fatalf("a repeated append made a different record:\n%s\n%s", rc.Record, want.Record)
			}
		}
	}
	if n := f.l.Stats().Records; n != 4 {
		t.Fatalf("stats count %d records, want 4", n)
	}
	f.mine()
	if rep := f.mustBeValid(); rep.Records != 4 {
		t.Fatalf("report %+v, want 4 records", rep)
	}
	later, err := f.l.Append(ctx, rs)
	if err != nil {
		t.Fatal(err)
	}
	if later[0].TxID == got[0][0].TxID || later[0].Block.No != 1 {
		t.Fatalf("in the next block the reading is a new record: %+v", later[0].Block)
	}
	f.mine()
	if rep := f.mustBeValid(); rep.Records != 7 {
		t.Fatalf("report %+v, want 7 records", rep)
	}
}

// TestSameStampOtherThingIsRefused: one txID must never name two different
// records, so a stamped reading repeated with another Thing or key is refused
// and changes nothing.
func TestSameStampOtherThingIsRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rs := []Reading{{Thing: "a", Data: []byte(`1`)}}
	if err := StampReadings(rs, f.advance(0), f.l.cfg.Rand); err != nil {
		t.Fatal(err)
	}
	if _, err := f.l.Append(ctx, rs); err != nil {
		t.Fatal(err)
	}
	other := rs[0]
	other.Thing = "b"
	key := Key{1}
	withKey := rs[0]
	withKey.Key = &key
	for _, batch := range [][]Reading{{other}, {withKey}, {{Thing: "c", Data: []byte(`2`)}, other}} {
		_, err := f.l.Append(ctx, batch)
		var ie *InputError
		if !errors.As(err, &ie) || ie.Index != len(batch)-1 {
			t.Fatalf("a repeated stamp with another thing or key: %v", err)
		}
	}
	f.mine()
	if rep := f.mustBeValid(); rep.Records != 1 {
		t.Fatalf("report %+v, want 1 record", rep)
	}
}

// TestResentReadingAfterASealIsTheStoredRecord: a put retried after its
// answer was lost, once the owner has mined on, must not become a second
// record (a meter's kWh counted twice): marked Resend, it is answered with the
// record already stored, byte for byte.
func TestResentReadingAfterASealIsTheStoredRecord(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rs := []Reading{{Thing: "meter-1", Data: []byte(`{"kWh":1.5}`)}, {Thing: "meter-2", Data: []byte(`{"kWh":2}`)}}
	if err := StampReadings(rs, f.advance(0), f.l.cfg.Rand); err != nil {
		t.Fatal(err)
	}
	first, err := f.l.Append(ctx, rs)
	if err != nil {
		t.Fatal(err)
	}
	f.mine()
	f.mine()
	resent := []Reading{rs[1], {Thing: "meter-3", Data: []byte(`3`)}, rs[0]}
	resent[0].Resend, resent[2].Resend = true, true
	if err := StampReadings(resent, f.advance(0), f.l.cfg.Rand); err != nil {
		t.Fatal(err)
	}
	again, err := f.l.Append(ctx, resent)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ got, want Receipt }{{again[0], first[1]}, {again[2], first[0]}} {
		if c.got.TxID != c.want.TxID || c.got.Block != c.want.Block || !bytes.Equal(c.got.Record, c.want.Record) {
			t.Fatalf("a resent reading became another record:\n%s\nwant\n%s", c.got.Record, c.want.Record)
		}
	}
	if again[1].Block.No != 2 {
		t.Fatalf("the fresh reading of the batch: %+v, want it in block 2", again[1].Block)
	}
	f.mine()
	if rep := f.mustBeValid(); rep.Records != 3 {
		t.Fatalf("report %+v, want 3 records", rep)
	}
}

// TestIdempotencyKeyRecordsOnce: a device that sends one reading twice with
// one idempotency key (at other times, through other nodes) gets one record;
// the key reused for other data is refused and stores nothing.
func TestIdempotencyKeyRecordsOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	send := func(data string) ([]Receipt, error) {
		r := Reading{Thing: "meter-1", Data: []byte(data)}
		if err := StampIdempotent(&r, "reading-0042", f.advance(time.Second)); err != nil {
			t.Fatal(err)
		}
		return f.l.Append(ctx, []Reading{r})
	}
	first, err := send(`{"kWh": 1.5}`)
	if err != nil {
		t.Fatal(err)
	}
	f.mine()
	again, err := send(`{"kWh":1.5}`) // same JSON value, other spacing
	if err != nil {
		t.Fatal(err)
	}
	if again[0].TxID != first[0].TxID || !bytes.Equal(again[0].Record, first[0].Record) {
		t.Fatalf("the resent reading became another record:\n%s\n%s", again[0].Record, first[0].Record)
	}
	_, err = send(`{"kWh": 9}`)
	var ie *InputError
	if !errors.As(err, &ie) || ie.Index != 0 {
		t.Fatalf("the key reused for other data: %v, want an input error", err)
	}
	other := Reading{Thing: "meter-2", Data: []byte(`{"kWh": 1.5}`)}
	if err := StampIdempotent(&other, "reading-0042", f.advance(0)); err != nil {
		t.Fatal(err)
	}
	if rs, err := f.l.Append(ctx, []Reading{other}); err != nil || rs[0].TxID == first[0].TxID {
		t.Fatalf("the same key for another Thing is another reading: %v", err)
	}
	for _, bad := range []string{"", strings.Repeat("k", MaxIdempotencyKey+1)} {
		r := Reading{Thing: "meter-1", Data: []byte(`1`)}
		if err := StampIdempotent(&r, bad, f.advance(0)); err == nil {
			t.Fatalf("idempotency key of %d characters accepted", len(bad))
		}
	}
	f.mine()
	if rep := f.mustBeValid(); rep.Records != 2 {
		t.Fatalf("report %+v, want 2 records", rep)
	}
}

// TestBacklog: the miner's view of the head (miner.Backlog). Nothing to seal on a new
// ledger or after a seal; records in the head after an append and after a reopen; one
// arrival per empty head that gets records, however many come.
func TestBacklog(t *testing.T) {
	f := newFixture(t)
	arrived := func() bool {
		select {
		case <-f.l.Arrivals():
			return true
		default:
			return false
		}
	}
	if f.l.HasUnsealed() || arrived() {
		t.Fatal("a new ledger has something to seal")
	}
	f.put("t", "1")
	f.put("t", "2")
	if !f.l.HasUnsealed() || !arrived() || arrived() {
		t.Fatal("two appends to an empty head: want something to seal and one arrival")
	}
	f.mine()
	if f.l.HasUnsealed() || arrived() {
		t.Fatal("after the seal: want nothing to seal and no arrival")
	}
	f.put("t", "3")
	if !f.l.HasUnsealed() || !arrived() {
		t.Fatal("an append after the seal: want something to seal and an arrival")
	}
	f.reopen()
	if !f.l.HasUnsealed() {
		t.Fatal("reopened with a record in the head: want something to seal")
	}
}
