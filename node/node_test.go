package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/miner"
	"github.com/flownode/flownode/store"
)

func openTestNode(t *testing.T, dir string) *Node {
	t.Helper()
	n, err := Open(Config{DataDir: dir, Profile: LocalProfile(), Network: "node-test", Advertise: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMinedBranchVerifiesWithRealProofs runs the real miner at the local profile's rate
// and checks the blocks it makes with the real proof rule: targets, nonce limits, seals.
func TestMinedBranchVerifiesWithRealProofs(t *testing.T) {
	dir := t.TempDir()
	n := openTestNode(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()

	deadline := time.Now().Add(20 * time.Second)
	puts := 0
	for n.Ledger().Stats().HeadNo < 5 && time.Now().Before(deadline) {
		_, err := n.Put(ctx, []ledger.Reading{{Thing: "sensor-1", Data: []byte(fmt.Sprint(puts))}}, PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		puts++
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := n.Ledger().Stats().HeadNo; got < 5 {
		t.Fatalf("mined %d blocks in 20 s at a 100 ms mean", got)
	}
	rep, err := n.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Valid || rep.Records != puts {
		t.Fatalf("verify: %+v, puts %d", rep, puts)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	// The same data dir under another network is refused with a clear error.
	if _, err := Open(Config{DataDir: dir, Profile: LocalProfile(), Network: "other"}); err == nil {
		t.Fatal("opened a data dir of another network")
	}
	// And under the same network, the node comes back with its branch.
	n2 := openTestNode(t, dir)
	defer n2.Close()
	if n2.ID() != n.ID() || n2.Ledger().Stats().HeadNo < 5 {
		t.Fatal("identity or branch head lost across restart")
	}
}

// TestForgedProofIsFound: the node refuses to extend its branch with a proof the rule
// does not allow, and a block forged with the node's own key — valid hash and signature,
// impossible nonce — written straight into the store is found by verify.
func TestForgedProofIsFound(t *testing.T) {
	n := openTestNode(t, t.TempDir())
	defer n.Close()
	l := n.Ledger()
	at := time.Unix(0, 1_000_000)
	if err := l.Extend(context.Background(), 1_000_000, at); err == nil {
		t.Fatal("Extend accepted a nonce far above rate × elapsed")
	}
	g := l.Genesis()
	h := ledger.BlockHeader{Network: g.Hash, No: 1, Prev: g.Hash, Time: at.UnixNano(), Nonce: 1_000_000,
		Proof: miner.ProofDigest(g.Hash, n.ID(), 1_000_000), Seal: ledger.MerkleRoot(nil)}
	blk, raw, err := ledger.SignBlock(h, l.Identity())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Store().Write(context.Background(), store.Write{Blocks: []store.Block{{Branch: blk.Branch, No: 1, Hash: blk.Hash, Value: raw}}}); err != nil {
		t.Fatal(err)
	}
	rep, err := n.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Valid || !strings.Contains(rep.Where, "block 1") || !strings.Contains(rep.Actual, "nonce exceeds") {
		t.Fatalf("verify: %+v", rep)
	}
}

func TestUnknownProfile(t *testing.T) {
	if _, err := ProfileNamed("huge"); err == nil {
		t.Fatal("unknown profile accepted")
	}
	for _, name := range []string{"gateway", "laptop", "local"} {
		p, err := ProfileNamed(name)
		if err != nil || p.Name != name || p.Store.Profile != name || p.Ring.Name != name {
			t.Errorf("profile %s: %+v, %v", name, p, err)
			continue
		}
		if err := MinerParams(p.Mining).Validate(); err != nil {
			t.Errorf("profile %s: %v", name, err)
		}
	}
	// Each call is a fresh value: editing one changes no other node's.
	p := LocalProfile()
	p.MaxBatch = 1
	if LocalProfile().MaxBatch == 1 {
		t.Error("LocalProfile returned a shared value")
	}
}

func TestRecordNotFound(t *testing.T) {
	n := openTestNode(t, t.TempDir())
	defer n.Close()
	if _, err := n.Record(context.Background(), ledger.Hash{1}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}

// TestHooks: a node without a ring (Open) reports each record it signs and
// each read it answers, in order, and Close delivers them all.
func TestHooks(t *testing.T) {
	var recs []Receipt
	var qs []Query
	n, err := Open(Config{DataDir: t.TempDir(), Profile: LocalProfile(), Advertise: "127.0.0.1:0",
		OnRecord: func(rc Receipt, rec []byte) {
			if r, err := ledger.ParseRecord(rec); err != nil || r.TxID != rc.TxID {
				t.Errorf("record %s: %v", rec, err)
			}
			recs = append(recs, rc)
		},
		OnQuery: func(q Query) { qs = append(qs, q) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rcs, err := n.Put(ctx, []ledger.Reading{{Thing: "t1", Data: []byte(`1`)}, {Thing: "t1", Data: []byte(`2`)}}, PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.LocalRecord(rcs[1].TxID)
	n.Record(ctx, ledger.Hash{1})
	n.RecordsByThing(ctx, "t1", 0, 0, 10)
	n.RecordsByKey(ctx, rcs[0].Key, 5)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].TxID != rcs[0].TxID || recs[1].TxID != rcs[1].TxID || recs[0].Owner.ID != n.ID() {
		t.Errorf("OnRecord got %+v, want the receipts %+v", recs, rcs)
	}
	want := []Query{
		{Kind: QueryRecord, TxID: rcs[1].TxID, Local: true, Found: 1},
		{Kind: QueryRecord, TxID: ledger.Hash{1}, Err: ErrNotFound},
		{Kind: QueryThing, Thing: "t1", Limit: 10, Found: 2},
		{Kind: QueryKey, Key: rcs[0].Key, Limit: 5, Found: 1},
	}
	if len(qs) != len(want) {
		t.Fatalf("OnQuery got %d calls: %+v", len(qs), qs)
	}
	for i := range want {
		if !errors.Is(qs[i].Err, want[i].Err) {
			t.Errorf("query %d: err %v, want %v", i, qs[i].Err, want[i].Err)
		}
		qs[i].Err = want[i].Err
		if qs[i] != want[i] {
			t.Errorf("query %d: %+v, want %+v", i, qs[i], want[i])
		}
	}
}

// TestIdleNodeMinesNoBlocks: a node with nothing to seal makes no attempts and writes
// no blocks, before its first block and after one; a reading that comes after a long
// idle spell is sealed at once (the miner makes the attempts the rate allowed
// meanwhile), with blocks that verify.
func TestIdleNodeMinesNoBlocks(t *testing.T) {
	n := openTestNode(t, t.TempDir())
	defer n.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	idle := 10 * n.params.MeanBlockTime // ten mean block times of the local profile

	// sealAfterIdle idles, checks nothing was attempted or written meanwhile, then puts
	// a reading and waits for the block that seals it.
	sealAfterIdle := func(i int) {
		t.Helper()
		s, writes, head := n.MinerStats(), n.StoreStats().Writes, n.Ledger().Stats().HeadNo
		time.Sleep(idle)
		after := n.MinerStats()
		if after.Attempts != s.Attempts || after.Blocks != s.Blocks || after.Idle == s.Idle || n.Ledger().Stats().HeadNo != head {
			t.Fatalf("%v idle: miner %+v, then %+v, head %d; want no attempt, no block, idle ticks", idle, s, after, n.Ledger().Stats().HeadNo)
		}
		if got := n.StoreStats().Writes; got != writes {
			t.Errorf("an idle node wrote to its store %d times in %v", got-writes, idle)
		}
		rcs, err := n.Put(ctx, []ledger.Reading{{Thing: "idle", Data: []byte(fmt.Sprint(i))}}, PutOptions{})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for n.Ledger().Stats().HeadNo <= rcs[0].Block.No {
			if time.Since(start) > 20*time.Second {
				t.Fatalf("the reading was not sealed within 20 s: %+v", n.MinerStats())
			}
			time.Sleep(time.Millisecond)
		}
		t.Logf("sealed %v after the put, after %v idle; miner %+v", time.Since(start).Round(time.Millisecond), idle, n.MinerStats())
	}
	sealAfterIdle(1) // on genesis
	sealAfterIdle(2) // on block 1
	rep, err := n.Verify(context.Background())
	if err != nil || !rep.Valid || rep.Records != 2 || rep.Unsealed != 0 || rep.Blocks != 2 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
