package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/flownode/flownode/network"
	"github.com/flownode/flownode/node"
)

var tokenLine = regexp.MustCompile(`^fn1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$`)

// createToken runs flownode token create --quiet and returns the bearer token.
func createToken(t *testing.T, authDir, thing, scope string, extra ...string) string {
	t.Helper()
	r := runCLI(t, nil, append([]string{"token", "create", "--network", authDir, "--thing", thing, "--scope", scope, "--quiet"}, extra...)...)
	if r.Code != 0 || !tokenLine.MatchString(r.Stdout) {
		t.Fatalf("token create: %v", r)
	}
	return strings.TrimSpace(r.Stdout)
}

// tokenID is the ID of a bearer token, as token list prints it.
func tokenID(t *testing.T, authDir, bearer string) string {
	t.Helper()
	r := runCLI(t, nil, "token", "list", "--network", authDir)
	if r.Code != 0 {
		t.Fatalf("token list: %v", r)
	}
	for _, line := range scanLines(r.Stdout)[1:] {
		if id := strings.Fields(line)[0]; tokenHasID(bearer, id) {
			return id
		}
	}
	t.Fatalf("token list does not show the token:\n%s", r.Stdout)
	return ""
}

func tokenHasID(bearer, id string) bool {
	claims, _, _ := strings.Cut(strings.TrimPrefix(bearer, "fn1."), ".")
	b, err := base64.RawURLEncoding.DecodeString(claims)
	return err == nil && strings.Contains(string(b), `"id":"`+id+`"`)
}

