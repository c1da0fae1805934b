package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/flownode/flownode/ledger"
)

// TestCLIDevice: a device key made by device keygen, declared in a Thing's TD,
// signs readings with device sign; the node keeps the signature, device
// verify checks the record offline with the public key alone, and the
// ledger's verify covers the device signatures it holds. An unsigned reading
// of that Thing is refused.
func TestCLIDevice(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "meter.key")
	r := runCLI(t, nil, "device", "keygen", "--out", keyFile)
	if r.Code != 0 || !regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(r.Stdout) {
		t.Fatalf("device keygen: %v", r)
	}
	pub := strings.TrimSpace(r.Stdout)
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	if again := runCLI(t, nil, "device", "keygen", "--out", keyFile); again.Code != 2 || !strings.Contains(again.Stderr, "never overwritten") {
		t.Errorf("keygen over an existing key: %v", again)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"device"}, "want a subcommand"},
		{[]string{"device", "sign", "--key", keyFile, "1"}, "--thing are required"},
		{[]string{"device", "sign", "--key", keyFile, "--thing", "m", `{"a":`}, "the reading"},
		{[]string{"device", "sign", "--key", filepath.Join(dir, "none"), "--thing", "m", "1"}, "no such file"},
		{[]string{"device", "verify", "--pub", "xyz"}, "64 hex"},
	} {
		if got := runCLI(t, nil, c.args...); got.Code != 2 || !strings.Contains(got.Stderr, c.want) {
			t.Errorf("%v: %v, want exit 2 and %q", c.args, got, c.want)
		}
	}

	n := startNode(t, dir, "local")
	td := `{"@context": "https://www.w3.org/2022/wot/td/v1.1", "title": "Meter", "securityDefinitions": {"nosec": {"scheme": "nosec"}}, "security": "nosec", "flownode:deviceKey": "` + pub + `"}`
	if got := doHTTP(t, "PUT", n.URL+"/things/meter-1", "application/td+json", []byte(td)); got.Code != 201 {
		t.Fatalf("PUT TD: %d %s", got.Code, got.Body)
	}
	r = runCLI(t, nil, "device", "sign", "--key", keyFile, "--thing", "meter-1", `{"kWh": 7.25, "n": 1}`)
	if r.Code != 0 {
		t.Fatalf("device sign: %v", r)
	}
	put := doHTTP(t, "POST", n.URL+"/api/v1/records", "application/json", []byte(r.Stdout))
	var rc receipt
	if put.Code != 201 || json.Unmarshal(put.Body, &rc) != nil {
		t.Fatalf("signed put: %d %s", put.Code, put.Body)
	}
	env := runCLI(t, nil, "device", "sign", "--envelope", "--key", keyFile, "--thing", "meter-1", `{"kWh": 7.25, "n": 1}`)
	var e map[string]json.RawMessage
	if env.Code != 0 || json.Unmarshal([]byte(env.Stdout), &e) != nil || len(e) != 2 || e["data"] == nil || e["device"] == nil {
		t.Errorf("device sign --envelope: %v", env)
	}
	if unsigned := doHTTP(t, "POST", n.URL+"/api/v1/records", "application/json", []byte(`{"thing":"meter-1","data":{"kWh":8}}`)); unsigned.Code != 400 {
		t.Errorf("unsigned put: %d %s", unsigned.Code, unsigned.Body)
	}

	rec := doHTTP(t, "GET", n.URL+"/api/v1/records/"+rc.TxID, "", nil)
	recFile := filepath.Join(t.TempDir(), "record.json")
	if err := os.WriteFile(recFile, rec.Body, 0o644); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, nil, "device", "verify", "--pub", pub, recFile)
	if r.Code != 0 || !strings.HasPrefix(r.Stdout, "valid: record "+rc.TxID+" of Thing meter-1, value signed by device "+pub) {
		t.Errorf("device verify: %v", r)
	}
	other, _ := ledger.GenerateIdentity(nil)
	r = runCLI(t, nil, "device", "verify", "--pub", strings.TrimSpace(string(mustText(other.Public))), recFile)
	if r.Code != 1 || !strings.Contains(r.Stderr, "invalid: record device key") {
		t.Errorf("device verify with another key: %v", r)
	}
	tampered := strings.Replace(string(rec.Body), `"kWh":7.25`, `"kWh":7.26`, 1)
	os.WriteFile(recFile, []byte(tampered), 0o644)
	if r = runCLI(t, nil, "device", "verify", "--pub", pub, recFile); r.Code != 1 {
		t.Errorf("device verify of a changed record: %v", r)
	}
	if recs, _ := parseVerifyOutput(t, runCLI(t, nil, "verify", "--node", n.URL)); recs < 2 {
		t.Errorf("verify: %d records, want the reading and the TD's", recs)
	}
}

func mustText(b []byte) []byte {
	out, _ := ledger.PubKey(b).MarshalText()
	return out
}
