package ringledger

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/store"
)

// Tests with a lying member on the static ring. The transport authenticates
// every sender (from is a fact); everything else a peer says is a claim, and
// each lie below must be caught: an error to the client or the reading stored
// at its true owner, the honest nodes' stores unchanged, and their ledgers
// still valid.

// digests returns each node's digest of everything it stores.
func digests(t *testing.T, r *staticRing) map[chord.ID]store.Digest {
	t.Helper()
	out := map[chord.ID]store.Digest{}
	for id, d := range r.nodes {
		dg, err := d.store.RangeDigest(id, id)
		if err != nil {
			t.Fatal(err)
		}
		out[id] = dg
	}
	return out
}

// unchanged checks that the nodes but skip store what they stored before.
func unchanged(t *testing.T, r *staticRing, before map[chord.ID]store.Digest, skip ...chord.ID) {
	t.Helper()
	for id, dg := range digests(t, r) {
		if !slices.Contains(skip, id) && dg != before[id] {
			t.Errorf("node %s's store changed: %+v, was %+v", id.Short(), dg, before[id])
		}
	}
}

// settle waits until no node has pointers or copies on their way, and
// returns the digests then.
func settle(t *testing.T, r *staticRing) map[chord.ID]store.Digest {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	prev := digests(t, r)
	for {
		time.Sleep(20 * time.Millisecond)
		busy := false
		for _, d := range r.nodes {
			st := d.Stats()
			busy = busy || st.PtrPending != 0 || st.ReplPending != 0
		}
		cur := digests(t, r)
		if !busy && maps.Equal(cur, prev) {
			return cur
		}
		if time.Now().After(deadline) {
			t.Fatal("the ring never settled")
		}
		prev = cur
	}
}

// verifyAll checks every node's ledger but skip's.
func verifyAll(t *testing.T, r *staticRing, skip ...chord.ID) {
	t.Helper()
	for id, d := range r.nodes {
		if slices.Contains(skip, id) {
			continue
		}
		rep, err := ledger.Verify(context.Background(), d.store, d.ledger.Genesis(), testProof, id)
		if err != nil || !rep.Valid {
			t.Errorf("node %s's ledger: %+v %v", id.Short(), rep, err)
		}
	}
}

// send hands to a peer message from, and returns the refusal of its reply.
func send(t *testing.T, to *Ledger, from chord.Peer, op string, body any) *Refusal {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(peerRequest{Op: op, Body: b})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := to.HandleMessage(context.Background(), from, data)
	if err != nil {
		t.Fatal(err)
	}
	return refusalIn(t, raw)
}

// signAs signs a record of a reading with key and time as id, attached to
// genesis (the head of a branch that never mined).
func signAs(t *testing.T, id *ledger.Identity, g *ledger.Genesis, thing string, key ledger.Key, at time.Time) (*ledger.Record, []byte) {
	t.Helper()
	data := []byte(`{"v":1}`)
	salt := make([]byte, ledger.SaltSize)
	rand.Read(salt)
	h := ledger.DataHash(data, at.UnixNano(), salt)
	rec := &ledger.Record{Block: ledger.BlockRef{Branch: id.ID, Hash: g.Hash}, Data: data, HData: h, Key: key,
		Salt: salt, Thing: thing, Time: at.UnixNano(), TxID: ledger.TxID(g.Hash, h), Seq: uint64(salt[0])<<8 | uint64(salt[1])}
	raw, err := ledger.SignRecord(rec, id)
	if err != nil {
		t.Fatal(err)
	}
	return rec, raw
}

