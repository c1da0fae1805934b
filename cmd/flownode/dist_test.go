package main

// Black-box tests of the distributed ledger (node/dist.go, write.go, read.go,
// sync.go) over real processes on loopback: placement of each record on
// successor(key) and its k-1 successors (docs/chord.md, invariant 4), reads from
// any node, repair after a failure of two adjacent nodes, handoff on join and
// on a graceful leave racing with writes.

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	mrand "math/rand"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flownode/flownode/ledger"
)

// dlK is the replication factor the tests run with.
const dlK = 3

// dlNodeState is the part of GET /api/v1/node these tests read.
type dlNodeState struct {
	ID          string     `json:"id"`
	RPC         string     `json:"rpc"`
	Status      string     `json:"status"`
	Predecessor *peerJSON  `json:"predecessor"`
	Successors  []peerJSON `json:"successors"`
	Stats       struct {
		Records uint64 `json:"records"`
		Dist    struct {
			Owned        uint64 `json:"owned"`
			Forwarded    uint64 `json:"forwarded"`
			ReplicasIn   uint64 `json:"replicasIn"`
			ReplicasOut  uint64 `json:"replicasOut"`
			ReplPending  int64  `json:"replPending"`
			PointerFails uint64 `json:"pointerFails"`
			Rejected     uint64 `json:"rejected"`
			SyncRounds   uint64 `json:"syncRounds"`
			Pulled       uint64 `json:"pulled"`
			Pushed       uint64 `json:"pushed"`
		} `json:"dist"`
	} `json:"stats"`
}

func dlState(base string) (dlNodeState, error) {
	var st dlNodeState
	r, err := tryHTTP(httpClient, http.MethodGet, base+"/api/v1/node", "", nil)
	if err != nil {
		return st, err
	}
	if r.Code != http.StatusOK {
		return st, fmt.Errorf("GET %s/api/v1/node: %d %s", base, r.Code, r.Body)
	}
	return st, json.Unmarshal(r.Body, &st)
}

// dlAcked is a record whose receipt reached a client.
type dlAcked struct {
	rc    receipt
	via   string // the node it was put through
	data  string
	wait  bool // put with wait=replicas
	first []byte
}

// dlSorted returns the nodes' IDs in ring order.
func dlSorted(nodes []*nodeProc) []string {
	ids := make([]string, len(nodes))
	for i, p := range nodes {
		ids[i] = p.ID
	}
	slices.Sort(ids)
	return ids
}

// dlHolders is the oracle: successor(key) among the sorted live IDs and its
// k-1 successors.
func dlHolders(sorted []string, key string, k int) []string {
	key = strings.ToLower(key)
	i := sort.SearchStrings(sorted, key)
	if i == len(sorted) {
		i = 0
	}
	out := make([]string, 0, k)
	for j := 0; j < k && j < len(sorted); j++ {
		out = append(out, sorted[(i+j)%len(sorted)])
	}
	return out
}

// dlStartRing starts n nodes joined through the first, concurrently.
func dlStartRing(t *testing.T, n int) []*nodeProc {
	t.Helper()
	first := startNode(t, filepath.Join(t.TempDir(), "n0"), "local", "--replicas", fmt.Sprint(dlK))
	nodes := []*nodeProc{first}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := startNode(t, filepath.Join(t.TempDir(), fmt.Sprint("n", i)), "local", "--replicas", fmt.Sprint(dlK), "--join", first.Addr)
			mu.Lock()
			nodes = append(nodes, p)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return nodes
}

// dlRingErr says why the live nodes do not form the ideal ring, walked the
// same from every node, or "".
func dlRingErr(t *testing.T, nodes []*nodeProc) string {
	want := dlSorted(nodes)
	for _, p := range nodes {
		if _, err := dlState(p.URL); err != nil {
			return err.Error()
		}
	}
	if why := ringIdealErr(t, nodes); why != "" {
		return why
	}
	for _, p := range nodes {
		var ring struct {
			Nodes []peerJSON `json:"nodes"`
			Error string     `json:"error"`
		}
		r, err := tryHTTP(httpClient, http.MethodGet, p.URL+"/api/v1/ring", "", nil)
		if err != nil || r.Code != http.StatusOK || json.Unmarshal(r.Body, &ring) != nil {
			return fmt.Sprintf("%s /api/v1/ring: %v %d", p.URL, err, r.Code)
		}
		if ring.Error != "" || len(ring.Nodes) != len(nodes) {
			return fmt.Sprintf("%s /api/v1/ring lists %d nodes (error %q), want %d", p.ID[:8], len(ring.Nodes), ring.Error, len(nodes))
		}
		got := make([]string, len(ring.Nodes))
		for i, n := range ring.Nodes {
			got[i] = n.ID
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Sprintf("%s /api/v1/ring lists other nodes: %v", p.ID[:8], got)
		}
	}
	return ""
}

