package httpguard

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// check says why r is refused before its body is read (a status and a
// sentence), or 0.
func (g *Guard) check(r *http.Request) (int, string) {
	if !g.hostAllowed(r) {
		return http.StatusMisdirectedRequest, fmt.Sprintf("this node does not answer to the host %q; use its IP address or "+
			"advertised name, or start it with --allow-host %s", r.Host, hostname(r.Host))
	}
	changes := stateChanging(r.Method)
	if o := r.Header.Get("Origin"); o != "" && (changes || isUpgrade(r)) && !g.originAllowed(o, r.Host) {
		return http.StatusForbidden, fmt.Sprintf("requests from the origin %q are refused (cross-site); "+
			"start the node with --allow-origin %s to allow it", o, o)
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		if r.ContentLength == 0 {
			break // nothing to misread: the handler answers (405 on a path without the method)
		}
		if ct := r.Header.Get("Content-Type"); !IsJSON(ct) {
			if ct == "" {
				ct = "none"
			}
			return http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q is not supported; send application/json "+
				"(or the JSON type the path takes: application/td+json for a Thing Description, application/merge-patch+json for a patch)", ct)
		}
	}
	return 0, ""
}

func stateChanging(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// IsJSON says whether the Content-Type value ct is a JSON media type:
// application/json or application/*+json, with any parameters.
func IsJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// isUpgrade says whether r asks to switch protocols (a WebSocket).
func isUpgrade(r *http.Request) bool {
	if r.Header.Get("Upgrade") == "" {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// hostAllowed: a DNS rebinding attack reaches the node under a name the
// attacker controls, so only names the node is known by are served. IP
// literals and localhost cannot be rebound.
func (g *Guard) hostAllowed(r *http.Request) bool {
	h := hostname(r.Host)
	switch {
	case h == "", h == "localhost", strings.HasSuffix(h, ".localhost"), g.hosts[h]:
		return true
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	_, pattern := g.anyHost.Handler(r)
	return pattern != ""
}

// hostname is the lower-case host of a Host header or host[:port], without
// port, brackets or a trailing dot.
func hostname(hostport string) string {
	h := strings.TrimSpace(hostport)
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.Trim(h, "[]"), ".")
	return strings.ToLower(h)
}

// originAllowed: a browser sends Origin with cross-site requests; a
// same-origin page (the dashboard) and clients that are not browsers send
// none, or their own.
func (g *Guard) originAllowed(origin, host string) bool {
	o, ok := canonicalOrigin(origin)
	if !ok {
		return false // "null" (a sandboxed page, a file) or garbage
	}
	if g.origins[o] {
		return true
	}
	u, _ := url.Parse(o)
	oh, op, _ := net.SplitHostPort(u.Host)
	hh, hp, err := net.SplitHostPort(host)
	if err != nil {
		// No port in Host: the default one of whatever scheme the client
		// used (a TLS proxy in front serves https on 443).
		hh, hp = host, op
		if op != "80" && op != "443" {
			return false
		}
	}
	return hostname(oh) == hostname(hh) && op == hp
}

// canonicalOrigin is scheme://host:port in lower case with the scheme's
// default port made explicit, or false.
func canonicalOrigin(s string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", false
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port), true
}
