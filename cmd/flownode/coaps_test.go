package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// libcoapClient returns the path of coap-client-<flavour>: skipped when it is
// missing, failed under CI (.ci/run installs libcoap3-bin).
func libcoapClient(t *testing.T, flavour string) string {
	t.Helper()
	name := "coap-client-" + flavour
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: apt-get install libcoap3-bin", name)
		}
		t.Skipf("%s is missing (apt-get install libcoap3-bin)", name)
	}
	return path
}

// libcoap runs a libcoap client, waiting at most wait seconds for its
// answer, and returns what it printed.
func libcoap(t *testing.T, path string, wait int, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, append([]string{"-B", fmt.Sprint(wait)}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Run()
	return out.String()
}

var pskLines = regexp.MustCompile(`(?m)^  (fnp1\.\S+)\n  (\S{32})$`)

// TestCoAPSDevicesWithTokens: a gateway-like node (--auth all) takes
// readings from libcoap's OpenSSL and GnuTLS clients over coaps with the PSK
// identity and key that token create printed for a credential; a wrong key,
// another Thing, plain CoAP and, once the token is revoked, the same
// identity and key store nothing.
func TestCoAPSDevicesWithTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("runs libcoap clients against a node")
	}
	clients := map[string]string{"openssl": libcoapClient(t, "openssl"), "gnutls": libcoapClient(t, "gnutls")}
	plain := libcoapClient(t, "notls")
	authDir, _ := initNetwork(t, "plant-coaps")
	dir := t.TempDir() + "/n1"
	admitDir(t, authDir, dir)
	n := startNode(t, dir, "local", "--auth", "all")
	info := getNode(t, n.URL)
	if info.CoAPS == "" || info.CoAP == "" {
		t.Fatalf("/api/v1/node names no coap/coaps port: %+v", info)
	}
	r := runCLI(t, nil, "token", "create", "--network", authDir, "--thing", "urn:dev:hall-*", "--scope", "write")
	m := pskLines.FindStringSubmatch(r.Stdout)
	if r.Code != 0 || m == nil {
		t.Fatalf("token create printed no PSK identity and key: %v", r)
	}
	identity, key := m[1], m[2]

	for flavour, path := range clients {
		thing := "urn:dev:hall-" + flavour
		out := libcoap(t, path, 10, "-m", "post", "-t", "50", "-e", `{"t":21.5}`, "-u", identity, "-k", key,
			"coaps://"+info.CoAPS+"/object/"+thing+"/send")
		if !strings.Contains(out, "txID") {
			t.Errorf("%s: a reading over coaps with the token's PSK: %q", flavour, out)
		}
		// The Thing's history index is written just after the receipt.
		if !waitFor(20*time.Second, 50*time.Millisecond, func() bool { return thingRecordCount(t, n.URL, thing) == 1 }) {
			t.Errorf("%s: %d records of %s, want 1", flavour, thingRecordCount(t, n.URL, thing), thing)
		}
		// The right identity with another key fails the handshake.
		libcoap(t, path, 3, "-m", "post", "-t", "50", "-e", `{"t":1}`, "-u", identity, "-k", strings.Repeat("x", 32),
			"coaps://"+info.CoAPS+"/object/"+thing+"-wrongkey/send")
		// A Thing the token does not cover: 4.03.
		if out := libcoap(t, path, 10, "-m", "post", "-t", "50", "-e", `{"t":1}`, "-u", identity, "-k", key,
			"coaps://"+info.CoAPS+"/object/urn:dev:pump-1/send"); !strings.Contains(out, "4.03") {
			t.Errorf("%s: a Thing the token does not cover: %q", flavour, out)
		}
	}
	// Plain CoAP to a node that asks every client for a credential: 4.01.
	if out := libcoap(t, plain, 10, "-m", "post", "-t", "50", "-e", `{"t":1}`, "coap://"+info.CoAP+"/object/urn:dev:hall-plain/send"); !strings.Contains(out, "4.01") {
		t.Errorf("plain CoAP write: %q", out)
	}
	// Revoked: the same identity and key no longer get in.
	id := strings.SplitN(identity, ".", 3)[1] // fnp1.ID.…
	if r := runCLI(t, nil, "token", "revoke", "--network", authDir, "--node", n.URL, id); r.Code != 0 {
		t.Fatalf("token revoke: %v", r)
	}
	libcoap(t, clients["openssl"], 3, "-m", "post", "-t", "50", "-e", `{"t":2}`, "-u", identity, "-k", key,
		"coaps://"+info.CoAPS+"/object/urn:dev:hall-revoked/send")
	// The node signed the two good readings and the two TDs their Things
	// got from them (a device's first reading describes its Thing), nothing else.
	if got := getNode(t, n.URL).Stats.Records; got != 4 {
		t.Errorf("the node signed %d records, want 4: the 2 good readings and their Things' TDs", got)
	}
	for _, thing := range []string{"urn:dev:hall-openssl-wrongkey", "urn:dev:hall-gnutls-wrongkey", "urn:dev:pump-1", "urn:dev:hall-plain", "urn:dev:hall-revoked"} {
		if c := thingRecordCount(t, n.URL, thing); c != 0 {
			t.Errorf("%d records of %s were stored", c, thing)
		}
	}
}
