package ringledger

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/store"
)

// A static ring: every node's view is the Ideal one of a fixed membership, and
// a Call is the far ledger's HandleMessage, in process. It tests the ledger's
// handlers and client without sockets, timers or a Chord core; the live rings
// of package node test it with all of them.
type staticRing struct {
	mu    sync.Mutex
	nodes map[chord.ID]*Ledger
	ids   []chord.ID // sorted
	// afterCall, when set, sees each call once the far side handled it and
	// may change its outcome (a lost answer, say).
	afterCall func(to *Ledger, req, reply json.RawMessage, err error) (json.RawMessage, error)
	// intercept, when set, sees each call before the far side: a lying
	// node answers in its place (handled true) and the far side never sees it.
	intercept func(to *Ledger, from chord.Peer, req json.RawMessage) (reply json.RawMessage, handled bool)
	// authority, when set, admitted every node: each has a fakeMembers view.
	authority *fakeAuthority
}

type ringView struct {
	r    *staticRing
	self chord.ID
}

func (r *staticRing) peer(id chord.ID) chord.Peer {
	return chord.Peer{ID: id, Addr: "mem://" + id.Short()}
}

func (v ringView) State() chord.State {
	r := v.r
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.Index(r.ids, v.self)
	st := chord.State{Self: r.peer(v.self), Status: chord.StatusMember.String()}
	n := len(r.ids)
	if n == 1 {
		st.Succs = []chord.Peer{st.Self}
		return st
	}
	st.Pred = r.peer(r.ids[(i+n-1)%n])
	for j := 1; j < n && j <= 4; j++ {
		st.Succs = append(st.Succs, r.peer(r.ids[(i+j)%n]))
	}
	return st
}

func (v ringView) Walk(context.Context, int) ([]chord.Peer, error) {
	v.r.mu.Lock()
	defer v.r.mu.Unlock()
	var out []chord.Peer
	for _, id := range v.r.ids {
		out = append(out, v.r.peer(id))
	}
	return out, nil
}

func (v ringView) Lookup(_ context.Context, key chord.ID) (chord.Peer, int, error) {
	v.r.mu.Lock()
	defer v.r.mu.Unlock()
	for _, id := range v.r.ids {
		if key.Cmp(id) <= 0 {
			return v.r.peer(id), 1, nil
		}
	}
	return v.r.peer(v.r.ids[0]), 1, nil
}

func (v ringView) Call(ctx context.Context, p chord.Peer, data json.RawMessage) (json.RawMessage, error) {
	v.r.mu.Lock()
	to, after, icept := v.r.nodes[p.ID], v.r.afterCall, v.r.intercept
	v.r.mu.Unlock()
	if to == nil {
		return nil, errors.New("unreachable")
	}
	if icept != nil {
		if reply, ok := icept(to, v.r.peer(v.self), data); ok {
			return reply, nil
		}
	}
	reply, err := to.HandleMessage(ctx, v.r.peer(v.self), data)
	if after != nil {
		return after(to, data, reply, err)
	}
	return reply, err
}

func (v ringView) Leave(context.Context) error { return nil }

func testProof(seed [32]byte, _ int64, branch [20]byte, nonce uint64, _ int64) ([32]byte, error) {
	return sha256.Sum256(append(append(seed[:], branch[:]...), byte(nonce))), nil
}

// newStaticRing opens n ledgers on temporary stores and attaches them to one
// static ring, k = 3.
func newStaticRing(t *testing.T, n int) *staticRing { return openStaticRing(t, n, nil) }

// newMemberRing is a static ring of n members of a fake network authority:
// each node checks peers and signers against its own view (fakeMembers),
// which knows every node of the ring, as after their handshakes.
func newMemberRing(t *testing.T, n int) *staticRing {
	a := &fakeAuthority{issued: map[ledger.Key]fakeMembership{}, revoked: map[ledger.Key]time.Time{}}
	return openStaticRing(t, n, a)
}

func openStaticRing(t *testing.T, n int, a *fakeAuthority) *staticRing {
	t.Helper()
	return openStaticRingAt(t, n, a, nil)
}

