package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestCrossSiteWritesChangeNothing: what a foreign web page can make a
// browser send (a form or text/plain POST carrying its Origin, any request
// under a DNS-rebound host name) is refused with a JSON error and stores
// nothing; the node's own dashboard (same origin), clients without an
// Origin and the --allow-host / --allow-origin names keep working.
func TestCrossSiteWritesChangeNothing(t *testing.T) {
	n := startNode(t, t.TempDir(), "local", "--allow-host", "gw21.plant.lan", "--allow-origin", "https://dash.example.com")
	putOne(t, n.URL, "meter-1", `{"kWh":1}`)
	before := getNode(t, n.URL).Stats.Records

	reading := `{"thing":"meter-1","data":{"kWh":666}}`
	td := `{"@context":"https://www.w3.org/2022/wot/td/v1.1","id":"evil-lamp","title":"Evil","securityDefinitions":{"nosec_sc":{"scheme":"nosec"}},"security":"nosec_sc"}`
	refused := []struct {
		name, method, path, ctype, body string
		head                            []string
		code                            int
		says                            string
	}{
		{"form POST from a foreign page", "POST", "/api/v1/records", "application/x-www-form-urlencoded", `thing=meter-1&data=666`, []string{"Origin", "http://evil.example"}, 403, "cross-site"},
		{"text/plain POST from a foreign page", "POST", "/api/v1/records", "text/plain", reading, []string{"Origin", "http://evil.example"}, 403, "cross-site"},
		{"JSON POST from a foreign page", "POST", "/api/v1/records", "application/json", reading, []string{"Origin", "http://evil.example"}, 403, "--allow-origin"},
		{"text/plain POST without Origin", "POST", "/api/v1/records", "text/plain", reading, nil, 415, "not supported"},
		{"form POST without Origin", "POST", "/api/v1/records", "application/x-www-form-urlencoded", reading, nil, 415, "not supported"},
		{"POST without a type", "POST", "/api/v1/records", "", reading, nil, 415, "not supported"},
		{"POST under a rebound host", "POST", "/api/v1/records", "application/json", reading, []string{"Host", "rebind.evil.example"}, 421, "--allow-host"},
		{"GET under a rebound host", "GET", "/api/v1/node", "", "", []string{"Host", "rebind.evil.example:8000"}, 421, "does not answer"},
		{"TD from a foreign page", "PUT", "/things/evil-lamp", "application/td+json", td, []string{"Origin", "null"}, 403, "cross-site"},
		{"TD as text/plain", "PUT", "/things/evil-lamp", "text/plain", td, nil, 415, "application/td+json"},
		{"property from a foreign page", "PUT", "/things/meter-1/properties/kWh", "application/json", `666`, []string{"Origin", "http://evil.example"}, 403, "cross-site"},
		{"property as text/plain", "PUT", "/things/meter-1/properties/kWh", "text/plain", `666`, nil, 415, "not supported"},
		{"revocation from a foreign page", "POST", "/api/v1/network/revocations", "text/plain", `{}`, []string{"Origin", "http://evil.example"}, 403, "cross-site"},
	}
	for _, c := range refused {
		r := doRequest(t, n.URL, c.method, c.path, c.ctype, c.body, c.head...)
		var e struct {
			Error string `json:"error"`
		}
		if r.Code != c.code || !strings.HasPrefix(r.ContentType, "application/json") || json.Unmarshal(r.Body, &e) != nil || !strings.Contains(e.Error, c.says) {
			t.Errorf("%s: %d %s %q, want %d with a JSON error saying %q", c.name, r.Code, r.ContentType, r.Body, c.code, c.says)
		}
	}
	if after := getNode(t, n.URL).Stats.Records; after != before {
		t.Errorf("records: %d before the cross-site requests, %d after", before, after)
	}
	// The refusals never reached a route: the guard's counter has them.
	m := doRequest(t, n.URL, "GET", "/metrics", "", "")
	want := fmt.Sprintf("\nflownode_http_rejected_total %d\n", len(refused))
	if !strings.Contains(string(m.Body), want) {
		t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
	}
	if r := doRequest(t, n.URL, "GET", "/things/evil-lamp", "", ""); r.Code != http.StatusNotFound {
		t.Errorf("the foreign TD: GET answered %d, want 404", r.Code)
	}

	// What keeps working: the dashboard's own origin, the allowed origin
	// and host, JSON with a charset, and the dashboard page itself.
	ok := []struct {
		name, method, path, ctype, body string
		head                            []string
		code                            int
	}{
		{"same-origin JSON POST", "POST", "/api/v1/records", "application/json", `{"thing":"meter-1","data":{"kWh":2}}`, []string{"Origin", "http://" + n.Addr}, 201},
		{"allowed origin", "POST", "/api/v1/records", "application/json; charset=utf-8", `{"thing":"meter-1","data":{"kWh":3}}`, []string{"Origin", "https://dash.example.com"}, 201},
		{"allowed host", "POST", "/api/v1/records", "application/json", `{"thing":"meter-1","data":{"kWh":4}}`, []string{"Host", "gw21.plant.lan:8000"}, 201},
		{"localhost", "GET", "/api/v1/node", "", "", []string{"Host", "localhost"}, 200},
		{"dashboard from a foreign page's link", "GET", "/", "", "", []string{"Origin", "http://evil.example"}, 200},
	}
	for _, c := range ok {
		if r := doRequest(t, n.URL, c.method, c.path, c.ctype, c.body, c.head...); r.Code != c.code {
			t.Errorf("%s: %d %s, want %d", c.name, r.Code, trunc(r.Body), c.code)
		}
	}
	if after := getNode(t, n.URL).Stats.Records; after != before+3 {
		t.Errorf("records: %d, want the 3 allowed writes on top of %d", after, before)
	}

	// The flags take only what they describe.
	for _, args := range [][]string{{"--allow-origin", "ftp://x"}, {"--allow-origin", "https://x.example/path"}, {"--allow-host", "http://x.example"}} {
		r := runCLI(t, nil, append([]string{"run", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--coap", "127.0.0.1:0"}, args...)...)
		if r.Code != 2 || !strings.Contains(r.Stderr, args[0]) {
			t.Errorf("run %v: %v, want exit 2 naming the flag", args, r)
		}
	}
}

// doRequest sends one request with the headers given as name, value pairs
// ("Host" sets the request's host).
func doRequest(tb testing.TB, base, method, path, ctype, body string, head ...string) apiResp {
	tb.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	if body == "" {
		req.Body = http.NoBody
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(head); i += 2 {
		if head[i] == "Host" {
			req.Host = head[i+1]
		} else {
			req.Header.Set(head[i], head[i+1])
		}
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	if _, err := io.Copy(&sb, resp.Body); err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	return apiResp{Code: resp.StatusCode, Body: []byte(sb.String()), ContentType: resp.Header.Get("Content-Type"), Header: resp.Header}
}