func dlWaitRing(t *testing.T, nodes []*nodeProc, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var why string
	if !waitFor(timeout, 100*time.Millisecond, func() bool { why = dlRingErr(t, nodes); return why == "" }) {
		t.Fatalf("ring of %d nodes not formed within %v: %s", len(nodes), timeout, why)
	}
	return time.Since(start)
}

// dlWaitReplicated waits until no node has records waiting for a replica.
func dlWaitReplicated(t *testing.T, nodes []*nodeProc, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var why string
	ok := waitFor(timeout, 100*time.Millisecond, func() bool {
		for _, p := range nodes {
			st, err := dlState(p.URL)
			if err != nil {
				why = err.Error()
				return false
			}
			if st.Stats.Dist.ReplPending > 0 {
				why = fmt.Sprintf("%s has replPending %d", p.ID[:8], st.Stats.Dist.ReplPending)
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("replication not done within %v: %s", timeout, why)
	}
	return time.Since(start)
}

// dlWaitSyncRounds waits until every node has run at least rounds more
// anti-entropy rounds than now.
func dlWaitSyncRounds(t *testing.T, nodes []*nodeProc, rounds uint64, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	base := map[string]uint64{}
	for _, p := range nodes {
		st, err := dlState(p.URL)
		if err != nil {
			t.Fatal(err)
		}
		base[p.ID] = st.Stats.Dist.SyncRounds
	}
	var why string
	ok := waitFor(timeout, 100*time.Millisecond, func() bool {
		for _, p := range nodes {
			st, err := dlState(p.URL)
			if err != nil {
				why = err.Error()
				return false
			}
			if st.Stats.Dist.SyncRounds < base[p.ID]+rounds {
				why = fmt.Sprintf("%s has syncRounds %d, from %d", p.ID[:8], st.Stats.Dist.SyncRounds, base[p.ID])
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("%d sync rounds did not pass within %v: %s", rounds, timeout, why)
	}
	return time.Since(start)
}

// dlParallel runs f(i) for i in 0..n-1 on workers goroutines.
func dlParallel(n, workers int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// dlCheckRecord checks one served record against its receipt: it parses,
// its signature checks, it carries the receipt's txID, key and block, and it
// is signed by the receipt's owner.
func dlCheckRecord(a *dlAcked, raw []byte) error {
	if !bytes.Contains(raw, []byte(a.rc.TxID)) {
		return fmt.Errorf("record does not contain its txID %s: %s", a.rc.TxID, trunc(raw))
	}
	r, err := ledger.ParseRecord(raw)
	if err != nil {
		return err
	}
	if err := r.CheckSelf(raw); err != nil {
		return fmt.Errorf("record %s does not check: %v", a.rc.TxID, err)
	}
	if r.TxID.String() != a.rc.TxID || r.Key.String() != a.rc.Key || r.Block.No != a.rc.Block.No {
		return fmt.Errorf("record %s/%s block %d, receipt %s/%s block %d", r.TxID, r.Key, r.Block.No, a.rc.TxID, a.rc.Key, a.rc.Block.No)
	}
	if signer := hex.EncodeToString(func() []byte { s := sha1.Sum(r.Signer); return s[:] }()); signer != a.rc.Owner.ID {
		return fmt.Errorf("record %s signed by %s, receipt owner %s", a.rc.TxID, signer, a.rc.Owner.ID)
	}
	if !bytes.Contains(raw, []byte(a.data)) {
		return fmt.Errorf("record %s does not hold the data sent %s: %s", a.rc.TxID, a.data, trunc(raw))
	}
	return nil
}

// dlReadAll GETs each record (routed read) from the node via(i) and checks it
// against the first bytes read, which it stores when there are none yet.
// It returns the failures, described.
func dlReadAll(acks []*dlAcked, idx []int, via func(i int) *nodeProc) []string {
	var mu sync.Mutex
	var fails []string
	dlParallel(len(idx), 8, func(j int) {
		a := acks[idx[j]]
		p := via(j)
		fail := func(format string, args ...any) {
			mu.Lock()
			fails = append(fails, fmt.Sprintf("%s from %s: ", a.rc.TxID[:12], p.ID[:8])+fmt.Sprintf(format, args...))
			mu.Unlock()
		}
		r, err := tryHTTP(httpClient, http.MethodGet, p.URL+"/api/v1/records/"+a.rc.TxID, "", nil)
		if err != nil {
			fail("%v", err)
			return
		}
		if r.Code != http.StatusOK {
			fail("%d %s", r.Code, trunc(r.Body))
			return
		}
		mu.Lock()
		first := a.first
		if first == nil {
			a.first = r.Body
		}
		mu.Unlock()
		if first == nil {
			if err := dlCheckRecord(a, r.Body); err != nil {
				fail("%v", err)
			}
		} else if !bytes.Equal(first, r.Body) {
			fail("bytes differ from the first read:\n first %s\n now   %s", trunc(first), trunc(r.Body))
		}
	})
	return fails
}

// dlQuery asks node p (?local=1) whether it holds record a; must says p is
// one of a's oracle holders.
type dlQuery struct {
	a    *dlAcked
	p    *nodeProc
	must bool
}

// dlQueries lists, for each record, its oracle holders among nodes (and,
// with extras, every other node too).
func dlQueries(acks []*dlAcked, nodes []*nodeProc, extras bool) []dlQuery {
	sorted := dlSorted(nodes)
	var qs []dlQuery
	for _, a := range acks {
		hs := dlHolders(sorted, a.rc.Key, dlK)
		for _, p := range nodes {
			must := slices.Contains(hs, p.ID)
			// A record's signer keeps it whatever its range (its blocks'
			// seals prove it): not an extra copy.
			if must || (extras && p.ID != a.rc.Owner.ID) {
				qs = append(qs, dlQuery{a, p, must})
			}
		}
	}
	return qs
}

// dlAsk runs the queries. It returns the queries of oracle holders that do
// not hold their record, the number of copies on other nodes, and errors.
func dlAsk(qs []dlQuery) (missing []dlQuery, extra int, errs []string) {
	var mu sync.Mutex
	dlParallel(len(qs), 8, func(i int) {
		x := qs[i]
		r, err := tryHTTP(httpClient, http.MethodGet, x.p.URL+"/api/v1/records/"+x.a.rc.TxID+"?local=1", "", nil)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil || (r.Code != http.StatusOK && r.Code != http.StatusNotFound):
			errs = append(errs, fmt.Sprintf("%s ?local=1 on %s: %v %d %s", x.a.rc.TxID[:12], x.p.ID[:8], err, r.Code, trunc(r.Body)))
		case r.Code == http.StatusOK && !x.must:
			extra++
		case r.Code == http.StatusOK && x.a.first != nil && !bytes.Equal(r.Body, x.a.first):
			errs = append(errs, fmt.Sprintf("%s on %s: local bytes differ from the routed read", x.a.rc.TxID[:12], x.p.ID[:8]))
		case r.Code == http.StatusNotFound && x.must:
			missing = append(missing, x)
		}
	})
	return missing, extra, errs
}

func dlDescribe(qs []dlQuery, n int) string {
	var out []string
	for _, x := range qs {
		out = append(out, fmt.Sprintf("%s (key %s, owner %s) not on %s", x.a.rc.TxID[:12], x.a.rc.Key[:8], x.a.rc.Owner.ID[:8], x.p.ID[:8]))
	}
	sort.Strings(out)
	return strings.Join(dlFirst(out, n), "; ")
}

// dlPlacement asks nodes (?local=1) whether they hold each record. It returns
// the records missing from one of their oracle holders among nodes, and the
// number of copies held by other nodes (only when extras is set: it asks
// every node about every record).
func dlPlacement(acks []*dlAcked, nodes []*nodeProc, extras bool) (missing []dlQuery, extra int, errs []string) {
	return dlAsk(dlQueries(acks, nodes, extras))
}

// dlWaitPlacement polls until every record is on its oracle holders among
// nodes, and returns how long that took (from start). The first poll asks
// about every record; later ones only about the copies still missing (a
// holder's copy is never dropped); a last full poll confirms.
func dlWaitPlacement(t *testing.T, what string, acks []*dlAcked, nodes []*nodeProc, start time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	pending := dlQueries(acks, nodes, false)
	var errs []string
	polls := 0
	var pollAt time.Time
	var progress []string // time of each poll: copies still missing
	ok := waitFor(timeout, 100*time.Millisecond, func() bool {
		polls++
		pollAt = time.Now()
		pending, _, errs = dlAsk(pending)
		progress = append(progress, fmt.Sprintf("%v:%d", pollAt.Sub(start).Round(100*time.Millisecond), len(pending)))
		if polls == 1 && len(pending)+len(errs) > 0 {
			t.Logf("%s: first placement poll, %v after the change: %d copies missing, %d errors; first: %s %s", what,
				pollAt.Sub(start).Round(time.Millisecond), len(pending), len(errs), dlDescribe(pending, 6), strings.Join(dlFirst(errs, 3), "; "))
		}
		return len(pending) == 0 && len(errs) == 0
	})
	// The poll that saw the last copies began at pollAt: placement held then.
	took := pollAt.Sub(start)
	if !ok {
		t.Errorf("%s: placement not restored %v after the change (%d polls): %d copies missing, %d errors; first: %s %s",
			what, time.Since(start).Round(time.Millisecond), polls, len(pending), len(errs), dlDescribe(pending, 8), strings.Join(dlFirst(errs, 4), "; "))
		dlLogStats(t, nodes)
		return took
	}
	t.Logf("%s: placement whole at poll %d, which began %v after the change; missing copies per poll: %s", what, polls, took.Round(time.Millisecond), strings.Join(progress, " "))
	dlCheckPlacement(t, what+" (full check)", acks, nodes)
	return took
}

// dlCheckPlacement wants every record on its oracle holders among nodes now.
func dlCheckPlacement(t *testing.T, what string, acks []*dlAcked, nodes []*nodeProc) {
	t.Helper()
	missing, _, errs := dlPlacement(acks, nodes, false)
	if len(missing)+len(errs) > 0 {
		t.Errorf("%s: %d copies missing, %d errors; first: %s %s", what, len(missing), len(errs),
			dlDescribe(missing, 8), strings.Join(dlFirst(errs, 4), "; "))
	}
}

func dlFirst(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// dlLogStats logs every node's distributed-ledger counters.
func dlLogStats(t *testing.T, nodes []*nodeProc) {
	t.Helper()
	for _, p := range nodes {
		r, err := tryHTTP(httpClient, http.MethodGet, p.URL+"/api/v1/node", "", nil)
		if err != nil {
			t.Logf("%s: %v", p.ID[:8], err)
			continue
		}
		var st struct {
			Pred  *peerJSON  `json:"predecessor"`
			Succs []peerJSON `json:"successors"`
			Stats struct {
				Records uint64          `json:"records"`
				Dist    json.RawMessage `json:"dist"`
			} `json:"stats"`
		}
		json.Unmarshal(r.Body, &st)
		t.Logf("node %s records %d dist %s", p.ID[:8], st.Stats.Records, st.Stats.Dist)
	}
}

// dlVerifyAll wants GET /api/v1/verify valid on every node.
func dlVerifyAll(t *testing.T, nodes []*nodeProc) {
	t.Helper()
	for _, p := range nodes {
		v := getVerify(t, p.URL)
		if !v.Valid {
			t.Errorf("verify on %s: invalid at %s: expected %s, actual %s", p.ID[:8], v.Where, v.Expected, v.Actual)
		}
	}
}

// dlCheckReceipt checks a receipt's owner and replicas against the oracle.
func dlCheckReceipt(sorted []string, rc receipt) error {
	hs := dlHolders(sorted, rc.Key, dlK)
	if rc.Owner.ID != hs[0] {
		return fmt.Errorf("txID %s key %s: owner %s, oracle %s", rc.TxID[:12], rc.Key, rc.Owner.ID[:8], hs[0][:8])
	}
	var reps []string
	for _, raw := range rc.Replicas {
		var p peerJSON
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("txID %s: replica %s: %v", rc.TxID[:12], raw, err)
		}
		reps = append(reps, p.ID)
	}
	if !slices.Equal(reps, hs[1:]) {
		return fmt.Errorf("txID %s key %s: replicas %v, oracle %v", rc.TxID[:12], rc.Key[:8], reps, hs[1:])
	}
	return nil
}

// dlPut posts readings through p: one (body object) or a batch (array). It
// returns the receipts, or the HTTP status and body (code 0: transport error).
func dlPut(p *nodeProc, bodies []string, batch, waitReplicas bool) ([]receipt, int, string) {
	url := p.URL + "/api/v1/records"
	var body string
	if batch {
		url += "?batch=1"
		if waitReplicas {
			url += "&wait=replicas"
		}
		body = "[" + strings.Join(bodies, ",") + "]"
	} else {
		body = bodies[0]
		if waitReplicas {
			body = strings.TrimSuffix(body, "}") + `,"wait":"replicas"}`
		}
	}
	r, err := tryHTTP(httpClient, http.MethodPost, url, "application/json", []byte(body))
	if err != nil {
		return nil, 0, err.Error()
	}
	if r.Code != http.StatusCreated {
		return nil, r.Code, string(r.Body)
	}
	var rcs []receipt
	if batch {
		err = json.Unmarshal(r.Body, &rcs)
	} else {
		var rc receipt
		err = json.Unmarshal(r.Body, &rc)
		rcs = []receipt{rc}
	}
	if err != nil || len(rcs) != len(bodies) {
		return nil, r.Code, fmt.Sprintf("receipts %d for %d readings (%v): %s", len(rcs), len(bodies), err, trunc(r.Body))
	}
	return rcs, r.Code, ""
}

// dlReading is reading i of client c: thing and canonical data.
func dlReading(tag string, c, i int) (body, data string) {
	data = fmt.Sprintf(`{"c":%d,"i":%d,"s":"%s %d/%d"}`, c, i, tag, c, i)
	return fmt.Sprintf(`{"thing":"%s-%d","data":%s}`, tag, c, data), data
}

// TestDistributedLedger: a ring of 6 processes with k = 3 places every
// reading on successor(key) and its 2 successors, serves it from every node,
// repairs placement after 2 adjacent nodes are SIGKILLed at once, and again
// after 2 new nodes join.
func TestDistributedLedger(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 8 processes")
	}
	const (
		nNodes  = 6
		total   = 2000
		clients = 4
	)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 42))
	t.Logf("seed %d", seed)
	testStart := time.Now()

	// 1. The ring.
	nodes := dlStartRing(t, nNodes)
	took := dlWaitRing(t, nodes, 60*time.Second)
	t.Logf("ring of %d formed %v after the last start", nNodes, took.Round(time.Millisecond))
	sorted := dlSorted(nodes)
	for i, id := range sorted {
		t.Logf("ring[%d] = %s", i, id)
	}

	// 2. Puts through random nodes: batches of 20-50, single puts, some waiting for replicas.
	type job struct {
		c, from, n  int
		batch, wait bool
	}
	var jobs []job
	for sent, j := 0, 0; sent < total; j++ {
		jb := job{c: j % clients, from: sent}
		switch x := rng.IntN(10); {
		case x < 6:
			jb.batch, jb.n = true, 20+rng.IntN(31)
		case x < 8:
			jb.batch, jb.n, jb.wait = true, 20+rng.IntN(31), true
		default:
			jb.n, jb.wait = 1, x == 9
		}
		jb.n = min(jb.n, total-sent)
		sent += jb.n
		jobs = append(jobs, jb)
	}
	var (
		mu    sync.Mutex
		acks  []*dlAcked
		putWG sync.WaitGroup
	)
	ch := make(chan job)
	putStart := time.Now()
	var nBatch, nSingle, nWait atomic.Int64
	for c := 0; c < clients; c++ {
		putWG.Add(1)
		go func() {
			defer putWG.Done()
			for jb := range ch {
				mu.Lock()
				p := nodes[rng.IntN(len(nodes))]
				mu.Unlock()
				bodies := make([]string, jb.n)
				datas := make([]string, jb.n)
				for i := range bodies {
					bodies[i], datas[i] = dlReading("dl", jb.c, jb.from+i)
				}
				rcs, code, why := dlPut(p, bodies, jb.batch || jb.n > 1, jb.wait)
				if rcs == nil {
					t.Errorf("put of %d readings through %s: %d %s", jb.n, p.ID[:8], code, why)
					continue
				}
				if jb.batch {
					nBatch.Add(1)
				} else {
					nSingle.Add(1)
				}
				if jb.wait {
					nWait.Add(int64(jb.n))
				}
				mu.Lock()
				for i, rc := range rcs {
					acks = append(acks, &dlAcked{rc: rc, via: p.ID, data: datas[i], wait: jb.wait})
				}
				mu.Unlock()
			}
		}()
	}
	for _, jb := range jobs {
		ch <- jb
	}
	close(ch)
	putWG.Wait()
	putTook := time.Since(putStart)
	t.Logf("put %d readings (%d batches, %d single puts, %d with wait=replicas) through random nodes with %d clients in %v: %.0f readings/s",
		len(acks), nBatch.Load(), nSingle.Load(), nWait.Load(), clients, putTook.Round(time.Millisecond), float64(len(acks))/putTook.Seconds())
	if len(acks) != total {
		t.Fatalf("%d of %d readings acknowledged", len(acks), total)
	}
	seen := map[string]bool{}
	owners := map[string]int{}
	bad := 0
	for _, a := range acks {
		if seen[a.rc.TxID] {
			t.Errorf("txID %s acknowledged twice", a.rc.TxID)
		}
		seen[a.rc.TxID] = true
		owners[a.rc.Owner.ID[:8]]++
		if err := dlCheckReceipt(sorted, a.rc); err != nil {
			if bad++; bad <= 10 {
				t.Errorf("receipt: %v", err)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d receipts name the wrong owner or replicas", bad, len(acks))
	}
	t.Logf("readings per owner: %v", owners)

	// 3. Replication done; every record from every node; placement.
	took = dlWaitReplicated(t, nodes, 30*time.Second)
	t.Logf("replPending 0 on every node %v after the last put", took.Round(time.Millisecond))
	all := make([]int, len(acks))
	for i := range all {
		all[i] = i
	}
	readStart := time.Now()
	perm := rng.Perm(len(nodes))
	full := map[int]bool{perm[0]: true, perm[1]: true}
	reads := 0
	for ni, p := range nodes {
		idx := all
		if !full[ni] {
			idx = rng.Perm(len(acks))[:300]
		}
		reads += len(idx)
		if fails := dlReadAll(acks, idx, func(int) *nodeProc { return p }); len(fails) > 0 {
			t.Errorf("reads from %s: %d of %d failed; first: %s", p.ID[:8], len(fails), len(idx), strings.Join(dlFirst(fails, 5), "\n"))
		}
	}
	t.Logf("%d routed reads from all %d nodes in %v", reads, len(nodes), time.Since(readStart).Round(time.Millisecond))
	placeStart := time.Now()
	missing, extra, errs := dlPlacement(acks, nodes, true)
	if len(missing) > 0 || len(errs) > 0 {
		t.Errorf("placement after the puts: %d copies missing, %d errors; first: %s %s", len(missing), len(errs),
			dlDescribe(missing, 8), strings.Join(dlFirst(errs, 4), "; "))
	}
	if extra > 0 {
		// Copies beyond the k holders (an owner that thought a successor
		// dead for a moment replicated to the next one) are surplus: the
		// nodes drop them once the ring has been quiet for the grace period.
		t.Logf("placement after the puts: %d copies on nodes that are neither owner nor one of its %d successors; waiting for their drop", extra, dlK-1)
		dropStart := time.Now()
		if !waitFor(90*time.Second, 500*time.Millisecond, func() bool {
			_, extra, _ = dlPlacement(acks, nodes, true)
			return extra == 0
		}) {
			t.Errorf("placement after the puts: %d copies still on nodes that are neither owner nor one of its %d successors after 90 s", extra, dlK-1)
		} else {
			t.Logf("surplus copies dropped in %v", time.Since(dropStart).Round(time.Millisecond))
		}
	}
	t.Logf("placement checked on all %d nodes (%d local reads) in %v", len(nodes), len(acks)*len(nodes), time.Since(placeStart).Round(time.Millisecond))
	if t.Failed() {
		dlLogStats(t, nodes)
		t.FailNow()
	}
	dlLogStats(t, nodes)
	dlLogRefusals(t, nodes)

	// 4. SIGKILL two nodes adjacent in ring order.
	ki := rng.IntN(len(sorted))
	dead := map[string]bool{sorted[ki]: true, sorted[(ki+1)%len(sorted)]: true}
	var live []*nodeProc
	var killed []*nodeProc
	for _, p := range nodes {
		if dead[p.ID] {
			killed = append(killed, p)
		} else {
			live = append(live, p)
		}
	}
	killAt := time.Now()
	var kwg sync.WaitGroup
	for _, p := range killed {
		kwg.Add(1)
		go func() { defer kwg.Done(); p.Kill() }()
	}
	kwg.Wait()
	t.Logf("SIGKILLed ring[%d] %s and ring[%d] %s", ki, sorted[ki][:8], (ki+1)%len(sorted), sorted[(ki+1)%len(sorted)][:8])
	took = dlWaitRing(t, live, 60*time.Second)
	t.Logf("ring of %d formed again %v after the kill", len(live), time.Since(killAt).Round(time.Millisecond))
	// Placement is polled from the moment the ring is whole again, to time
	// the repair; it is checked once more after 3 sync rounds.
	repaired := dlWaitPlacement(t, "after the kill", acks, live, killAt, 60*time.Second)
	t.Logf("placement over the %d live nodes restored %v after the kill", len(live), repaired.Round(time.Millisecond))
	dlWaitSyncRounds(t, live, 3, 30*time.Second)
	t.Logf("3 more sync rounds on every live node %v after the kill", time.Since(killAt).Round(time.Millisecond))
	dlCheckPlacement(t, "after the kill and 3 sync rounds", acks, live)
	rej0, readAt := dlRejected(t, live), time.Now()
	if fails := dlReadAll(acks, all, func(j int) *nodeProc { return live[j%len(live)] }); len(fails) > 0 {
		t.Errorf("reads after the kill: %d of %d failed; first: %s", len(fails), len(acks), strings.Join(dlFirst(fails, 5), "\n"))
	}
	t.Logf("%d routed reads from the %d live nodes in %v (%v after the kill); the live nodes refused %d peer messages meanwhile",
		len(acks), len(live), time.Since(readAt).Round(time.Millisecond), time.Since(killAt).Round(time.Millisecond), dlRejected(t, live)-rej0)
	dlVerifyAll(t, live)
	res := runCLI(t, nil, "verify", "--node", live[0].URL)
	parseVerifyOutput(t, res)
	if t.Failed() {
		dlLogStats(t, live)
		t.FailNow()
	}

	// 5. Two new nodes join.
	joinAt := time.Now()
	var joined []*nodeProc
	for i := 0; i < 2; i++ {
		joined = append(joined, startNode(t, filepath.Join(t.TempDir(), fmt.Sprint("new", i)), "local",
			"--replicas", fmt.Sprint(dlK), "--join", live[rng.IntN(len(live))].Addr))
	}
	for _, p := range joined {
		t.Logf("joined %s", p.ID[:8])
	}
	live = append(live, joined...)
	took = dlWaitRing(t, live, 60*time.Second)
	t.Logf("ring of %d formed %v after the joins", len(live), time.Since(joinAt).Round(time.Millisecond))
	repaired = dlWaitPlacement(t, "after the join", acks, live, joinAt, 60*time.Second)
	t.Logf("placement over the %d live nodes restored %v after the joins", len(live), repaired.Round(time.Millisecond))
	dlWaitSyncRounds(t, live, 3, 30*time.Second)
	t.Logf("3 more sync rounds on every live node %v after the joins", time.Since(joinAt).Round(time.Millisecond))
	dlCheckPlacement(t, "after the joins and 3 sync rounds", acks, live)
	rej0, readAt = dlRejected(t, live), time.Now()
	for _, p := range joined {
		idx := rng.Perm(len(acks))[:300]
		if fails := dlReadAll(acks, idx, func(int) *nodeProc { return p }); len(fails) > 0 {
			t.Errorf("reads from the new node %s: %d of %d failed; first: %s", p.ID[:8], len(fails), len(idx), strings.Join(dlFirst(fails, 5), "\n"))
		}
	}
	t.Logf("600 routed reads from the 2 new nodes in %v; the nodes refused %d peer messages meanwhile",
		time.Since(readAt).Round(time.Millisecond), dlRejected(t, live)-rej0)
	dlVerifyAll(t, live)
	_, extra, _ = dlPlacement(acks, live, true)
	t.Logf("after the joins, %d stale copies remain on nodes that are no longer owner or replica (not an error)", extra)
	dlLogStats(t, live)
	dlLogRefusals(t, append(live, killed...))
	t.Logf("total %v", time.Since(testStart).Round(time.Millisecond))
}

// TestGracefulLeaveDuringPuts: a ring of 4 with k = 3; writers put readings
// through 3 nodes while the 4th leaves gracefully (SIGTERM). Afterwards every
// acknowledged reading is readable from the 3 remaining nodes and held by all
// of them (k = 3 on 3 nodes).
func TestGracefulLeaveDuringPuts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 4 processes")
	}
	const (
		maxReadings = 1500
		maxFor      = 30 * time.Second
		writers     = 6
		leaveAfter  = 300 // acknowledged readings before the SIGTERM
	)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	var rngMu sync.Mutex
	rnd := func(n int) int { rngMu.Lock(); defer rngMu.Unlock(); return rng.IntN(n) }

	nodes := dlStartRing(t, 4)
	dlWaitRing(t, nodes, 60*time.Second)
	sorted4 := dlSorted(nodes)
	li := rnd(len(nodes))
	leaver := nodes[li]
	var stay []*nodeProc
	for i, p := range nodes {
		if i != li {
			stay = append(stay, p)
		}
	}
	sorted3 := dlSorted(stay)
	leaverFrom := sorted4[(slices.Index(sorted4, leaver.ID)+len(sorted4)-1)%len(sorted4)]
	t.Logf("ring %v; %s will leave", sorted4, leaver.ID[:8])

	var (
		mu          sync.Mutex
		acks        []*dlAcked
		reserved    atomic.Int64
		nAcked      atomic.Int64
		failed      atomic.Int64 // readings whose put failed
		failures    = map[string]int{}
		wg          sync.WaitGroup
		leaving     atomic.Bool
		beforeFails atomic.Int64
	)
	deadline := time.Now().Add(maxFor)
	start := time.Now()
	for c := 0; c < writers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); {
				n := 1
				batch := rnd(2) == 0
				if batch {
					n = 5 + rnd(16)
				}
				if got := reserved.Add(int64(n)); got > maxReadings {
					n -= int(got - maxReadings)
					if n <= 0 {
						return
					}
				}
				wait := rnd(4) == 0
				p := stay[rnd(len(stay))]
				bodies := make([]string, n)
				datas := make([]string, n)
				// Two thirds of the requests aim at the leaving node's range
				// (explicit keys), to race the handoff.
				aim := rnd(3) != 0
				for j := range bodies {
					bodies[j], datas[j] = dlReading("leave", c, i+j)
					if aim {
						rngMu.Lock()
						key := dlKeyIn(rng, leaverFrom, leaver.ID)
						rngMu.Unlock()
						bodies[j] = strings.TrimSuffix(bodies[j], "}") + fmt.Sprintf(`,"key":%q}`, key)
					}
				}
				i += n
				rcs, code, why := dlPut(p, bodies, batch, wait)
				if rcs == nil {
					failed.Add(int64(n))
					if !leaving.Load() {
						beforeFails.Add(int64(n))
					}
					mu.Lock()
					failures[fmt.Sprintf("%d %s", code, trunc([]byte(why)))] += n
					mu.Unlock()
					continue
				}
				mu.Lock()
				for j, rc := range rcs {
					acks = append(acks, &dlAcked{rc: rc, via: p.ID, data: datas[j], wait: wait})
				}
				mu.Unlock()
				nAcked.Add(int64(n))
			}
		}()
	}
	// The leave, once some readings are in.
	if !waitFor(maxFor, 20*time.Millisecond, func() bool { return nAcked.Load() >= leaveAfter }) {
		t.Errorf("only %d readings acknowledged in %v before the leave", nAcked.Load(), maxFor)
	}
	leaving.Store(true)
	ackedBefore := nAcked.Load()
	leaveAt := time.Now()
	code := leaver.Stop()
	leaveTook := time.Since(leaveAt)
	t.Logf("SIGTERM to %s after %d acknowledged readings (%v): exit %d after %v", leaver.ID[:8], ackedBefore,
		leaveAt.Sub(start).Round(time.Millisecond), code, leaveTook.Round(time.Millisecond))
	if code != 0 {
		t.Errorf("leaving node exited %d", code)
	}
	if s := leaver.Stderr(); strings.Contains(s, "not all handed on") {
		t.Errorf("the leaving node says it did not hand everything on:\n%s", tail(dlGrepLines(s, "leave"), 10))
	}
	ackedAtExit := nAcked.Load()
	wg.Wait()
	writeTook := time.Since(start)
	t.Logf("writers: %d readings acknowledged, %d failed (%d before the SIGTERM) in %v; %d acknowledged during the leave",
		len(acks), failed.Load(), beforeFails.Load(), writeTook.Round(time.Millisecond), ackedAtExit-ackedBefore)
	for why, n := range failures {
		t.Logf("  %d readings failed: %s", n, why)
	}
	if beforeFails.Load() > 0 {
		t.Errorf("%d readings failed before the leave began", beforeFails.Load())
	}
	byLeaver := 0
	for _, a := range acks {
		h4, h3 := dlHolders(sorted4, a.rc.Key, 1)[0], dlHolders(sorted3, a.rc.Key, 1)[0]
		if a.rc.Owner.ID != h4 && a.rc.Owner.ID != h3 {
			t.Errorf("txID %s key %s: owner %s, oracle %s (4 nodes) or %s (3 nodes)", a.rc.TxID[:12], a.rc.Key[:8], a.rc.Owner.ID[:8], h4[:8], h3[:8])
		}
		if a.rc.Owner.ID == leaver.ID {
			byLeaver++
		}
	}
	t.Logf("%d acknowledged readings were signed by the leaving node", byLeaver)

	took := dlWaitRing(t, stay, 30*time.Second)
	t.Logf("ring of 3 %v after the writers finished", took.Round(time.Millisecond))
	dlWaitReplicated(t, stay, 30*time.Second)
	all := make([]int, len(acks))
	for i := range all {
		all[i] = i
	}
	for _, p := range stay {
		if fails := dlReadAll(acks, all, func(int) *nodeProc { return p }); len(fails) > 0 {
			t.Errorf("reads from %s: %d of %d failed; first: %s", p.ID[:8], len(fails), len(acks), strings.Join(dlFirst(fails, 5), "\n"))
		}
	}
	placed := dlWaitPlacement(t, "after the leave", acks, stay, time.Now(), 30*time.Second)
	t.Logf("every acknowledged reading on all 3 remaining nodes %v after the reads (%v after the leave)", placed.Round(time.Millisecond),
		time.Since(leaveAt).Round(time.Millisecond))
	dlVerifyAll(t, stay)
	if t.Failed() {
		dlLogStats(t, stay)
	}
}

