package witness

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flownode/flownode/checkpoint"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
	"github.com/flownode/flownode/node"
	"github.com/flownode/flownode/ringledger"
)

// pair is a branch owner and its witness, two nodes of one network without a ring:
// the test hands the witness the owner's requests itself.
type pair struct {
	t              testing.TB
	owner, witness *node.Node
	so, sw         *Service
	wdir           string
	stop           func()
}

func newPair(t testing.TB) *pair {
	t.Helper()
	prof := node.LocalProfile()
	auth, err := network.NewAuthority("witness-test", prof.Mining)
	if err != nil {
		t.Fatal(err)
	}
	open := func(dir string) *node.Node {
		n, err := node.Open(node.Config{DataDir: dir, Profile: prof, Advertise: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	odir, wdir := t.TempDir(), t.TempDir()
	om, err := auth.AdmitDir(odir, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	wm, err := auth.AdmitDir(wdir, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{t: t, owner: open(odir), witness: open(wdir), wdir: wdir}
	if _, err := p.witness.Members().Learn(om.DER()); err != nil {
		t.Fatal(err)
	}
	if _, err := p.owner.Members().Learn(wm.DER()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.owner.Run(ctx) }() // its miner grows the branch
	p.so = p.service(p.owner)
	p.sw = p.service(p.witness)
	p.stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(func() {
		p.so.Close()
		p.sw.Close()
		p.stop()
		p.owner.Close()
		p.witness.Close()
	})
	return p
}

func (p *pair) service(n *node.Node) *Service {
	s, err := New(n, Config{Interval: time.Hour}) // the test publishes itself
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

// grown appends readings to the owner's branch (its miner mines only while records
// wait for a seal) until the branch passes size blocks, and signs its checkpoint.
func (p *pair) grown(size uint64) *checkpoint.Signed {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; p.owner.Ledger().TreeSize() <= size; i++ {
		if time.Now().After(deadline) {
			p.t.Fatalf("the branch did not pass %d blocks in 20 s", size)
		}
		if _, err := p.owner.Ledger().Append(context.Background(), []ledger.Reading{{Thing: "grown", Data: []byte(fmt.Sprint(i))}}); err != nil {
			p.t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, err := p.so.current()
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}

// add hands the witness a request from a sender.
func (p *pair) add(from ledger.Key, body addBody) (addAnswer, error) {
	b, _ := json.Marshal(body)
	ans, err := p.sw.handleAdd(context.Background(), node.Peer{ID: from}, b)
	if err != nil {
		return addAnswer{}, err
	}
	return ans.(addAnswer), nil
}

func refusedWith(t *testing.T, err error, want string) {
	t.Helper()
	var r *ringledger.Refusal
	if !errors.As(err, &r) || !strings.Contains(err.Error(), want) {
		t.Fatalf("want a refusal saying %q, got %v", want, err)
	}
}

func TestWitnessCosignsOnlyWhatExtendsWhatItSaw(t *testing.T) {
	p := newPair(t)
	ownerID := p.owner.ID()
	c1 := p.grown(3)
	body, err := p.so.addBody(c1, 0)
	if err != nil {
		t.Fatal(err)
	}

	// Only the branch's owner publishes its checkpoints.
	_, err = p.add(p.witness.ID(), body)
	refusedWith(t, err, "only a branch's owner")
	// A head line that is not the tree's last leaf is refused.
	bad := body
	bad.HeadProof = nil
	_, err = p.add(ownerID, bad)
	refusedWith(t, err, "head line")

	ans, err := p.add(ownerID, body)
	if err != nil || ans.Cosigned == "" {
		t.Fatalf("first checkpoint: %+v %v", ans, err)
	}
	if err := p.so.merge(node.Peer{ID: p.witness.ID()}, c1, []byte(ans.Cosigned)); err != nil {
		t.Fatal(err)
	}
	if own := p.so.Own(); len(own.Cosigners) != 1 || own.Cosigners[0] != p.witness.ID() {
		t.Fatalf("the owner's checkpoint after the merge: %+v", own)
	}

	// A larger tree proved from the wrong size gets the witness's size back; proved
	// from that size, it is cosigned.
	c2 := p.grown(c1.Size + 2)
	body, _ = p.so.addBody(c2, 0)
	ans, err = p.add(ownerID, body)
	if err != nil || ans.Size == nil || *ans.Size != c1.Size {
		t.Fatalf("proved from 0: %+v %v, want size %d back", ans, err, c1.Size)
	}
	body, _ = p.so.addBody(c2, c1.Size)
	if ans, err = p.add(ownerID, body); err != nil || ans.Cosigned == "" {
		t.Fatalf("proved from %d: %+v %v", c1.Size, ans, err)
	}
	// The same checkpoint again is cosigned again: a lost answer costs nothing.
	if ans, err = p.add(ownerID, body); err != nil || ans.Cosigned == "" {
		t.Fatalf("the same checkpoint again: %+v %v", ans, err)
	}

	// The owner signs a larger tree that does not extend the cosigned one: a fork.
	n := c2.Size + 5
	var leaves []ledger.Hash
	var last ledger.Hash
	for i := uint64(0); i < n; i++ {
		last = ledger.Hash(sha256.Sum256([]byte{byte(i), 'x'}))
		leaves = append(leaves, ledger.BlockLeaf(last))
	}
	forged := checkpoint.Checkpoint{Origin: c2.Origin, Size: n, Root: ledger.MerkleRoot(leaves), Head: last}
	note, err := checkpoint.Sign(forged, p.owner.Ledger().Identity())
	if err != nil {
		t.Fatal(err)
	}
	headProof, err := ledger.RecordInclusion(leaves, n-1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.add(ownerID, addBody{Checkpoint: string(note), Old: c2.Size, HeadProof: headProof})
	refusedWith(t, err, "equivocation (fork)")

	ev := p.sw.Equivocations()
	if len(ev) != 1 || ev[0].Kind != "fork" || ev[0].FirstHead != c2.Head || ev[0].SecondHead != last ||
		ev[0].First != string(mustOpen(t, p, ev[0].First).Note) {
		t.Fatalf("evidence: %+v", ev)
	}
	// Both notes open with the owner's key: the evidence proves itself.
	for _, s := range []string{ev[0].First, ev[0].Second} {
		if c := mustOpen(t, p, s); c.Branch() != ownerID {
			t.Fatalf("evidence of branch %s", c.Branch())
		}
	}
	if why, refused := p.witness.Ledger().Refused(ownerID); !refused || !strings.Contains(why, "equivocated") {
		t.Fatalf("the branch is not refused (%q)", why)
	}
	if p.sw.Stats().Equivocations.Load() != 1 {
		t.Fatal("the equivocation was not counted")
	}
	// Nothing more of the branch is cosigned, however well proved.
	c3 := p.grown(n)
	body, _ = p.so.addBody(c3, c2.Size)
	_, err = p.add(ownerID, body)
	refusedWith(t, err, "equivocated")
	// verify reports it, with the evidence.
	rep, err := p.witness.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Valid || !strings.Contains(rep.Where, "equivocation of branch "+ownerID.String()) || len(rep.Alerts) != 1 || len(rep.Alerts[0].Evidence) == 0 {
		t.Fatalf("verify: %+v", rep)
	}
}

func mustOpen(t *testing.T, p *pair, note string) *checkpoint.Signed {
	t.Helper()
	c, err := checkpoint.Open([]byte(note), p.owner.Ledger().Genesis().Hash, p.sw.keys)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// An older checkpoint that arrives late is no evidence: the witness asks for a
// newer one. A smaller tree whose head is not the owner's block at that number,
// which the witness stores, is: and the evidence and the refusal outlive a
// restart of the witness.
func TestEvidenceOutlivesARestart(t *testing.T) {
	p := newPair(t)
	ownerID := p.owner.ID()
	small := p.grown(2)
	big := p.grown(small.Size + 3)
	body, _ := p.so.addBody(big, 0)
	if ans, err := p.add(ownerID, body); err != nil || ans.Cosigned == "" {
		t.Fatalf("%+v %v", ans, err)
	}
	body, _ = p.so.addBody(small, 0)
	if ans, err := p.add(ownerID, body); err != nil || ans.Size == nil || *ans.Size != big.Size {
		t.Fatalf("a late, older checkpoint: %+v %v, want size %d back", ans, err, big.Size)
	}
	p.give(small.Size)
	if ans, err := p.add(ownerID, body); err != nil || ans.Size == nil {
		t.Fatalf("a late, older checkpoint whose head the witness stores: %+v %v", ans, err)
	}
	if len(p.sw.Equivocations()) != 0 {
		t.Fatal("an older checkpoint taken as evidence")
	}
	// The owner signs a tree of small.Size blocks ending elsewhere.
	var leaves []ledger.Hash
	var last ledger.Hash
	for i := uint64(0); i < small.Size; i++ {
		last = ledger.Hash(sha256.Sum256([]byte{byte(i), 'z'}))
		leaves = append(leaves, ledger.BlockLeaf(last))
	}
	note, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: small.Origin, Size: small.Size, Root: ledger.MerkleRoot(leaves), Head: last}, p.owner.Ledger().Identity())
	if err != nil {
		t.Fatal(err)
	}
	headProof, _ := ledger.RecordInclusion(leaves, small.Size-1)
	_, err = p.add(ownerID, addBody{Checkpoint: string(note), HeadProof: headProof})
	refusedWith(t, err, "equivocation (fork)")

	p.sw.Close()
	if err := p.witness.Close(); err != nil {
		t.Fatal(err)
	}
	w, err := node.Open(node.Config{DataDir: p.wdir, Profile: node.LocalProfile(), Advertise: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	p.witness = w
	p.sw = p.service(w)
	if ev := p.sw.Equivocations(); len(ev) != 1 || ev[0].Kind != "fork" || ev[0].Branch != ownerID || ev[0].FirstHead != small.Head || ev[0].SecondHead != last {
		t.Fatalf("evidence after a restart: %+v", ev)
	}
	if _, refused := w.Ledger().Refused(ownerID); !refused {
		t.Fatal("the branch is taken again after a restart")
	}
	if c, ok := p.sw.Checkpoint(ownerID); !ok || c.Size != big.Size {
		t.Fatalf("the cosigned checkpoint after a restart: %+v", c)
	}
}

// give hands the witness the owner's blocks 1..n, as replication does.
func (p *pair) give(n uint64) {
	p.t.Helper()
	raws, err := p.owner.Ledger().Store().Blocks(p.owner.ID(), 1, int(n))
	if err != nil || uint64(len(raws)) != n {
		p.t.Fatalf("blocks 1..%d of the owner: %d, %v", n, len(raws), err)
	}
	if _, err := p.witness.Ledger().Ingest(context.Background(), raws, nil); err != nil {
		p.t.Fatal(err)
	}
}

// A witness that stores blocks of a branch holds the owner's first checkpoint to
// them: an honest one is proved consistent with them; a forged tree that does not
// hold them is an equivocation, whose evidence is the owner's own block.
func TestFirstCheckpointIsHeldToTheBlocksTheWitnessStores(t *testing.T) {
	p := newPair(t)
	ownerID := p.owner.ID()
	p.grown(4)
	p.give(3)
	c := p.grown(6)
	body, _ := p.so.addBody(c, 0)
	ans, err := p.add(ownerID, body)
	if err != nil || ans.Size == nil || *ans.Size != 3 {
		t.Fatalf("first checkpoint from 0: %+v %v, want size 3 back (the blocks it stores)", ans, err)
	}
	body, _ = p.so.addBody(c, 3)
	if ans, err = p.add(ownerID, body); err != nil || ans.Cosigned == "" {
		t.Fatalf("proved from the 3 blocks it stores: %+v %v", ans, err)
	}

	// A second witness that stores blocks 1..3 is offered a tree that does not hold them.
	q := newPair(t)
	q.grown(4)
	q.give(3)
	var leaves []ledger.Hash
	var last ledger.Hash
	for i := 0; i < 8; i++ {
		last = ledger.Hash(sha256.Sum256([]byte{byte(i), 'y'}))
		leaves = append(leaves, ledger.BlockLeaf(last))
	}
	origin := checkpoint.Origin(q.owner.Ledger().Genesis().Hash, q.owner.ID())
	note, err := checkpoint.Sign(checkpoint.Checkpoint{Origin: origin, Size: 8, Root: ledger.MerkleRoot(leaves), Head: last}, q.owner.Ledger().Identity())
	if err != nil {
		t.Fatal(err)
	}
	headProof, _ := ledger.RecordInclusion(leaves, 7)
	_, err = q.add(q.owner.ID(), addBody{Checkpoint: string(note), Old: 3, HeadProof: headProof})
	refusedWith(t, err, "equivocation (fork)")
	ev := q.sw.Equivocations()
	if len(ev) != 1 || !strings.Contains(ev[0].Reason, "does not hold blocks 1..3") || ev[0].SecondHead != last {
		t.Fatalf("evidence: %+v", ev)
	}
	b, err := ledger.ParseBlock([]byte(ev[0].First))
	if err != nil || b.CheckSelf() != nil || b.Branch != q.owner.ID() || b.No != 3 || b.Hash != ev[0].FirstHead {
		t.Fatalf("the evidence's first part is not the owner's block 3: %v %+v", err, b)
	}
}
