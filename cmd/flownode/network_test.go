package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flownode/flownode/network"
	"github.com/flownode/flownode/node"
)

// The permissioned ring through the CLI: network init, admit, run --join and
// revoke, as an operator uses them (README: "A ring of your own").

var (
	initLine  = regexp.MustCompile(`(?m)^network (\S+) \(authority ([0-9a-f]{16}), (\S+) mining rules\)$`)
	admitLine = regexp.MustCompile(`^([0-9a-f]{40}) admitted to network (\S+) \(authority ([0-9a-f]{16})\) until (\S+)\n$`)
)

// initNetwork runs flownode network init in a fresh directory and returns the
// directory and the authority's fingerprint.
func initNetwork(t *testing.T, name string) (dir, fingerprint string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "authority")
	r := runCLI(t, nil, "network", "init", "--dir", dir, "--network", name, "--profile", "local")
	m := initLine.FindStringSubmatch(r.Stdout)
	if r.Code != 0 || m == nil || m[1] != name || m[3] != "local" || !strings.Contains(r.Stdout, "offline") {
		t.Fatalf("network init: %v", r)
	}
	if fi, err := os.Stat(filepath.Join(dir, network.AuthorityKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("authority.key: %v, mode %v", err, fi)
	}
	return dir, m[2]
}

// admitDir runs flownode admit and returns the node ID it printed.
func admitDir(t *testing.T, authDir, dataDir string) string {
	t.Helper()
	// The authority directory comes from the environment, as every flag can.
	r := runCLI(t, []string{"FLOWNODE_NETWORK=" + authDir}, "admit", "--data", dataDir)
	m := admitLine.FindStringSubmatch(r.Stdout)
	if r.Code != 0 || m == nil {
		t.Fatalf("admit: %v", r)
	}
	exp, err := time.Parse(time.RFC3339, m[4])
	if err != nil || exp.Sub(time.Now()) < 8759*time.Hour || exp.Sub(time.Now()) > 8761*time.Hour {
		t.Errorf("admit: expiry %s is not about 8760h from now (%v)", m[4], err)
	}
	return m[1]
}

// ringWalk is GET /api/v1/ring.
type ringWalk struct {
	Nodes []peerJSON `json:"nodes"`
	Error string     `json:"error"`
}

// walkIDs walks the ring from base and returns the IDs met, sorted, or why the
// walk failed.
func walkIDs(base string) ([]string, error) {
	r, err := tryHTTP(httpClient, http.MethodGet, base+"/api/v1/ring", "", nil)
	if err != nil {
		return nil, err
	}
	var w ringWalk
	if err := json.Unmarshal(r.Body, &w); err != nil {
		return nil, err
	}
	if w.Error != "" {
		return nil, fmt.Errorf("%s", w.Error)
	}
	var ids []string
	for _, p := range w.Nodes {
		ids = append(ids, p.ID)
	}
	slices.Sort(ids)
	return ids, nil
}

// ringIs reports whether the ring walked from every one of nodes is exactly nodes.
func ringIs(nodes []*nodeProc) (bool, string) {
	var want []string
	for _, p := range nodes {
		want = append(want, p.ID)
	}
	slices.Sort(want)
	for _, p := range nodes {
		got, err := walkIDs(p.URL)
		if err != nil {
			return false, fmt.Sprintf("walk from %s: %v", p.ID[:8], err)
		}
		if !slices.Equal(got, want) {
			return false, fmt.Sprintf("walk from %s: %d nodes %v, want %d", p.ID[:8], len(got), short(got), len(want))
		}
	}
	return true, ""
}

func short(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id[:8]
	}
	return out
}

func getNetwork(t *testing.T, base string) node.NetworkInfo {
	t.Helper()
	var n node.NetworkInfo
	getJSON(t, base+"/api/v1/network", &n)
	return n
}

