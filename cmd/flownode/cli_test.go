package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/flownode/flownode/api"
	"github.com/flownode/flownode/ledger"
)

// TestCLIUsageErrors: commands that fail before reaching a node exit 2 (or 1 for a
// negative answer) with exactly one line on stderr and nothing on stdout.
func TestCLIUsageErrors(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	dead := "http://127.0.0.1:1" // nothing listens on port 1
	cases := []struct {
		name string
		env  []string
		args []string
		code int
		want string // substring of the stderr line
	}{
		{"unknown command", nil, []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"bad flag", nil, []string{"put", "--bogus", "--thing", "t", "{}"}, 2, "flag provided but not defined: -bogus"},
		{"bad flag value", nil, []string{"status", "--json=maybe"}, 2, "invalid boolean value"},
		{"put without --thing", nil, []string{"put", "--node", dead, `{"t":1}`}, 2, "--thing is required"},
		{"put invalid JSON", nil, []string{"put", "--node", dead, "--thing", "t", `{"t":`}, 2, "not valid JSON"},
		{"put no reading", nil, []string{"put", "--node", dead, "--thing", "t"}, 2, "want one JSON reading"},
		{"put two readings", nil, []string{"put", "--node", dead, "--thing", "t", "1", "2"}, 2, "want one JSON reading"},
		{"put connection refused", nil, []string{"put", "--node", dead, "--thing", "t", "1"}, 2, "cannot reach http://127.0.0.1:1"},
		{"get connection refused", nil, []string{"get", "--node", dead, strings.Repeat("ab", 32)}, 2, "connection refused"},
		{"get no txid", nil, []string{"get", "--node", dead}, 2, "want one TXID"},
		{"status connection refused", nil, []string{"status", "--node", dead}, 2, "cannot reach"},
		{"ring connection refused", nil, []string{"ring", "--node", dead}, 2, "cannot reach"},
		{"verify connection refused", nil, []string{"verify", "--node", dead}, 2, "cannot reach"},
		{"node not http", nil, []string{"status", "--node", "ftp://127.0.0.1:21"}, 2, "is not an http:// URL"},
		{"healthcheck dead node", nil, []string{"healthcheck", "--node", dead}, 1, "unhealthy: cannot reach"},
		{"verify --data empty dir", nil, []string{"verify", "--data", empty}, 2, "holds no flownode store"},
		{"verify --data missing dir", nil, []string{"verify", "--data", filepath.Join(empty, "nope")}, 2, "holds no flownode store"},
		{"verify --node and --data", nil, []string{"verify", "--node", dead, "--data", empty}, 2, "give --node or --data, not both"},
		{"verify extra argument", nil, []string{"verify", "x"}, 2, "want no arguments"},
		{"run bogus profile", nil, []string{"run", "--data", empty, "--http", "127.0.0.1:0", "--profile", "bogus"}, 2, `unknown profile "bogus"`},
		{"run bogus profile from env", []string{"FLOWNODE_PROFILE=bogus"}, []string{"run", "--data", empty, "--http", "127.0.0.1:0"}, 2, `unknown profile "bogus"`},
		{"run bogus rpc", nil, []string{"run", "--data", empty, "--http", "127.0.0.1:0", "--rpc", "smoke"}, 2, `--rpc "smoke"`},
		{"run extra argument", nil, []string{"run", "--data", empty, "--http", "127.0.0.1:0", "now"}, 2, "want no arguments"},
		{"run bad http addr", nil, []string{"run", "--data", empty, "--http", "127.0.0.1:99999", "--profile", "local"}, 2, "listen on --http"},
		{"run bad coaps addr", nil, []string{"run", "--data", empty, "--http", "127.0.0.1:0", "--coap", "127.0.0.1:0", "--coaps", "127.0.0.1:99999", "--profile", "local"}, 2, "listen for CoAP over DTLS on --coaps"},
		{"env var bad bool", []string{"FLOWNODE_JSON=perhaps"}, []string{"status", "--node", dead}, 2, "FLOWNODE_JSON"},
		{"env var node picked up", []string{"FLOWNODE_NODE=" + dead}, []string{"status"}, 2, "cannot reach http://127.0.0.1:1"},
		{"version with argument", nil, []string{"version", "x"}, 2, "no arguments"},
		{"network without init", nil, []string{"network"}, 2, "want a subcommand: flownode network init"},
		{"network init without --dir", nil, []string{"network", "init"}, 2, "--dir is required"},
		{"network init bogus profile", nil, []string{"network", "init", "--dir", filepath.Join(empty, "a"), "--profile", "bogus"}, 2, `unknown profile "bogus"`},
		{"admit without --network", nil, []string{"admit", "--data", filepath.Join(empty, "n")}, 2, "--network is required"},
		{"admit without --data", nil, []string{"admit", "--network", empty}, 2, "--data is required"},
		{"admit from no authority", nil, []string{"admit", "--network", empty, "--data", filepath.Join(empty, "n")}, 2, "is not an authority directory"},
		{"admit bad expiry", nil, []string{"admit", "--network", empty, "--data", filepath.Join(empty, "n"), "--expires", "-1h"}, 2, "want a positive duration"},
		{"revoke without NODEID", nil, []string{"revoke", "--network", empty}, 2, "want one NODEID"},
		{"revoke bad NODEID", nil, []string{"revoke", "--network", empty, "xyz"}, 2, "want the node's 40-hex ID"},
		{"revoke from no authority", nil, []string{"revoke", "--network", empty, strings.Repeat("ab", 20)}, 2, "is not an authority directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runCLI(t, c.env, c.args...)
			if r.Code != c.code {
				t.Fatalf("flownode %s: want exit %d, got %v", strings.Join(c.args, " "), c.code, r)
			}
			line := oneLine(t, "flownode "+strings.Join(c.args, " "), r.Stderr)
			if !strings.Contains(line, c.want) {
				t.Errorf("stderr %q does not say %q", line, c.want)
			}
			if !strings.HasPrefix(line, "flownode "+c.args[0]+": ") && !strings.HasPrefix(line, "flownode: ") {
				t.Errorf("stderr %q does not start with the command name", line)
			}
			if r.Stdout != "" {
				t.Errorf("stdout not empty on failure: %q", r.Stdout)
			}
		})
	}
	// The empty dir must still be empty: a failed run or verify creates no store.
	if ents, err := os.ReadDir(empty); err != nil || len(ents) != 0 {
		t.Errorf("failed commands left files in %s: %v %v", empty, ents, err)
	}
}

