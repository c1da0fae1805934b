package wot

import (
	"net/url"
	"strings"

	"github.com/flownode/flownode/access"
)

// The forms a node adds to the TDs it serves: for every property, one per
// operation and protocol it serves, each with an explicit op; and the
// Thing-level ones. The paths are the live side's (properties.go, devices.go,
// wot/coap):
//
//	HTTP      /things/{id}/properties/{name}             readproperty (GET), writeproperty (PUT)
//	          /things/{id}/properties/{name}/observable  observeproperty: SSE or long-poll
//	WebSocket /object/{id}/viewer                        observeallproperties (each record)
//	          /object/{id}/send                          writemultipleproperties (each frame a reading)
//	CoAP      /things/{id}/properties/{name}             readproperty (GET), observeproperty (Observe)
//	          /object/{id}/send                          writemultipleproperties (POST)
//	          /object/{id}/viewer                        observeallproperties (Observe)
//	CoAPS     the CoAP ones, over DTLS with a pre-shared key: each form says
//	          security pskSecurity, defined in securityDefinitions

const (
	ctJSON = "application/json"
	// covPrefix is the CoAP binding's vocabulary (cov:method, cov:observe).
	covPrefix = "http://www.example.org/coap-binding#"
	// pskSecurity names the security scheme of the coaps forms: DTLS PSK
	// (TD 1.1 "psk"). The identity is the device's own, given with its
	// credential, so the scheme names none.
	pskSecurity = "flownode_psk_sc"
)

// pskScheme is the securityDefinitions entry of pskSecurity.
func pskScheme() map[string]any {
	return map[string]any{"scheme": "psk",
		"description": "DTLS 1.2 with a pre-shared key (RFC 4279, RFC 7925): the device's PSK identity and key, as its credential gives them"}
}

// formBases are the origins this node serves at.
type formBases struct {
	http, ws, coap string // "" for coap when the node serves no CoAP
	coaps          string // "" when the node serves no coaps port
}

func (t *Things) bases() formBases {
	b := formBases{http: "http://" + t.cfg.HTTPAddr, ws: "ws://" + t.cfg.HTTPAddr}
	if t.cfg.CoAPAddr != "" {
		b.coap = "coap://" + t.cfg.CoAPAddr
	}
	if t.cfg.CoAPSAddr != "" {
		b.coaps = "coaps://" + t.cfg.CoAPSAddr
	}
	return b
}

// addForms turns a stored TD into the TD this node serves: forms of ours on
// every property and at Thing level, after the user's own, and the CoAP
// binding's prefix in the context when CoAP forms are added. td is modified.
func (t *Things) addForms(thing string, td map[string]any) {
	b := t.bases()
	read, write := t.formSecurity(td)
	id := url.PathEscape(thing)
	object := "/object/" + id
	if props, ok := td["properties"].(map[string]any); ok {
		for name, p := range props {
			prop, ok := p.(map[string]any)
			if !ok {
				continue // not a property: the validator says so
			}
			path := "/things/" + id + "/properties/" + url.PathEscape(name)
			forms := []any{
				tdForm(b.http+path, "readproperty", "htv:methodName", "GET"),
				tdForm(b.http+path, "writeproperty", "htv:methodName", "PUT"),
				withSubprotocol(tdForm(b.http+path+"/observable", "observeproperty", "htv:methodName", "GET"), "sse"),
				withSubprotocol(tdForm(b.http+path+"/observable", "observeproperty", "htv:methodName", "GET"), "longpoll"),
			}
			// The device paths (/object/{id}/send, /viewer) carry whole
			// readings and records, not one property's value: they are
			// Thing-level forms below. CoAP observes a property where it is
			// read, and its notifications carry the bare value.
			for _, base := range []string{b.coap, b.coaps} {
				if base != "" {
					forms = append(forms,
						tdForm(base+path, "readproperty", "cov:method", "GET"),
						withSubprotocol(tdForm(base+path, "observeproperty", "cov:method", "GET"), "cov:observe"),
					)
				}
			}
			prop["forms"] = append(formList(prop["forms"]), secure(forms, read, write)...)
		}
	}
	forms := []any{
		tdForm(b.ws+object+"/viewer", "observeallproperties", "", ""),
		tdForm(b.ws+object+"/send", "writemultipleproperties", "", ""),
	}
	for _, base := range []string{b.coap, b.coaps} {
		if base != "" {
			forms = append(forms,
				withSubprotocol(tdForm(base+object+"/viewer", "observeallproperties", "cov:method", "GET"), "cov:observe"),
				tdForm(base+object+"/send", "writemultipleproperties", "cov:method", "POST"),
			)
			td["@context"] = withPrefix(td["@context"], "cov", covPrefix)
		}
	}
	td["forms"] = append(formList(td["forms"]), secure(forms, read, write)...)
	if b.coaps != "" {
		withPSK(td, b.coaps+"/")
	}
}