// TestNetworkInitAdmitJoin: network init and admit make a ring of two that
// forms; admit refuses a data directory of another network; a node of another
// network, and one whose data directory holds only a node key, cannot join: no
// member lists it, it owns no range, and its stderr says why.
func TestNetworkInitAdmitJoin(t *testing.T) {
	authDir, fp := initNetwork(t, "plant-a")
	again := runCLI(t, nil, "network", "init", "--dir", authDir)
	if again.Code != 2 || !strings.Contains(again.Stderr, "refusing to replace") {
		t.Errorf("network init on an existing authority: %v", again)
	}
	base := t.TempDir()
	d1, d2 := filepath.Join(base, "n1"), filepath.Join(base, "n2")
	id1 := admitDir(t, authDir, d1)
	id2 := admitDir(t, authDir, d2)
	for _, f := range []string{network.AuthorityKeyFile} {
		if _, err := os.Stat(filepath.Join(d1, f)); err == nil {
			t.Errorf("admit put %s into the node's data dir", f)
		}
	}

	n1 := startNode(t, d1, "local")
	n2 := startNode(t, d2, "local", "--join", n1.Addr)
	if n1.ID != id1 || n2.ID != id2 {
		t.Fatalf("nodes run as %s, %s; admit printed %s, %s", n1.ID, n2.ID, id1, id2)
	}
	ring := []*nodeProc{n1, n2}
	var why string
	if !waitFor(30*time.Second, 100*time.Millisecond, func() (ok bool) { ok, why = ringIs(ring); return ok }) {
		t.Fatalf("two admitted nodes form no ring in 30 s: %s", why)
	}
	info := getNode(t, n2.URL)
	if info.Network != "plant-a" || info.Authority != fp || info.MembershipExpires.Before(time.Now().Add(8759*time.Hour)) {
		t.Errorf("/api/v1/node: network %q authority %q expires %v; want plant-a, %s, in a year", info.Network, info.Authority, info.MembershipExpires, fp)
	}
	netw := getNetwork(t, n1.URL)
	if netw.Name != "plant-a" || netw.Authority != fp || len(netw.Members) != 2 {
		t.Errorf("/api/v1/network: %+v", netw)
	}

	// admit refuses a data directory of another network.
	otherAuth, _ := initNetwork(t, "plant-a") // same name, another authority
	r := runCLI(t, nil, "admit", "--network", otherAuth, "--data", d1)
	if r.Code != 2 || !strings.Contains(r.Stderr, "belongs to network") {
		t.Errorf("admit of another network's data dir: want exit 2 and why, got %v", r)
	}
	oneLine(t, "admit of another network's data dir", r.Stderr)

	// A revocation the network's authority did not sign is refused (exit 1),
	// and so is one that is not a revocation at all; nothing changes.
	r = runCLI(t, nil, "revoke", "--network", otherAuth, "--node", n1.URL, id2)
	if r.Code != 1 || !strings.Contains(r.Stderr, "not signed by this network's authority") {
		t.Errorf("revoke signed by another authority: want exit 1 and why, got %v", r)
	}
	for _, c := range []struct {
		body string
		code int
		want string
	}{
		{`{"node":"` + id2 + `"}`, 400, "revocation refused"},
		{`{"bogus":1}`, 400, "unknown field"},
		{`[1,2]`, 400, "must be an object"},
		{`{"network":"` + strings.Repeat("x", 8<<10) + `"}`, 413, "larger than"},
	} {
		wantError(t, doHTTP(t, http.MethodPost, n1.URL+"/api/v1/network/revocations", "application/json", []byte(c.body)), c.code, c.want)
	}
	if n := getNetwork(t, n1.URL); len(n.Revocations) != 0 {
		t.Errorf("refused revocations were kept: %+v", n.Revocations)
	}

	// A node of another network starts (it is a member of its own) but is
	// refused by every member, and says so.
	dOther := filepath.Join(base, "other")
	admitDir(t, otherAuth, dOther)
	intruder := startNode(t, dOther, "local", "--join", n1.Addr+","+n2.Addr)

	// A node whose data dir holds only a node key, or nothing, must not start a
	// network of its own when told to join: it stops with one sentence.
	dKey := filepath.Join(base, "keyonly")
	if r := runCLI(t, nil, "keygen", "--data", dKey); r.Code != 0 {
		t.Fatalf("keygen: %v", r)
	}
	for _, dir := range []string{dKey, filepath.Join(base, "empty")} {
		r := runCLI(t, nil, "run", "--data", dir, "--http", "127.0.0.1:0", "--coap", "127.0.0.1:0", "--coaps", "127.0.0.1:0", "--profile", "local", "--join", n1.Addr)
		line := oneLine(t, "run --join on an unadmitted data dir", r.Stderr)
		if r.Code != 2 || !strings.Contains(line, "holds no membership, so it cannot join") || !strings.Contains(line, "flownode admit") {
			t.Errorf("run --join on %s: want exit 2 and why, got %v", filepath.Base(dir), r)
		}
		for _, f := range []string{network.DescriptionFile, network.MembershipFile, network.AuthorityKeyFile} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				t.Errorf("run --join on %s created %s", filepath.Base(dir), f)
			}
		}
	}

	// Give the intruder time to try, then check it is nowhere.
	if !waitFor(20*time.Second, 200*time.Millisecond, func() bool {
		return strings.Contains(intruder.Stderr(), "is not signed by this network's authority")
	}) {
		t.Errorf("the intruder's stderr does not say why it cannot join:\n%s", tail(intruder.Stderr(), 10))
	}
	time.Sleep(2 * time.Second)
	if ok, why := ringIs(ring); !ok {
		t.Errorf("with an intruder about: %s", why)
	}
	for _, p := range ring {
		info := getNode(t, p.URL)
		peers := append(append([]node.Peer{}, info.Successors...), info.Fingers...)
		if info.Predecessor != nil {
			peers = append(peers, *info.Predecessor)
		}
		for _, q := range peers {
			if q.ID.Hex() == intruder.ID {
				t.Errorf("member %s lists the intruder among its peers", p.ID[:8])
			}
		}
		for _, m := range getNetwork(t, p.URL).Members {
			if m.ID.Hex() == intruder.ID {
				t.Errorf("member %s knows a membership of the intruder", p.ID[:8])
			}
		}
	}
	ri := getNode(t, intruder.URL)
	if ri.Status == "member" || ri.Predecessor != nil {
		t.Errorf("the intruder is a ring member (status %q, predecessor %v)", ri.Status, ri.Predecessor)
	}
	// A reading the ring takes is owned by a member whatever its key: the
	// intruder owns no range. A key just above the intruder's ID would be its.
	rc := putOne(t, n1.URL, "intrusion", `{"x":1}`, keyAfter(intruder.ID))
	if rc.Owner.ID == intruder.ID {
		t.Errorf("the intruder owns a reading the ring took: %+v", rc)
	}
	if r := doHTTP(t, http.MethodGet, intruder.URL+"/api/v1/records/"+rc.TxID+"?local=1", "", nil); r.Code != http.StatusNotFound {
		t.Errorf("the intruder holds a record the ring took: %d %s", r.Code, r.Body)
	}
}