// TestCLIHelpAndVersion: no command is a usage error; help and version succeed.
func TestCLIHelpAndVersion(t *testing.T) {
	t.Parallel()
	r := runCLI(t, nil)
	if r.Code != 2 || !strings.Contains(r.Stderr, "usage: flownode") {
		t.Errorf("no arguments: want exit 2 and usage, got %v", r)
	}
	for _, h := range []string{"help", "-h", "--help"} {
		r = runCLI(t, nil, h)
		if r.Code != 0 || !strings.Contains(r.Stderr, "usage: flownode") {
			t.Errorf("%s: want exit 0 and usage, got %v", h, r)
		}
	}
	r = runCLI(t, nil, "put", "-h")
	if r.Code != 0 || !strings.Contains(r.Stderr, "-thing") {
		t.Errorf("put -h: want exit 0 and the flags, got %v", r)
	}
	r = runCLI(t, nil, "version")
	if r.Code != 0 || !regexp.MustCompile(`^flownode \S+ \(ledger format \d+\)\n$`).MatchString(r.Stdout) {
		t.Errorf("version: got %v", r)
	}
}

// TestCLIKeygen: keygen creates the key once and then prints the same id; run uses it.
func TestCLIKeygen(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	re := regexp.MustCompile(`^([0-9a-f]{40}) \((new|existing) key in ` + regexp.QuoteMeta(dir) + `/\S+\)\n$`)
	first := runCLI(t, nil, "keygen", "--data", dir)
	m1 := re.FindStringSubmatch(first.Stdout)
	if first.Code != 0 || m1 == nil || m1[2] != "new" {
		t.Fatalf("first keygen: %v", first)
	}
	second := runCLI(t, []string{"FLOWNODE_DATA=" + dir}, "keygen")
	m2 := re.FindStringSubmatch(second.Stdout)
	if second.Code != 0 || m2 == nil || m2[2] != "existing" {
		t.Fatalf("second keygen (data dir from FLOWNODE_DATA): %v", second)
	}
	if m1[1] != m2[1] {
		t.Fatalf("keygen printed %s, then %s", m1[1], m2[1])
	}
	n := startNode(t, dir, "local")
	if n.ID != m1[1] {
		t.Fatalf("run uses id %s, keygen made %s", n.ID, m1[1])
	}
}