// recordOf signs the record of a reading as put sends it, as id, without
// storing it.
func recordOf(t *testing.T, w wireReading, id *ledger.Identity, g *ledger.Genesis) []byte {
	t.Helper()
	data, err := ledger.CanonicalData(w.Data)
	if err != nil {
		t.Fatal(err)
	}
	h := ledger.DataHash(data, w.Time, w.Salt)
	key := h
	if w.Key != nil {
		key = *w.Key
	}
	rec := &ledger.Record{Block: ledger.BlockRef{Branch: id.ID, Hash: g.Hash}, Data: data, HData: h, Key: key,
		Salt: w.Salt, Thing: w.Thing, Time: w.Time, TxID: ledger.TxID(g.Hash, h)}
	raw, err := ledger.SignRecord(rec, id)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// lieOnPuts makes liar answer every put with lie(body) instead of handling it.
func lieOnPuts(t *testing.T, r *staticRing, liar *Ledger, lie func(putBody) (putAnswer, error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.intercept = func(to *Ledger, from chord.Peer, req json.RawMessage) (json.RawMessage, bool) {
		var q peerRequest
		var b putBody
		if to != liar || json.Unmarshal(req, &q) != nil || q.Op != opPut || json.Unmarshal(q.Body, &b) != nil {
			return nil, false
		}
		ans, err := lie(b)
		if err != nil {
			t.Error(err)
		}
		raw, _ := json.Marshal(reply{Answer: ans})
		return raw, true
	}
}

func throwaway(t *testing.T) *ledger.Identity {
	id, err := ledger.GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestLiarFabricatedReceiptsFailThePut: an owner that answers a put with
// receipts it did not sign, or with records that are not the reading's, makes
// the put fail (ErrBadAnswer); nothing is stored anywhere.
func TestLiarFabricatedReceiptsFailThePut(t *testing.T) {
	r := newMemberRing(t, 5)
	ctx := context.Background()
	liar, entry := r.nodes[r.ids[1]], r.nodes[r.ids[3]]
	g := liar.ledger.Genesis()
	own := liar.ledger.Identity()
	rng := wireRange{From: r.ids[0], To: r.ids[1]}
	lies := []struct {
		name string
		lie  func(putBody) (putAnswer, error)
	}{
		{"no records", func(putBody) (putAnswer, error) { return putAnswer{Range: rng}, nil }},
		{"a throwaway key's records", func(b putBody) (putAnswer, error) {
			return putAnswer{Records: []json.RawMessage{recordOf(t, b.Readings[0], throwaway(t), g)}, Range: rng}, nil
		}},
		{"a tampered txID", func(b putBody) (putAnswer, error) {
			rec, err := ledger.ParseRecord(recordOf(t, b.Readings[0], own, g))
			if err != nil {
				return putAnswer{}, err
			}
			rec.TxID[0] ^= 1
			raw, err := ledger.SignRecord(rec, own)
			return putAnswer{Records: []json.RawMessage{raw}, Range: rng}, err
		}},
		{"another reading's record", func(b putBody) (putAnswer, error) {
			w := b.Readings[0]
			w.Data = json.RawMessage(`{"kWh":999}`)
			return putAnswer{Records: []json.RawMessage{recordOf(t, w, own, g)}, Range: rng}, nil
		}},
	}
	before := digests(t, r)
	key := r.ids[1]
	for _, l := range lies {
		lieOnPuts(t, r, liar, l.lie)
		_, err := entry.Put(ctx, []ledger.Reading{{Thing: "meter", Data: []byte(`{"kWh":1}`), Key: &key}}, PutOptions{})
		if !errors.Is(err, ErrBadAnswer) {
			t.Errorf("%s: Put returned %v, want ErrBadAnswer", l.name, err)
		}
	}
	if got := entry.Stats().BadAnswers; got < uint64(len(lies)) {
		t.Errorf("BadAnswers = %d, want at least %d", got, len(lies))
	}
	unchanged(t, r, before)
	verifyAll(t, r)
}

// TestLiarClaimingTheWholeRingGetsOnlyItsKeys: an owner that claims the whole
// ring as its range in its put answers is not believed: the entry node sends
// it only its own keys, and every reading lands at its true owner.
func TestLiarClaimingTheWholeRingGetsOnlyItsKeys(t *testing.T) {
	r := newMemberRing(t, 5)
	ctx := context.Background()
	liar, entry := r.nodes[r.ids[1]], r.nodes[r.ids[3]]
	lieOnPuts(t, r, liar, func(b putBody) (putAnswer, error) {
		raw, err := liar.HandleMessage(ctx, r.peer(entry.self()), mustRequest(t, opPut, b))
		if err != nil {
			return putAnswer{}, err
		}
		var rep struct {
			Answer  putAnswer `json:"answer"`
			Refusal *Refusal  `json:"refusal"`
		}
		if err := json.Unmarshal(raw, &rep); err != nil || rep.Refusal != nil {
			return putAnswer{}, fmt.Errorf("liar's own put: %v %v", err, rep.Refusal)
		}
		rep.Answer.Range = wireRange{From: liar.self(), To: liar.self()}
		return rep.Answer, nil
	})
	key := r.ids[1]
	if _, err := entry.Put(ctx, []ledger.Reading{{Thing: "meter", Data: []byte(`1`), Key: &key}}, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if p, ok := entry.ranges.find(r.ids[2], time.Now()); ok && p.ID == liar.self() {
		t.Fatal("the entry node cached the liar's claim to the whole ring")
	}
	var rs []ledger.Reading
	for i := range 40 {
		rs = append(rs, ledger.Reading{Thing: "meter", Data: []byte(fmt.Sprint(i))})
	}
	rcs, err := entry.Put(ctx, rs, PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, rc := range rcs {
		owner, _, _ := ringView{r: r}.Lookup(ctx, rc.Key)
		if rc.Owner.ID != owner.ID {
			t.Errorf("reading %d: owner %s, want %s", i, rc.Owner.ID.Short(), owner.ID.Short())
		}
		if _, err := r.nodes[owner.ID].LocalRecord(rc.TxID); err != nil {
			t.Errorf("reading %d is not at its owner: %v", i, err)
		}
	}
	liar.store.EachKeyIndex(func(k [20]byte, _ [32]byte) error {
		if !inRange(r.ids[0], k, r.ids[1]) && !inRange(r.ids[3], k, r.ids[0]) { // its range and its replica ranges
			t.Errorf("the liar holds key %s of another node", ledger.Key(k))
		}
		return nil
	})
	if entry.Stats().BadAnswers == 0 {
		t.Error("the claim was not counted")
	}
	verifyAll(t, r)
}

func mustRequest(t *testing.T, op string, body any) json.RawMessage {
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(peerRequest{Op: op, Body: b})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestLiarSigningKeysOutsideItsRangeIsRefused: records a member signs for
// keys outside its range are refused by the entry node (the reading is stored
// at its true owner instead) and by the replicas it pushes them to.
func TestLiarSigningKeysOutsideItsRangeIsRefused(t *testing.T) {
	r := newMemberRing(t, 5)
	ctx := context.Background()
	liar, entry := r.nodes[r.ids[1]], r.nodes[r.ids[0]]
	// A stale cache sends the liar a key of ids[2]; it signs it anyway.
	entry.ranges.learn(liar.self(), liar.self(), r.peer(liar.self()), time.Now())
	lieOnPuts(t, r, liar, func(b putBody) (putAnswer, error) {
		rs := make([]ledger.Reading, len(b.Readings))
		for i, w := range b.Readings {
			rs[i] = ledger.Reading{Thing: w.Thing, Data: w.Data, Key: w.Key, Time: w.Time, Salt: w.Salt}
		}
		lrs, err := liar.ledger.Append(ctx, rs)
		ans := putAnswer{Range: wireRange{From: liar.self(), To: liar.self()}}
		for _, lr := range lrs {
			ans.Records = append(ans.Records, lr.Record)
		}
		return ans, err
	})
	key := r.ids[2]
	rcs, err := entry.Put(ctx, []ledger.Reading{{Thing: "meter", Data: []byte(`2`), Key: &key}}, PutOptions{WaitReplicas: true})
	if err != nil {
		t.Fatal(err)
	}
	if rcs[0].Owner.ID != r.ids[2] || rcs[0].Block.Branch != r.ids[2] {
		t.Fatalf("receipt %+v: want the reading signed by its true owner %s", rcs[0], r.ids[2].Short())
	}
	if _, err := r.nodes[r.ids[2]].LocalRecord(rcs[0].TxID); err != nil {
		t.Fatal(err)
	}
	if entry.Stats().BadAnswers == 0 {
		t.Error("the misplaced record was not counted")
	}
	r.mu.Lock()
	r.intercept = nil
	r.mu.Unlock()

	// The liar pushes a record it signed for ids[3]'s key, and a pointer
	// whose position is not its own, to its successor.
	succ := r.nodes[r.ids[2]]
	before := settle(t, r)
	k3 := r.ids[3]
	lrs, err := liar.ledger.Append(ctx, []ledger.Reading{{Thing: "meter", Data: []byte(`3`), Key: &k3}})
	if err != nil {
		t.Fatal(err)
	}
	from := r.peer(liar.self())
	if rf := send(t, succ, from, opReplicate, replicateBody{Records: []json.RawMessage{lrs[0].Record}}); rf == nil || rf.Code != CodeRefused {
		t.Errorf("a record for a key outside the sender's range: %v, want refused", rf)
	}
	var tx ledger.Hash
	copy(tx[:], r.ids[3][:])
	if rf := send(t, succ, from, opReplicate, replicateBody{Pointers: []wirePointer{{TxID: tx, Key: liar.self()}}}); rf == nil || rf.Code != CodeRefused {
		t.Errorf("a pointer outside the sender's range: %v, want refused", rf)
	}
	unchanged(t, r, before, liar.self())
	verifyAll(t, r)
}

// TestThrowawayRecordOnGenesisIsRefused: a record signed by a key that is no
// member, attached to genesis, is refused by a replica however the sender
// vouches for it, is not spread by repair, and no reader hands it out.
func TestThrowawayRecordOnGenesisIsRefused(t *testing.T) {
	r := newMemberRing(t, 5)
	ctx := context.Background()
	liar, succ, entry := r.nodes[r.ids[1]], r.nodes[r.ids[2]], r.nodes[r.ids[4]]
	rec, raw := signAs(t, throwaway(t), liar.ledger.Genesis(), "intruder", liar.self(), time.Now())
	before := digests(t, r)
	from := r.peer(liar.self())
	if rf := send(t, succ, from, opReplicate, replicateBody{Records: []json.RawMessage{raw}}); rf == nil || rf.Code != CodeRefused {
		t.Errorf("a throwaway key's record: %v, want refused", rf)
	}
	// The liar shows a membership the authority never issued.
	r.mu.Lock()
	r.intercept = func(to *Ledger, _ chord.Peer, req json.RawMessage) (json.RawMessage, bool) {
		var q peerRequest
		if to != liar || json.Unmarshal(req, &q) != nil || q.Op != opMembership {
			return nil, false
		}
		out, _ := json.Marshal(reply{Answer: membershipAnswer{DER: fakeDER(rec.Block.Branch)}})
		return out, true
	}
	r.mu.Unlock()
	if rf := send(t, succ, from, opReplicate, replicateBody{Records: []json.RawMessage{raw}}); rf == nil || rf.Code != CodeRefused {
		t.Errorf("a throwaway key's record with a forged membership: %v, want refused", rf)
	}
	if succ.Stats().NotMember < 2 {
		t.Errorf("NotMember = %d, want 2", succ.Stats().NotMember)
	}
	// The liar holds it itself: its repair rounds do not spread it, and
	// no reader takes it from the liar.
	if _, err := liar.ledger.Ingest(ctx, nil, [][]byte{raw}); err != nil {
		t.Fatal(err)
	}
	if err := liar.SyncNow(ctx); err == nil {
		t.Error("the liar's repair round pushed a throwaway key's record without a refusal")
	}
	if got, err := entry.Record(ctx, rec.TxID); !errors.Is(err, ErrNotFound) {
		t.Errorf("read by txID: %s %v, want not found", got, err)
	}
	if got, err := entry.RecordsByThing(ctx, "intruder", 0, 0, 10); err != nil || len(got) != 0 {
		t.Errorf("read by Thing: %d records %v, want none", len(got), err)
	}
	if got, err := entry.RecordsByKey(ctx, rec.Key, 10); err != nil || len(got) != 0 {
		t.Errorf("read by key: %d records %v, want none", len(got), err)
	}
	unchanged(t, r, before, liar.self())
	verifyAll(t, r, liar.self())
}

// TestPointerOverwriteByANonOwnerIsRefused: a member cannot rewrite the txID
// pointer of another owner's record, nor write pointers to keys outside its
// range; the pointer still leads to the record.
func TestPointerOverwriteByANonOwnerIsRefused(t *testing.T) {
	r := newMemberRing(t, 5)
	ctx := context.Background()
	liar, entry := r.nodes[r.ids[1]], r.nodes[r.ids[3]]
	var rs []ledger.Reading
	for i := range 20 {
		rs = append(rs, ledger.Reading{Thing: "meter", Data: []byte(fmt.Sprint(i))})
	}
	rcs, err := entry.Put(ctx, rs, PutOptions{WaitReplicas: true})
	if err != nil {
		t.Fatal(err)
	}
	view := ringView{r: r}
	var rc Receipt
	var holder *Ledger
	for _, c := range rcs {
		p, _, _ := view.Lookup(ctx, keyOf(c.TxID))
		if p.ID != liar.self() && c.Owner.ID != liar.self() {
			rc, holder = c, r.nodes[p.ID]
			break
		}
	}
	if holder == nil {
		t.Fatal("no reading with neither its record nor its pointer at the liar")
	}
	before := settle(t, r)
	if _, err := holder.store.Pointer(rc.TxID); err != nil {
		t.Fatalf("the pointer was never written: %v", err)
	}
	from := r.peer(liar.self())
	for name, ws := range map[string][]wirePointer{
		"an overwrite to a key of the liar's": {{TxID: rc.TxID, Key: liar.self()}},
		"the true key, not the liar's":        {{TxID: rc.TxID, Key: rc.Key}},
		"a new pointer to another's key":      {{TxID: ledger.Hash(append(slices.Clone(rc.TxID[:20]), make([]byte, 12)...)), Key: rc.Key}},
	} {
		if rf := send(t, holder, from, opPointers, replicateBody{Pointers: ws}); rf == nil || rf.Code != CodeRefused {
			t.Errorf("%s: %v, want refused", name, rf)
		}
	}
	if rf := send(t, holder, from, opPointers, replicateBody{Pointers: make([]wirePointer, listPage+1)}); rf == nil || rf.Code != CodeRefused {
		t.Errorf("a flood of pointers: %v, want refused", rf)
	}
	if key, err := holder.store.Pointer(rc.TxID); err != nil || ledger.Key(key) != rc.Key {
		t.Errorf("the pointer now names %s (%v), want %s", ledger.Key(key), err, rc.Key)
	}
	unchanged(t, r, before)
	if _, err := r.nodes[r.ids[0]].Record(ctx, rc.TxID); err != nil {
		t.Errorf("read by txID: %v", err)
	}
	verifyAll(t, r)
}

// TestRevokedOrExpiredSignerIsRefused: records a node signed after its
// revocation or expiry are refused, whoever relays them, and not handed out
// by readers; its earlier records stay good; the node itself is refused every
// op.
func TestRevokedOrExpiredSignerIsRefused(t *testing.T) {
	r := newMemberRing(t, 5)
	ctx := context.Background()
	relay, succ, entry := r.nodes[r.ids[1]], r.nodes[r.ids[2]], r.nodes[r.ids[4]]
	revoked := r.nodes[r.ids[3]]
	now := time.Now()
	r.authority.revoke(revoked.self(), now.Add(-time.Minute))
	expired := throwaway(t)
	r.authority.admit(expired.ID, now.Add(-2*time.Hour), now.Add(-30*time.Minute))
	for _, d := range r.nodes {
		d.cfg.Members.(*fakeMembers).Learn(fakeDER(expired.ID))
	}
	g := relay.ledger.Genesis()
	from := r.peer(relay.self())
	before := digests(t, r)
	for name, id := range map[string]*ledger.Identity{"revoked": revoked.ledger.Identity(), "expired": expired} {
		rec, raw := signAs(t, id, g, "late", relay.self(), now)
		if rf := send(t, succ, from, opReplicate, replicateBody{Records: []json.RawMessage{raw}}); rf == nil || rf.Code != CodeRefused {
			t.Errorf("%s signer, relayed: %v, want refused", name, rf)
		}
		if _, err := relay.ledger.Ingest(ctx, nil, [][]byte{raw}); err != nil {
			t.Fatal(err)
		}
		if got, err := entry.Record(ctx, rec.TxID); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s signer, read by txID: %s %v, want not found", name, got, err)
		}
	}
	unchanged(t, r, before, relay.self())
	// Before its revocation the node was a member: its records stand.
	early, raw := signAs(t, revoked.ledger.Identity(), g, "early", relay.self(), now.Add(-2*time.Minute))
	if rf := send(t, succ, from, opReplicate, replicateBody{Records: []json.RawMessage{raw}}); rf != nil {
		t.Errorf("a record signed before the revocation: %v, want stored", rf)
	}
	if _, err := succ.LocalRecord(early.TxID); err != nil {
		t.Error(err)
	}
	// The revoked node itself is refused whatever it asks.
	gone := r.peer(revoked.self())
	for op, body := range map[string]any{
		opDigest: digestBody{Ranges: []wireRange{{From: r.ids[0], To: r.ids[1]}}},
		opList:   listBody{Range: wireRange{From: r.ids[0], To: r.ids[1]}},
		opFetch:  fetchBody{TxIDs: []ledger.Hash{early.TxID}},
		opGet:    getBody{TxID: &early.TxID},
		opBlocks: blocksBody{Branch: succ.self(), From: 1},
	} {
		if rf := send(t, succ, gone, op, body); rf == nil || rf.Code != CodeRefused {
			t.Errorf("%s from a revoked node: %v, want refused", op, rf)
		}
	}
	verifyAll(t, r, relay.self())
}

// TestRepairLearnsASignersMembership: after a node fails, its successor
// pushes the failed node's records on; a replica that has never seen the
// failed node's membership asks the pusher for it, checks it and stores them.
func TestRepairLearnsASignersMembership(t *testing.T) {
	r := newMemberRing(t, 5)
	ctx := context.Background()
	var rs []ledger.Reading
	for i := range 40 {
		rs = append(rs, ledger.Reading{Thing: "meter", Data: []byte(fmt.Sprint(i))})
	}
	rcs, err := r.nodes[r.ids[0]].Put(ctx, rs, PutOptions{WaitReplicas: true})
	if err != nil {
		t.Fatal(err)
	}
	failed := r.ids[2]
	var theirs []ledger.Hash
	for _, rc := range rcs {
		if rc.Owner.ID == failed {
			theirs = append(theirs, rc.TxID)
		}
	}
	if len(theirs) == 0 {
		t.Fatal("no reading owned by the node that fails")
	}
	r.mu.Lock()
	r.ids = slices.DeleteFunc(r.ids, func(id chord.ID) bool { return id == failed })
	r.mu.Unlock()
	for _, d := range r.nodes {
		d.stale.Store(true)
	}
	far := r.nodes[r.ids[0]] // after the failure, a replica of ids[2]'s successor
	far.cfg.Members.(*fakeMembers).forget(failed)
	if err := r.nodes[r.ids[2]].SyncNow(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tx := range theirs {
		if _, err := far.LocalRecord(tx); err != nil {
			t.Errorf("record %s of the failed node did not reach the new replica: %v", tx, err)
		}
	}
	if _, ok := far.cfg.Members.MembershipDER(failed); !ok {
		t.Error("the replica did not learn the failed node's membership")
	}
	delete(r.nodes, failed)
	verifyAll(t, r)
}
