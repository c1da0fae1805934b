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

const (
	ctJSON = "application/json"
	// covPrefix is the CoAP binding's vocabulary (cov:method, cov:observe).
	covPrefix = "http://www.example.org/coap-binding#"
)

// formBases are the origins this node serves at.
type formBases struct {
	http, ws, coap string // "" for coap when the node serves no CoAP
}

func (t *Things) bases() formBases {
	b := formBases{http: "http://" + t.cfg.HTTPAddr, ws: "ws://" + t.cfg.HTTPAddr}
	if t.cfg.CoAPAddr != "" {
		b.coap = "coap://" + t.cfg.CoAPAddr
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
			if b.coap != "" {
				forms = append(forms,
					tdForm(b.coap+path, "readproperty", "cov:method", "GET"),
					withSubprotocol(tdForm(b.coap+path, "observeproperty", "cov:method", "GET"), "cov:observe"),
				)
			}
			prop["forms"] = append(formList(prop["forms"]), secure(forms, read, write)...)
		}
	}
	forms := []any{
		tdForm(b.ws+object+"/viewer", "observeallproperties", "", ""),
		tdForm(b.ws+object+"/send", "writemultipleproperties", "", ""),
	}
	if b.coap != "" {
		forms = append(forms,
			withSubprotocol(tdForm(b.coap+object+"/viewer", "observeallproperties", "cov:method", "GET"), "cov:observe"),
			tdForm(b.coap+object+"/send", "writemultipleproperties", "cov:method", "POST"),
		)
		td["@context"] = withPrefix(td["@context"], "cov", covPrefix)
	}
	td["forms"] = append(formList(td["forms"]), secure(forms, read, write)...)
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

// secure names on each of our forms the schemes its operation asks for.
func secure(forms []any, read, write []any) []any {
	if read == nil {
		return forms
	}
	for _, f := range forms {
		m := f.(map[string]any)
		if op, _ := m["op"].(string); readOps[op] {
			m["security"] = read
		} else {
			m["security"] = write
		}
	}
	return forms
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