// openStaticRingAt is openStaticRing with every node on the clock now (nil:
// time.Now).
func openStaticRingAt(t *testing.T, n int, a *fakeAuthority, now func() time.Time) *staticRing {
	t.Helper()
	g, err := ledger.NewGenesis(ledger.Network{Name: "ringledger-test", Mining: ledger.MiningParams{Rate: 20, MeanBlockTime: time.Second, Variance: 0.2}})
	if err != nil {
		t.Fatal(err)
	}
	r := &staticRing{nodes: map[chord.ID]*Ledger{}, authority: a}
	var views []*fakeMembers
	for i := 0; i < n; i++ {
		var opts []func(*Config)
		if a != nil {
			m := &fakeMembers{a: a, known: map[ledger.Key]bool{}}
			views = append(views, m)
			opts = append(opts, func(c *Config) { c.Members = m })
		}
		d := openLedgerAt(t, g, byte(i+1), now, opts...)
		r.nodes[d.self()] = d
		r.ids = append(r.ids, d.self())
		if a != nil {
			a.admit(d.self(), time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		}
	}
	for _, m := range views {
		for _, id := range r.ids {
			m.known[id] = true
		}
	}
	slices.SortFunc(r.ids, chord.ID.Cmp)
	for id, d := range r.nodes {
		d.Attach(ringView{r: r, self: id})
	}
	return r
}

func openLedger(t *testing.T, g *ledger.Genesis, seed byte, opts ...func(*Config)) *Ledger {
	t.Helper()
	return openLedgerAt(t, g, seed, nil, opts...)
}

func openLedgerAt(t *testing.T, g *ledger.Genesis, seed byte, now func() time.Time, opts ...func(*Config)) *Ledger {
	t.Helper()
	dir := t.TempDir()
	id, err := ledger.NewIdentity(slices.Repeat([]byte{seed}, 32))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(dir, store.LocalOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(ledger.Config{Genesis: g, Identity: id, Store: st, Proof: testProof, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Self: Peer{ID: id.ID, Addr: "http://node-" + fmt.Sprint(seed)}, Ledger: l, Store: st, Replicas: 3,
		SyncInterval: time.Hour, Now: now}
	for _, o := range opts {
		o(&cfg)
	}
	d := New(cfg)
	t.Cleanup(func() {
		d.Close()
		st.Close()
	})
	return d
}

// fakeAuthority stands for a network authority: it admits nodes for a
// while and revokes them. A "DER" it issued names the node; Learn accepts only
// those (a real membership proves itself by the authority's signature).
type fakeAuthority struct {
	mu      sync.Mutex
	issued  map[ledger.Key]fakeMembership
	revoked map[ledger.Key]time.Time
}

type fakeMembership struct{ notBefore, notAfter time.Time }

func (a *fakeAuthority) admit(id ledger.Key, notBefore, notAfter time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.issued[id] = fakeMembership{notBefore, notAfter}
}

func (a *fakeAuthority) revoke(id ledger.Key, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.revoked[id] = at
}

func fakeDER(id ledger.Key) []byte { return []byte("fake-membership:" + id.Hex()) }

// fakeMembers is one node's view: the memberships it has seen, checked
// against the authority's (revocations reach every view at once).
type fakeMembers struct {
	a     *fakeAuthority
	mu    sync.Mutex
	known map[ledger.Key]bool
}

func (m *fakeMembers) ValidAt(id ledger.Key, t time.Time) error {
	m.mu.Lock()
	known := m.known[id]
	m.mu.Unlock()
	if !known {
		return fmt.Errorf("node %s has no membership this node knows", id.Short())
	}
	m.a.mu.Lock()
	defer m.a.mu.Unlock()
	ms, rev := m.a.issued[id], m.a.revoked[id]
	if t.Before(ms.notBefore) || t.After(ms.notAfter) {
		return fmt.Errorf("node %s's membership is not valid at %s", id.Short(), t)
	}
	if !rev.IsZero() && !t.Before(rev) {
		return fmt.Errorf("node %s was revoked at %s", id.Short(), rev)
	}
	return nil
}

func (m *fakeMembers) Current(id ledger.Key) error { return m.ValidAt(id, time.Now()) }

func (m *fakeMembers) MembershipDER(id ledger.Key) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.known[id] {
		return nil, false
	}
	return fakeDER(id), true
}

func (m *fakeMembers) Learn(der []byte) error {
	s, ok := strings.CutPrefix(string(der), "fake-membership:")
	id, err := ledger.ParseKey(s)
	if !ok || err != nil {
		return errors.New("not a membership")
	}
	m.a.mu.Lock()
	_, issued := m.a.issued[id]
	m.a.mu.Unlock()
	if !issued {
		return errors.New("not signed by the authority")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.known[id] = true
	return nil
}

func (m *fakeMembers) forget(id ledger.Key) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.known, id)
}

// refusalIn decodes a reply's refusal, or nil.
func refusalIn(t *testing.T, raw json.RawMessage) *Refusal {
	t.Helper()
	var rep struct {
		Answer  json.RawMessage `json:"answer"`
		Refusal *Refusal        `json:"refusal"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("reply %s: %v", raw, err)
	}
	return rep.Refusal
}

// TestPeerMessagesAreRefusedWithCodes: bad messages get a structured
// refusal with the right code, are counted, and store nothing; a node not
// attached to its ring yet refuses everything as "leaving".
func TestPeerMessagesAreRefusedWithCodes(t *testing.T) {
	r := newStaticRing(t, 3)
	d := r.nodes[r.ids[0]]
	from := r.peer(r.ids[1])
	ctx := context.Background()
	outside := r.ids[1] // owned by ids[1], not by d
	cases := []struct {
		name string
		data string
		code Code
	}{
		{"not JSON", `{"op":`, CodeRefused},
		{"a string", `"garbage"`, CodeRefused},
		{"unknown op", `{"op":"drop-table","body":{}}`, CodeRefused},
		{"unknown field", `{"op":"get","body":{"txID":null,"evil":1}}`, CodeRefused},
		{"empty put", `{"op":"put","body":{"readings":[]}}`, CodeRefused},
		{"unstamped reading", `{"op":"put","body":{"readings":[{"thing":"t","data":1}]}}`, CodeRefused},
		{"a key outside the range", fmt.Sprintf(`{"op":"put","body":{"readings":[{"thing":"t","data":1,"key":"%s","time":"%d","salt":"00112233445566778899aabbccddeeff"}]}}`, outside, time.Now().UnixNano()), CodeMisrouted},
		{"a reading the ledger refuses", fmt.Sprintf(`{"op":"put","body":{"readings":[{"thing":"t","data":1,"key":"%s","time":"%d","salt":"00112233445566778899aabbccddeeff"},{"thing":"bad/thing","data":1,"key":"%s","time":"%d","salt":"00112233445566778899aabbccddeeff"}]}}`,
			r.ids[0], time.Now().UnixNano(), r.ids[0], time.Now().UnixNano()), CodeInput},
		{"too many has", `{"op":"has","body":{"txIDs":[]}}`, CodeRefused},
	}
	rejected := d.Stats().Rejected
	for _, c := range cases {
		raw, err := d.HandleMessage(ctx, from, json.RawMessage(c.data))
		if err != nil {
			t.Fatalf("%s: HandleMessage returned an error instead of a refusal: %v", c.name, err)
		}
		rf := refusalIn(t, raw)
		if rf == nil || rf.Code != c.code {
			t.Errorf("%s: reply %s, want a %q refusal", c.name, raw, c.code)
			continue
		}
		if c.code == CodeInput && (rf.Index == nil || *rf.Index != 1) {
			t.Errorf("%s: refusal %+v names the wrong reading", c.name, rf)
		}
	}
	if got := d.Stats().Rejected - rejected; got != 7 {
		t.Errorf("rejected counter moved by %d, want 7 (the refused ones)", got)
	}
	var n int
	d.store.EachKeyIndex(func([20]byte, [32]byte) error { n++; return nil })
	if n != 0 {
		t.Errorf("refused messages stored %d records", n)
	}
	g, err := ledger.NewGenesis(ledger.Network{Name: "ringledger-test", Mining: ledger.MiningParams{Rate: 20, MeanBlockTime: time.Second, Variance: 0.2}})
	if err != nil {
		t.Fatal(err)
	}
	loose := openLedger(t, g, 99)
	raw, err := loose.HandleMessage(ctx, from, json.RawMessage(`{"op":"get","body":{"key":"`+outside.String()+`"}}`))
	if rf := refusalIn(t, raw); err != nil || rf == nil || rf.Code != CodeLeaving {
		t.Errorf("a ledger not attached to its ring answered %s (%v), want a leaving refusal", raw, err)
	}
}

// TestPutPlacesOnOwnerAndReplicas: readings put through any node land on
// their key's owner and its two successors, signed by the owner; a resent
// reading is the same record; the receipts' owner and replicas are the ring's.
func TestPutPlacesOnOwnerAndReplicas(t *testing.T) {
	r := newStaticRing(t, 5)
	ctx := context.Background()
	var rs []ledger.Reading
	for i := 0; i < 60; i++ {
		rs = append(rs, ledger.Reading{Thing: fmt.Sprintf("t-%d", i%4), Data: []byte(fmt.Sprint(i))})
	}
	entry := r.nodes[r.ids[2]]
	rcs, err := entry.Put(ctx, rs, PutOptions{WaitReplicas: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, rc := range rcs {
		v := ringView{r: r}
		owner, _, _ := v.Lookup(ctx, rc.Key)
		if rc.Owner.ID != owner.ID {
			t.Fatalf("reading %d: owner %s, want %s", i, rc.Owner.ID, owner.ID)
		}
		holders := []chord.ID{owner.ID}
		for _, p := range rc.Replicas {
			holders = append(holders, p.ID)
		}
		if len(holders) != 3 {
			t.Fatalf("reading %d: replicas %v", i, rc.Replicas)
		}
		for _, h := range holders {
			raw, err := r.nodes[h].LocalRecord(rc.TxID)
			if err != nil {
				t.Fatalf("reading %d: holder %s lacks it: %v", i, h.Short(), err)
			}
			rec, err := ledger.ParseRecord(raw)
			if err != nil || rec.CheckSelf(raw) != nil || rec.Block.Branch != owner.ID {
				t.Fatalf("reading %d on %s: %v", i, h.Short(), err)
			}
		}
	}
	// The entry node resends one stamped reading: the owner answers with the
	// stored record.
	again := []ledger.Reading{rs[7]}
	again[0].Resend = true
	rc2, err := r.nodes[r.ids[4]].Put(ctx, again, PutOptions{})
	if err != nil || rc2[0].TxID != rcs[7].TxID {
		t.Fatalf("a resent reading: %v %v, want txID %s", rc2, err, rcs[7].TxID)
	}
	// Reads from any node.
	for _, rc := range rcs[:10] {
		for _, id := range r.ids {
			if _, err := r.nodes[id].Record(ctx, rc.TxID); err != nil {
				t.Fatalf("read %s from %s: %v", rc.TxID, id.Short(), err)
			}
		}
	}
}

// TestLostAnswerIsNotASecondRecord: the owner stores a put, mines its next
// block, and the answer is lost on the way back; the entry node's retry is
// marked resend and the owner answers with the stored record, so the reading
// is one record, not two.
func TestLostAnswerIsNotASecondRecord(t *testing.T) {
	r := newStaticRing(t, 3)
	ctx := context.Background()
	entry := r.nodes[r.ids[0]]
	// A reading owned by another node, so the put crosses the "wire".
	key := r.ids[1]
	rs := []ledger.Reading{{Thing: "meter-1", Data: []byte(`{"kWh":3}`), Key: &key}}
	lost := 0
	r.mu.Lock()
	r.afterCall = func(to *Ledger, req, reply json.RawMessage, err error) (json.RawMessage, error) {
		var q peerRequest
		if json.Unmarshal(req, &q) == nil && q.Op == opPut && lost == 0 {
			lost++
			if err := to.ledger.Extend(ctx, 1, time.Now()); err != nil {
				t.Errorf("mine: %v", err)
			}
			return nil, errors.New("connection lost before the answer")
		}
		return reply, err
	}
	r.mu.Unlock()
	rcs, err := entry.Put(ctx, rs, PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owner := r.nodes[r.ids[1]]
	ids, err := owner.store.RecordsByKey(key, 0)
	if err != nil || len(ids) != 1 || ids[0] != rcs[0].TxID || lost != 1 {
		t.Fatalf("after a lost answer the owner holds %d records under the key (%v), receipt %s, lost %d; want exactly the receipt's", len(ids), err, rcs[0].TxID, lost)
	}
	if rcs[0].Block.No != 0 {
		t.Fatalf("the receipt names block %d: the retry was signed anew after the block was mined", rcs[0].Block.No)
	}
}
