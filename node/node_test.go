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