// The security schemes of the node's forms (package access): a bearer token
// in the Authorization header or, for devices and browsers' WebSockets that
// cannot set one, in the token query parameter.
const (
	bearerHeaderSecurity = "flownode_bearer_sc"
	bearerQuerySecurity  = "flownode_bearer_query_sc"
	tokenSecurity        = "flownode_token_sc" // either of the two
)

// policyOf is what an Authorizer that says its policy (access.Guard) tells
// the TD.
type policyOf interface{ Policy() access.Policy }

// formSecurity defines in td the schemes this node's forms ask for and
// returns the names that reads and writes name: nil when the node asks for
// nothing (no Authorizer), so that the forms keep the TD's own "security".
func (t *Things) formSecurity(td map[string]any) (read, write []any) {
	if t.cfg.Authorize == nil {
		return nil, nil
	}
	defs, _ := td["securityDefinitions"].(map[string]any)
	if defs == nil {
		defs = map[string]any{}
		td["securityDefinitions"] = defs
	}
	bearer := func(in, name string) map[string]any {
		return map[string]any{"scheme": "bearer", "in": in, "name": name, "alg": "EdDSA", "format": "flownode-token",
			"description": "A token the network's authority signed (flownode token create); tokens start fn1."}
	}
	defs[bearerHeaderSecurity] = bearer("header", "Authorization")
	defs[bearerQuerySecurity] = bearer("query", "token")
	defs[tokenSecurity] = map[string]any{"scheme": "combo", "oneOf": []any{bearerHeaderSecurity, bearerQuerySecurity}}
	write = []any{tokenSecurity}
	read = write
	if p, ok := t.cfg.Authorize.(policyOf); ok && p.Policy().OpenReads {
		defs[noSecurity] = map[string]any{"scheme": "nosec"}
		read = []any{noSecurity}
	}
	return read, write
}

// readOps are the operations that only read.
var readOps = map[string]bool{"readproperty": true, "observeproperty": true, "observeallproperties": true,
	"readallproperties": true, "readmultipleproperties": true}

// secure names on each of our forms the schemes its operation asks for. A
// plain coap:// form cannot carry a credential (CoAP has no bearer token;
// devices with credentials use coaps://), so on a node that asks for one,
// plain CoAP keeps only the reads that need none, and no writes: a TD never
// offers a form its client could not use.
func secure(forms []any, read, write []any) []any {
	if read == nil {
		return forms
	}
	open := len(read) == 1 && read[0] == noSecurity
	kept := forms[:0]
	for _, f := range forms {
		m := f.(map[string]any)
		isRead := readOps[m["op"].(string)]
		if href, _ := m["href"].(string); strings.HasPrefix(href, "coap://") && (!isRead || !open) {
			continue
		}
		if isRead {
			m["security"] = read
		} else {
			m["security"] = write
		}
		kept = append(kept, m)
	}
	return kept
}