// authedPost posts a reading with the token as header ("header"), as query
// parameter ("query"), or none ("").
func authedPost(t *testing.T, base, how, token, thing, data string) apiResp {
	t.Helper()
	url := base + "/api/v1/records"
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"thing":"`+thing+`","data":`+data+`}`))
	req.Header.Set("Content-Type", "application/json")
	switch how {
	case "header":
		req.Header.Set("Authorization", "Bearer "+token)
	case "query":
		q := req.URL.Query()
		q.Set("token", token)
		req.URL.RawQuery = q.Encode()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return apiResp{Code: resp.StatusCode, Body: b, Header: resp.Header}
}

// thingRecordCount is the number of records of a Thing the ring holds, read
// through base (reads are open).
func thingRecordCount(t *testing.T, base, thing string) int {
	t.Helper()
	var l struct {
		Records []json.RawMessage `json:"records"`
	}
	getJSON(t, base+"/api/v1/things/"+thing+"/records?limit=1000", &l)
	return len(l.Records)
}

// wsSend opens /object/{thing}/send with the token in the header or the
// query (how), sends one reading and returns its reply frame; or the
// handshake's HTTP status when it is refused.
func wsSend(t *testing.T, addr, how, token, thing, reading string) (reply string, status int) {
	t.Helper()
	url := "ws://" + addr + "/object/" + thing + "/send"
	h := http.Header{}
	switch how {
	case "header":
		h.Set("Authorization", "Bearer "+token)
	case "query":
		url += "?token=" + token
	}
	c, resp, err := websocket.DefaultDialer.Dial(url, h)
	if err != nil {
		if resp == nil {
			t.Fatalf("dial %s: %v", url, err)
		}
		return "", resp.StatusCode
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, []byte(reading)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	_, msg, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("reply to a reading over %s: %v", url, err)
	}
	return string(msg), 101
}

// TestTokensOnARing: on a 3-node ring whose nodes ask every client for a
// credential (--auth all), a token the authority signed is accepted by every
// node, over HTTP and WebSocket, in the header and as ?token=; a
// missing, foreign or too narrow one is refused (401 / 403) with nothing
// stored; verify needs an admin token; and once revoked through one node, the
// token is refused by all of them.
func TestTokensOnARing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node ring")
	}
	authDir, _ := initNetwork(t, "plant-tok")
	base := t.TempDir()
	var ring []*nodeProc
	for i, name := range []string{"n1", "n2", "n3"} {
		dir := base + "/" + name
		admitDir(t, authDir, dir)
		args := []string{"--auth", "all"}
		if i > 0 {
			args = append(args, "--join", ring[0].Addr)
		}
		ring = append(ring, startNode(t, dir, "local", args...))
	}
	var why string
	if !waitFor(60*time.Second, 100*time.Millisecond, func() (ok bool) { ok, why = ringIs(ring); return ok }) {
		t.Fatalf("no ring in 60 s: %s", why)
	}

	lamps := createToken(t, authDir, "lamp-*", "write", "--expires", "1h")
	pumpsRead := createToken(t, authDir, "pump-*", "read")
	admin := createToken(t, authDir, "*", "admin")
	otherAuth, _ := initNetwork(t, "plant-tok") // same name, another authority
	foreign := createToken(t, otherAuth, "*", "admin")

	for i, n := range ring {
		for _, how := range []string{"header", "query"} {
			if r := authedPost(t, n.URL, how, lamps, "lamp-1", `{"n":1}`); r.Code != http.StatusCreated {
				t.Errorf("node %d, token in the %s: %d %s", i, how, r.Code, r.Body)
			}
		}
		for _, c := range []struct {
			how, token, thing string
			code              int
			challenge         string
		}{
			{"", "", "lamp-1", 401, `Bearer realm="flownode"`},
			{"header", foreign, "lamp-1", 401, `error="invalid_token"`},
			{"header", "fn1.garbage.garbage", "lamp-1", 401, `error="invalid_token"`},
			{"header", lamps, "pump-1", 403, `error="insufficient_scope"`},
			{"query", pumpsRead, "pump-1", 403, `error="insufficient_scope"`},
		} {
			r := authedPost(t, n.URL, c.how, c.token, c.thing, `{"n":2}`)
			if r.Code != c.code || !strings.Contains(r.Header.Get("WWW-Authenticate"), c.challenge) || !strings.Contains(string(r.Body), `"error"`) {
				t.Errorf("node %d, %s %s on %s: %d %q %s; want %d %s", i, c.how, c.token[:min(len(c.token), 12)], c.thing, r.Code, r.Header.Get("WWW-Authenticate"), r.Body, c.code, c.challenge)
			}
		}
		// WebSocket device path: the same token in the handshake's header or query.
		for _, how := range []string{"header", "query"} {
			reply, status := wsSend(t, n.Addr, how, lamps, "lamp-2", `{"n":3}`)
			if status != 101 || !strings.Contains(reply, `"txID"`) {
				t.Errorf("node %d, WebSocket with the token in the %s: %d %s", i, how, status, reply)
			}
		}
		if _, status := wsSend(t, n.Addr, "", "", "lamp-2", `{"n":4}`); status != 401 {
			t.Errorf("node %d, WebSocket without a token: %d, want 401", i, status)
		}
		if _, status := wsSend(t, n.Addr, "query", lamps, "pump-2", `{"n":4}`); status != 403 {
			t.Errorf("node %d, WebSocket to another Thing: %d, want 403", i, status)
		}
		// verify: admin of every Thing only.
		for _, c := range []struct {
			token string
			code  int
		}{{"", 401}, {lamps, 403}, {admin, 200}} {
			req, _ := http.NewRequest(http.MethodGet, n.URL+"/api/v1/verify", nil)
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.code {
				t.Errorf("node %d, verify with %.12q: %d, want %d", i, c.token, resp.StatusCode, c.code)
			}
		}
	}
	// Nothing refused was stored; everything accepted was.
	if n := thingRecordCount(t, ring[1].URL, "pump-1") + thingRecordCount(t, ring[2].URL, "pump-2"); n != 0 {
		t.Errorf("%d refused readings were stored", n)
	}
	if n := thingRecordCount(t, ring[2].URL, "lamp-1"); n != 6 {
		t.Errorf("lamp-1 has %d records, want the 6 accepted", n)
	}

	// Revoked through one node, refused by every node.
	id := tokenID(t, authDir, lamps)
	if r := runCLI(t, nil, "token", "revoke", "--network", authDir, "--node", ring[0].URL, "--reason", "lost", id); r.Code != 0 || !strings.Contains(r.Stdout, "accepted it") {
		t.Fatalf("token revoke: %v", r)
	}
	for i, n := range ring {
		var last apiResp
		if !waitFor(60*time.Second, 200*time.Millisecond, func() bool {
			last = authedPost(t, n.URL, "header", lamps, "lamp-9", `{"n":5}`)
			return last.Code == http.StatusUnauthorized
		}) {
			t.Fatalf("node %d still answers %d to a revoked token after 60 s: %s", i, last.Code, last.Body)
		}
		if !strings.Contains(string(last.Body), "revoked") {
			t.Errorf("node %d: refusal of a revoked token does not say so: %s", i, last.Body)
		}
		if _, status := wsSend(t, n.Addr, "query", lamps, "lamp-2", `{"n":6}`); status != 401 {
			t.Errorf("node %d, WebSocket with a revoked token: %d, want 401", i, status)
		}
	}
	if r := runCLI(t, nil, "token", "list", "--network", authDir); !strings.Contains(r.Stdout, id) || !strings.Contains(r.Stdout, "revoked") {
		t.Errorf("token list after revoke: %v", r)
	}
	// Readings accepted before the revocation stay.
	if n := thingRecordCount(t, ring[0].URL, "lamp-1"); n != 6 {
		t.Errorf("lamp-1 has %d records after the revocation, want 6", n)
	}
}

// TestDevNodeLoopbackAndTokens: the dev node of make run (laptop and local
// profiles, --auth loopback by default) takes writes from its own machine
// without a credential, and its data dir, which holds the one-node
// network's authority key, signs tokens with token create --data (API.md).
func TestDevNodeLoopbackAndTokens(t *testing.T) {
	// The data dir as a first start of make run leaves it: a one-node
	// network whose authority key is in the data dir (node/network.go).
	dir := t.TempDir() + "/data"
	a, err := network.Init(dir, "flownode-dev", node.LocalProfile().Mining)
	if err == nil {
		_, err = a.AdmitDir(dir, time.Now().Add(time.Hour))
	}
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, dir, "local")
	if r := authedPost(t, n.URL, "", "", "lamp-1", `{"n":1}`); r.Code != http.StatusCreated {
		t.Fatalf("a loopback write to the dev node: %d %s", r.Code, r.Body)
	}
	r := runCLI(t, nil, "token", "create", "--data", dir, "--thing", "lamp-*", "--scope", "write")
	if r.Code != 0 || !strings.Contains(r.Stdout, "fn1.") || !strings.Contains(r.Stdout, "PSK identity") {
		t.Fatalf("token create --data on the dev node's dir: %v", r)
	}
	// A wrong token is refused even from loopback: a credential that is
	// given is checked.
	if r := authedPost(t, n.URL, "header", "fn1.bad.bad", "lamp-1", `{"n":2}`); r.Code != http.StatusUnauthorized {
		t.Errorf("a bad token from loopback: %d %s", r.Code, r.Body)
	}
	if r := runCLI(t, nil, "token", "create", "--data", t.TempDir(), "--thing", "*", "--scope", "read"); r.Code != 2 {
		t.Errorf("token create on a dir without the authority key: %v", r)
	}
}

func TestAuthPolicyDefaults(t *testing.T) {
	for _, c := range []struct {
		mode, profile string
		loopback      bool
	}{{"", "gateway", false}, {"", "laptop", true}, {"", "local", true}, {"all", "laptop", false}, {"loopback", "gateway", true}} {
		p, _ := node.ProfileNamed(c.profile)
		got, err := authPolicy(c.mode, true, p)
		if err != nil || got.OpenLoopback != c.loopback || !got.OpenReads {
			t.Errorf("--auth %q, profile %s: %+v %v", c.mode, c.profile, got, err)
		}
	}
	if _, err := authPolicy("none", true, node.LaptopProfile()); err == nil {
		t.Error("--auth none was accepted")
	}
}