// dlGrepLines keeps the lines of s that contain sub.
func dlGrepLines(s, sub string) string {
	var out []string
	for _, l := range scanLines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// dlLogRefusals logs, per node, how many peer messages it refused and the
// first few reasons (from its stderr).
func dlLogRefusals(t *testing.T, nodes []*nodeProc) {
	t.Helper()
	for _, p := range nodes {
		lines := scanLines(dlGrepLines(p.Stderr(), "refused a peer"))
		if len(lines) == 0 {
			continue
		}
		t.Logf("node %s refused %d peer messages; first:\n%s", p.ID[:8], len(lines), strings.Join(dlFirst(lines, 3), "\n"))
	}
}

// dlRejected sums the nodes' counts of refused peer messages.
func dlRejected(t *testing.T, nodes []*nodeProc) uint64 {
	t.Helper()
	var sum uint64
	for _, p := range nodes {
		st, err := dlState(p.URL)
		if err != nil {
			t.Fatal(err)
		}
		sum += st.Stats.Dist.Rejected
	}
	return sum
}

// dlKeyIn returns a random key (40 hex) in the ring range (from, to].
func dlKeyIn(rng *rand.Rand, from, to string) string {
	ring := new(big.Int).Lsh(big.NewInt(1), 160)
	a, _ := new(big.Int).SetString(from, 16)
	b, _ := new(big.Int).SetString(to, 16)
	size := new(big.Int).Sub(b, a)
	size.Mod(size, ring)
	// a + 1 + uniform[0, size)
	off := new(big.Int).Rand(mrand.New(mrand.NewSource(int64(rng.Uint64()))), size)
	k := off.Add(off, a).Add(off, big.NewInt(1)).Mod(off, ring)
	return fmt.Sprintf("%040x", k)
}