// withPSK defines pskSecurity in td's securityDefinitions and makes every
// form of ours on the coaps port (base, Thing-level and of its properties)
// use it: a form's security overrides the Thing's (TD 1.1 §5.3.4.2).
func withPSK(td map[string]any, base string) {
	defs, ok := td["securityDefinitions"].(map[string]any)
	if !ok {
		return // no definitions: the validator refuses the TD
	}
	defs[pskSecurity] = pskScheme()
	mark := func(forms any) {
		for _, f := range formList(forms) {
			if m, ok := f.(map[string]any); ok {
				if href, _ := m["href"].(string); strings.HasPrefix(href, base) {
					m["security"] = []any{pskSecurity}
				}
			}
		}
	}
	mark(td["forms"])
	if props, ok := td["properties"].(map[string]any); ok {
		for _, p := range props {
			if prop, ok := p.(map[string]any); ok {
				mark(prop["forms"])
			}
		}
	}
}

// form is one form: href, op, content type, and a protocol's method term.
func tdForm(href, op, methodTerm, method string) map[string]any {
	f := map[string]any{"href": href, "op": op, "contentType": ctJSON}
	if methodTerm != "" {
		f[methodTerm] = method
	}
	return f
}

func withSubprotocol(f map[string]any, sub string) map[string]any {
	f["subprotocol"] = sub
	return f
}

// anyList returns v as a list when it is one (the user's forms), else none.
func formList(v any) []any {
	l, _ := v.([]any)
	return l
}

// withPrefix returns a JSON-LD context that defines prefix: ctx as it is when
// one of its objects already does, else ctx with {prefix: iri} appended.
func withPrefix(ctx any, prefix, iri string) any {
	var list []any
	switch c := ctx.(type) {
	case []any:
		for _, item := range c {
			if m, ok := item.(map[string]any); ok && m[prefix] != nil {
				return ctx
			}
		}
		list = append(list, c...)
	case nil:
		return ctx // no context: the validator refuses the TD
	default:
		list = []any{c}
	}
	return append(list, map[string]any{prefix: iri})
}

// stripOurForms removes from a TD about to be stored the forms that point at
// the paths flownode serves for this Thing, on any node: a TD read from one
// node and written back must not keep that node's forms, since every node
// adds its own when it serves the TD. The user's other forms stay.
func stripOurForms(thing string, td map[string]any) {
	if props, ok := td["properties"].(map[string]any); ok {
		for _, p := range props {
			if prop, ok := p.(map[string]any); ok {
				stripFormsIn(thing, prop)
			}
		}
	}
	stripFormsIn(thing, td)
	// Our PSK scheme goes with our forms, unless the TD itself uses it.
	if defs, ok := td["securityDefinitions"].(map[string]any); ok && defs[pskSecurity] != nil && !usesSecurity(td["security"], pskSecurity) {
		delete(defs, pskSecurity)
	}
}

// usesSecurity reports whether a "security" value (a name or a list of
// them) names name.
func usesSecurity(v any, name string) bool {
	switch s := v.(type) {
	case string:
		return s == name
	case []any:
		for _, x := range s {
			if x == name {
				return true
			}
		}
	}
	return false
}

func stripFormsIn(thing string, holder map[string]any) {
	forms, ok := holder["forms"].([]any)
	if !ok {
		return
	}
	kept := forms[:0:0]
	for _, f := range forms {
		if m, ok := f.(map[string]any); ok {
			if href, ok := m["href"].(string); ok && isOurHref(thing, href) {
				continue
			}
		}
		kept = append(kept, f)
	}
	if len(kept) == 0 {
		delete(holder, "forms")
		return
	}
	holder["forms"] = kept
}

// isOurHref reports whether href is one of the URLs addForms makes for thing,
// whatever the node's address.
func isOurHref(thing, href string) bool {
	u, err := url.Parse(href)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss", "coap", "coaps":
	default:
		return false
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	switch {
	case len(parts) == 3 && parts[0] == "object" && parts[1] == thing:
		return parts[2] == "viewer" || parts[2] == "send"
	case len(parts) >= 4 && len(parts) <= 5 && parts[0] == "things" && parts[1] == thing && parts[2] == "properties":
		return len(parts) == 4 || parts[4] == "observable"
	}
	return false
}