// keyAfter returns the 40-hex key one above id.
func keyAfter(id string) string {
	b := []byte(id)
	for i := len(b) - 1; i >= 0; i-- {
		switch b[i] {
		case '9':
			b[i] = 'a'
			return string(b)
		case 'f':
			b[i] = '0'
			continue
		default:
			b[i]++
			return string(b)
		}
	}
	return string(b)
}

// TestRevokeDropsMember: flownode revoke against a ring of three processes. The
// revocation, handed to one member, reaches every member; the revoked node is
// dropped from the ring and refused by its former peers within a stated time;
// every reading acknowledged before (with wait=replicas) still reads back, byte
// for byte, from each survivor, and their ledgers verify.
func TestRevokeDropsMember(t *testing.T) {
	authDir, _ := initNetwork(t, "plant-b")
	base := t.TempDir()
	var nodes []*nodeProc
	for i := range 3 {
		dir := filepath.Join(base, fmt.Sprint("n", i))
		admitDir(t, authDir, dir)
		var args []string
		if i > 0 {
			args = []string{"--join", nodes[0].Addr}
		}
		nodes = append(nodes, startNode(t, dir, "local", args...))
	}
	var why string
	if !waitFor(30*time.Second, 100*time.Millisecond, func() (ok bool) { ok, why = ringIs(nodes); return ok }) {
		t.Fatalf("three admitted nodes form no ring in 30 s: %s", why)
	}

	// Readings acknowledged once on all k = 3 nodes, through every entry node.
	type ack struct{ txID, data string }
	var acks []ack
	for i := range 60 {
		data := fmt.Sprintf(`{"i":%d,"t":"before revocation"}`, i)
		body := fmt.Sprintf(`{"thing":"press-%d","data":%s}`, i%4, data)
		r := doHTTP(t, http.MethodPost, nodes[i%3].URL+"/api/v1/records?wait=replicas", "application/json", []byte(body))
		if r.Code != http.StatusCreated {
			t.Fatalf("put %d: %d %s", i, r.Code, r.Body)
		}
		var rc receipt
		if err := json.Unmarshal(r.Body, &rc); err != nil {
			t.Fatal(err)
		}
		acks = append(acks, ack{rc.TxID, data})
	}

	victim, survivors := nodes[2], nodes[:2]
	start := time.Now()
	r := runCLI(t, nil, "revoke", "--network", authDir, "--node", nodes[0].URL, "--reason", "gateway stolen", victim.ID)
	if r.Code != 0 || !strings.Contains(r.Stdout, "accepted it") {
		t.Fatalf("revoke: %v", r)
	}
	if _, err := os.Stat(filepath.Join(authDir, "revocations", victim.ID+".json")); err != nil {
		t.Errorf("revoke kept no file: %v", err)
	}
	if r := runCLI(t, nil, "revoke", "--network", authDir, "--node", nodes[1].URL, victim.ID); r.Code != 0 {
		t.Errorf("revoke again, through another member: %v", r)
	}

	// Dropped: the ring walked from each survivor is the survivors, each holds
	// the revocation, and each has refused the revoked node since.
	dropped := func() (bool, string) {
		if ok, why := ringIs(survivors); !ok {
			return false, why
		}
		for _, p := range survivors {
			var n node.NetworkInfo
			rr, err := tryHTTP(httpClient, http.MethodGet, p.URL+"/api/v1/network", "", nil)
			if err != nil || json.Unmarshal(rr.Body, &n) != nil {
				return false, fmt.Sprintf("GET %s/api/v1/network: %v", p.URL, err)
			}
			if len(n.Revocations) != 1 || n.Revocations[0].Node != victim.ID {
				return false, fmt.Sprintf("%s holds revocations %+v", p.ID[:8], n.Revocations)
			}
			if n.Refused["revoked"] == 0 {
				return false, fmt.Sprintf("%s has not refused the revoked node yet (refused %v)", p.ID[:8], n.Refused)
			}
		}
		return true, ""
	}
	const dropWithin = 30 * time.Second
	if !waitFor(dropWithin, 50*time.Millisecond, func() (ok bool) { ok, why = dropped(); return ok }) {
		t.Fatalf("the revoked node is not dropped within %v: %s", dropWithin, why)
	}
	t.Logf("revoked node dropped by every peer %v after flownode revoke started (bound %v)", time.Since(start).Round(time.Millisecond), dropWithin)

	// Nothing acknowledged is lost.
	for _, p := range survivors {
		lost := 0
		for _, a := range acks {
			rr := doHTTP(t, http.MethodGet, p.URL+"/api/v1/records/"+a.txID, "", nil)
			if rr.Code != http.StatusOK || !strings.Contains(string(rr.Body), a.data) {
				lost++
				if lost <= 3 {
					t.Errorf("%s: record %s: %d %s", p.ID[:8], a.txID, rr.Code, trunc(rr.Body))
				}
			}
		}
		if lost > 0 {
			t.Errorf("%s: %d of %d acknowledged readings do not read back", p.ID[:8], lost, len(acks))
		}
		if v := getVerify(t, p.URL); !v.Valid {
			t.Errorf("%s: ledger invalid after the revocation: %+v", p.ID[:8], v)
		}
	}
	for _, p := range survivors {
		for _, m := range getNetwork(t, p.URL).Members {
			if m.ID.Hex() == victim.ID && m.Revoked == nil {
				t.Errorf("%s lists the revoked node as a member in good standing", p.ID[:8])
			}
		}
	}
	metrics := string(doHTTP(t, http.MethodGet, survivors[0].URL+"/metrics", "", nil).Body)
	for _, want := range []string{`flownode_peers_refused_total{reason="revoked"}`, "flownode_revocations 1", "flownode_members_known 3"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