// TestCLIAgainstLiveNode: put/get/status/ring/verify/healthcheck against a node, the
// FLOWNODE_NODE variable, a second run on the same data dir, and exit codes of get.
func TestCLIAgainstLiveNode(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "local")
	env := []string{"FLOWNODE_NODE=" + n.URL}

	// put with FLOWNODE_NODE: the receipt, indented JSON on stdout.
	r := runCLI(t, env, "put", "--thing", "cli-thing", `{"temp": 21.5, "unit": "C"}`)
	if r.Code != 0 || r.Stderr != "" {
		t.Fatalf("put: %v", r)
	}
	var rc receipt
	if err := json.Unmarshal([]byte(r.Stdout), &rc); err != nil || len(rc.TxID) != 64 || rc.Owner.ID != n.ID {
		t.Fatalf("put printed %q (%v)", r.Stdout, err)
	}
	// --key is used as the ring key; the command line wins over the environment.
	key := strings.Repeat("0123456789", 4)
	r = runCLI(t, []string{"FLOWNODE_NODE=http://127.0.0.1:1"}, "put", "--node", n.URL, "--thing", "cli-thing", "--key", key, "42")
	var rc2 receipt
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &rc2) != nil || rc2.Key != key {
		t.Fatalf("put --key with --node over FLOWNODE_NODE: %v", r)
	}
	r = runCLI(t, env, "put", "--thing", "cli-thing", "--key", "xyz", "1")
	if r.Code != 2 || !strings.Contains(oneLine(t, "put --key xyz", r.Stderr), `field "key"`) {
		t.Errorf("put --key xyz: want exit 2 and the server's sentence, got %v", r)
	}
	r = runCLI(t, env, "put", "--thing", "no/slash", "1")
	if r.Code != 2 || !strings.Contains(oneLine(t, "put --thing no/slash", r.Stderr), "thing id") {
		t.Errorf("put with a bad thing id: want exit 2, got %v", r)
	}

	// get prints the stored bytes exactly, plus a newline.
	r = runCLI(t, env, "get", rc.TxID)
	if r.Code != 0 {
		t.Fatalf("get: %v", r)
	}
	served := doHTTP(t, "GET", n.URL+"/api/v1/records/"+rc.TxID, "", nil)
	if r.Stdout != string(served.Body)+"\n" {
		t.Errorf("get printed %q, the node serves %q", r.Stdout, served.Body)
	}
	rec, err := ledger.ParseRecord(served.Body)
	if err != nil || rec.CheckSelf(served.Body) != nil || rec.TxID.String() != rc.TxID || string(rec.Data) != `{"temp":21.5,"unit":"C"}` {
		t.Errorf("record %s: %v %s", rc.TxID, err, served.Body)
	}
	unknown := strings.Repeat("0", 64)
	r = runCLI(t, env, "get", unknown)
	if r.Code != 1 || !strings.Contains(oneLine(t, "get unknown", r.Stderr), "no record with txID "+unknown) || r.Stdout != "" {
		t.Errorf("get of an unknown txID: want exit 1, got %v", r)
	}
	for _, bad := range []string{"xyz", strings.Repeat("g", 64), strings.Repeat("a", 63), "a/b"} {
		r = runCLI(t, env, "get", bad)
		if r.Code != 2 || !strings.Contains(oneLine(t, "get "+bad, r.Stderr), "64 hex") {
			t.Errorf("get %q: want exit 2 and a one-line error, got %v", bad, r)
		}
	}

	// status and ring name the node.
	r = runCLI(t, env, "status")
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "id           "+n.ID+"\naddr         "+n.Addr+"\n") ||
		!strings.Contains(r.Stdout, "successor 0  "+n.ID+" ws://"+n.Addr) || !strings.Contains(r.Stdout, "profile      local") {
		t.Errorf("status: %v", r)
	}
	r = runCLI(t, env, "status", "--json")
	var info api.NodeInfo
	if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &info) != nil || info.ID.String() != n.ID || info.Stats.Records != 2 {
		t.Errorf("status --json: %v", r)
	}
	ver := runCLI(t, nil, "version")
	if !strings.HasPrefix(ver.Stdout, "flownode "+info.Version+" ") {
		t.Errorf("version says %q, the node says version %q", ver.Stdout, info.Version)
	}
	r = runCLI(t, env, "ring")
	if r.Code != 0 || r.Stdout != "  0  "+n.ID+"  ws://"+n.Addr+"\n" {
		t.Errorf("ring: %v", r)
	}

	// verify and healthcheck.
	r = runCLI(t, env, "verify")
	if recs, _ := parseVerifyOutput(t, r); recs != 2 {
		t.Errorf("verify: %d records, want 2", recs)
	}
	// The next one resumes from it; --full reads everything.
	r = runCLI(t, env, "verify")
	if recs, _ := parseVerifyOutput(t, r); recs != 2 || !strings.Contains(r.Stdout, "\nincremental: ") {
		t.Errorf("verify again: %d records, %q, want 2, incremental", recs, r.Stdout)
	}
	r = runCLI(t, env, "verify", "--full")
	if recs, _ := parseVerifyOutput(t, r); recs != 2 || !strings.HasSuffix(r.Stdout, "\nfull\n") {
		t.Errorf("verify --full: %d records, %q, want 2, full", recs, r.Stdout)
	}
	if r = runCLI(t, env, "healthcheck"); r.Code != 0 || r.Stdout != "" || r.Stderr != "" {
		t.Errorf("healthcheck of a live node: %v", r)
	}
	// --node without a scheme means http://.
	if r = runCLI(t, nil, "healthcheck", "--node", n.Addr); r.Code != 0 {
		t.Errorf("healthcheck --node host:port: %v", r)
	}

	// A second node on the same data dir fails clearly, and the first keeps serving.
	r = runCLI(t, nil, "run", "--data", dir, "--http", "127.0.0.1:0", "--profile", "local")
	line := ""
	for _, l := range scanLines(r.Stderr) {
		if !strings.HasPrefix(l, "{") { // JSON log lines are not the error line
			if line != "" {
				t.Errorf("second run: more than one error line on stderr: %q", r.Stderr)
			}
			line = l
		}
	}
	if r.Code != 2 || !strings.HasPrefix(line, "flownode run: ") || !strings.Contains(line, "Another process is using this Badger database") {
		t.Errorf("second run on the same data dir: want exit 2 and one line about the lock, got %v", r)
	}
	// Offline verify of a running node's dir is refused with a hint.
	r = runCLI(t, nil, "verify", "--data", dir)
	if r.Code != 2 || !strings.Contains(oneLine(t, "verify --data of a running node", r.Stderr), "use --node") {
		t.Errorf("verify --data while the node runs: want exit 2 and a hint, got %v", r)
	}
	// Same data dir, another network named: refused. (The profile no longer
	// decides the network: its mining rules are the data dir's network.json.)
	if n.Stop() != 0 {
		t.Fatal("SIGTERM: node did not exit 0")
	}
	r = runCLI(t, nil, "run", "--data", dir, "--http", "127.0.0.1:0", "--coap", "127.0.0.1:0", "--coaps", "127.0.0.1:0", "--network", "not-this-one")
	if r.Code != 2 || !strings.Contains(r.Stderr, `belongs to network "flownode-test", not "not-this-one"`) {
		t.Errorf("run with another network on the data dir: want exit 2 and why, got %v", r)
	}
	r = runCLI(t, nil, "healthcheck", "--node", n.URL)
	if r.Code != 1 || !strings.Contains(oneLine(t, "healthcheck", r.Stderr), "unhealthy") {
		t.Errorf("healthcheck of a stopped node: want exit 1, got %v", r)
	}
	// Offline verify of the stopped node's dir.
	if recs, _ := parseVerifyOutput(t, runCLI(t, nil, "verify", "--data", dir)); recs != 2 {
		t.Errorf("verify --data: %d records, want 2", recs)
	}
}
