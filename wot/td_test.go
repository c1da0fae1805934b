package wot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/flownode/flownode/access"
)

// The test oracle: the W3C TD 1.1 JSON Schema, compiled here on its own (not
// through the node's validator), against which every TD served is checked.
var oracleSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	f, err := os.Open("testdata/td-json-schema-validation.json")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("file:///td-schema.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("file:///td-schema.json")
})

// requireValidTD fails the test unless b is a TD valid against the W3C schema
// whose context starts with the TD 1.0 and 1.1 IRIs, and returns it decoded.
func requireValidTD(tb testing.TB, b []byte) map[string]any {
	tb.Helper()
	sch, err := oracleSchema()
	if err != nil {
		tb.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("TD is not JSON: %v\n%s", err, b)
	}
	if err := sch.Validate(inst); err != nil {
		tb.Fatalf("TD is not valid against the W3C schema: %v\n%s", err, b)
	}
	td := inst.(map[string]any)
	return td
}

// testThings is a Things serving HTTP, and CoAP and coaps when coap is set.
func testThings(coap bool) *Things {
	t := &Things{cfg: Config{HTTPAddr: "127.0.0.1:8000"}}
	if coap {
		t.cfg.CoAPAddr = "127.0.0.1:5683"
		t.cfg.CoAPSAddr = "127.0.0.1:5684"
	}
	return t
}

// serveDerived derives, prepares (as the registry stores) and serves a TD.
func serveDerived(tb testing.TB, th *Things, thing, reading string) map[string]any {
	tb.Helper()
	td, err := deriveTD(thing, json.RawMessage(reading))
	if err != nil {
		tb.Fatalf("derive %s: %v", reading, err)
	}
	stored, err := th.prepareTD(thing, td)
	if err != nil {
		tb.Fatalf("prepare TD of %s: %v", reading, err)
	}
	served, err := th.servedTD(thing, stored)
	if err != nil {
		tb.Fatal(err)
	}
	return requireValidTD(tb, served)
}

// TestDerivedTDsAreValid: a TD derived from readings of every shape is valid,
// has one property per top-level member (or "value"), with the JSON type, and
// on every property forms with an explicit op for every protocol served.
func TestDerivedTDsAreValid(t *testing.T) {
	many := map[string]int{}
	for i := 0; i < 100; i++ {
		many[fmt.Sprintf("m%03d", i)] = i
	}
	manyJSON, _ := json.Marshal(many)
	cases := []struct {
		reading string
		types   map[string]string // property → type ("" none)
	}{
		{`{"temperature":21.5,"humidity":40}`, map[string]string{"temperature": "number", "humidity": "integer"}},
		{`{"on":true,"name":"lamp","rgb":[1,2,3],"pos":{"x":1},"none":null,"big":1e3}`,
			map[string]string{"on": "boolean", "name": "string", "rgb": "array", "pos": "object", "none": "", "big": "number"}},
		{`21.5`, map[string]string{"value": "number"}},
		{`-3`, map[string]string{"value": "integer"}},
		{`"open"`, map[string]string{"value": "string"}},
		{`false`, map[string]string{"value": "boolean"}},
		{`[1,"a"]`, map[string]string{"value": "array"}},
		{`null`, map[string]string{"value": ""}},
		{`{}`, map[string]string{}},
		{`{"a b/c?d#e":1,"température":2,"{x}":3,"":4}`, map[string]string{"a b/c?d#e": "integer", "température": "integer", "{x}": "integer"}},
	}
	for _, coap := range []bool{false, true} {
		th := testThings(coap)
		for _, c := range cases {
			td := serveDerived(t, th, "sensor-1", c.reading)
			props := td["properties"].(map[string]any)
			if len(props) != len(c.types) {
				t.Errorf("%s: %d properties, want %d", c.reading, len(props), len(c.types))
			}
			for name, typ := range c.types {
				p, ok := props[name].(map[string]any)
				if !ok {
					t.Errorf("%s: no property %q", c.reading, name)
					continue
				}
				if got, _ := p["type"].(string); got != typ {
					t.Errorf("%s: property %q has type %q, want %q", c.reading, name, got, typ)
				}
				checkPropertyForms(t, th, "sensor-1", name, p)
			}
			checkCommon(t, td, "urn:flownode:thing:sensor-1")
		}
		td := serveDerived(t, th, "urn:dev:ops:32473-lamp", string(manyJSON))
		if n := len(td["properties"].(map[string]any)); n != maxDerivedProperties {
			t.Errorf("a reading of 100 members gave %d properties, want %d", n, maxDerivedProperties)
		}
		checkCommon(t, td, "urn:dev:ops:32473-lamp")
	}
}

// checkCommon checks what every served TD has.
func checkCommon(tb testing.TB, td map[string]any, id string) {
	tb.Helper()
	if td["id"] != id {
		tb.Errorf("id %v, want %s", td["id"], id)
	}
	ctx, _ := td["@context"].([]any)
	if len(ctx) < 2 || ctx[0] != "https://www.w3.org/2019/wot/td/v1" || ctx[1] != "https://www.w3.org/2022/wot/td/v1.1" {
		tb.Errorf("@context %v does not start with the TD 1.0 and 1.1 IRIs", td["@context"])
	}
	if td["security"] == nil || td["securityDefinitions"] == nil || td["title"] == nil {
		tb.Errorf("TD lacks security, securityDefinitions or title")
	}
	coaps := 0
	for _, f := range formList(td["forms"]) {
		m := f.(map[string]any)
		if m["op"] == nil {
			tb.Errorf("Thing-level form without op: %v", f)
		}
		if strings.HasPrefix(m["href"].(string), "coaps://") {
			coaps++
			checkPSKForm(tb, td, m)
		}
	}
	if defs, _ := td["securityDefinitions"].(map[string]any); (defs[pskSecurity] != nil) != (coaps > 0) {
		tb.Errorf("%d coaps forms, and securityDefinitions %v", coaps, defs)
	}
}

// checkPSKForm: a coaps form uses the PSK scheme, which the TD defines.
func checkPSKForm(tb testing.TB, td, form map[string]any) {
	tb.Helper()
	sec, _ := form["security"].([]any)
	if len(sec) != 1 || sec[0] != pskSecurity {
		tb.Errorf("coaps form %v: security %v, want [%s]", form["href"], form["security"], pskSecurity)
	}
	if td == nil {
		return
	}
	def, _ := td["securityDefinitions"].(map[string]any)[pskSecurity].(map[string]any)
	if def["scheme"] != "psk" {
		tb.Errorf("securityDefinitions %s is %v, want the psk scheme", pskSecurity, def)
	}
}

// checkPropertyForms: every op over every protocol the node serves, with
// explicit op, a JSON content type, and the right method.
func checkPropertyForms(tb testing.TB, th *Things, thing, name string, p map[string]any) {
	tb.Helper()
	type key struct{ scheme, op, sub, method string }
	got := map[key]string{}
	for _, f := range formList(p["forms"]) {
		m := f.(map[string]any)
		if strings.HasPrefix(m["href"].(string), "coaps://") {
			checkPSKForm(tb, nil, m)
		}
		if m["contentType"] != ctJSON {
			tb.Errorf("form %v: contentType %v", m, m["contentType"])
		}
		href := m["href"].(string)
		method, _ := m["htv:methodName"].(string)
		if method == "" {
			method, _ = m["cov:method"].(string)
		}
		sub, _ := m["subprotocol"].(string)
		op, _ := m["op"].(string)
		got[key{strings.SplitN(href, ":", 2)[0], op, sub, method}] = href
	}
	httpAddr, coapAddr := th.cfg.HTTPAddr, th.cfg.CoAPAddr
	prop := "http://" + httpAddr + tdPath(thing) + "/properties/" + url.PathEscape(name)
	want := map[key]string{
		{"http", "readproperty", "", "GET"}:            prop,
		{"http", "writeproperty", "", "PUT"}:           prop,
		{"http", "observeproperty", "sse", "GET"}:      prop + "/observable",
		{"http", "observeproperty", "longpoll", "GET"}: prop + "/observable",
	}
	// The device paths carry whole readings and records: Thing-level forms
	// only (checkCommon), never a property's.
	if th.cfg.CoAPAddr != "" {
		want[key{"coap", "readproperty", "", "GET"}] = "coap://" + coapAddr + "" + tdPath(thing) + "/properties/" + url.PathEscape(name)
		want[key{"coap", "observeproperty", "cov:observe", "GET"}] = "coap://" + coapAddr + tdPath(thing) + "/properties/" + url.PathEscape(name)
	}
	if a := th.cfg.CoAPSAddr; a != "" {
		want[key{"coaps", "readproperty", "", "GET"}] = "coaps://" + a + tdPath(thing) + "/properties/" + url.PathEscape(name)
		want[key{"coaps", "observeproperty", "cov:observe", "GET"}] = "coaps://" + a + tdPath(thing) + "/properties/" + url.PathEscape(name)
	}
	for k, href := range want {
		if got[k] != href {
			tb.Errorf("property %q: form %+v is %q, want %q", name, k, got[k], href)
		}
	}
	if len(got) != len(want) {
		tb.Errorf("property %q: %d forms, want %d: %v", name, len(got), len(want), got)
	}
}

// TestDirectoryTDIsValid: the directory's TD is a valid TD of @type
// ThingDirectory, with the things property and the five actions.
func TestDirectoryTDIsValid(t *testing.T) {
	b, err := marshalNoEscape(directoryTD("http://127.0.0.1:8000"))
	if err != nil {
		t.Fatal(err)
	}
	td := requireValidTD(t, b)
	if td["@type"] != "ThingDirectory" {
		t.Errorf("@type %v", td["@type"])
	}
	if _, ok := td["properties"].(map[string]any)["things"]; !ok {
		t.Error("no property things")
	}
	methods := map[string]string{"createThing": "PUT", "createAnonymousThing": "POST", "retrieveThing": "GET",
		"updateThing": "PUT", "partiallyUpdateThing": "PATCH", "deleteThing": "DELETE"}
	actions := td["actions"].(map[string]any)
	for name, method := range methods {
		a, ok := actions[name].(map[string]any)
		if !ok {
			t.Errorf("no action %s", name)
			continue
		}
		f := a["forms"].([]any)[0].(map[string]any)
		if f["htv:methodName"] != method || f["op"] != "invokeaction" {
			t.Errorf("action %s: method %v op %v, want %s invokeaction", name, f["htv:methodName"], f["op"], method)
		}
	}
}

// lampTD is a user's TD in the style of the W3C examples: actions, events,
// its own forms, a security scheme of its own.
const lampTD = `{
  "@context": ["https://www.w3.org/2019/wot/td/v1", "https://www.w3.org/2022/wot/td/v1.1", {"@language": "en"}],
  "id": "urn:dev:ops:32473-WoTLamp-1234",
  "title": "MyLampThing",
  "description": "A lamp",
  "securityDefinitions": {"basic_sc": {"scheme": "basic", "in": "header"}, "nosec_sc": {"scheme": "nosec"}},
  "security": ["nosec_sc"],
  "properties": {
    "status": {"type": "string", "enum": ["on", "off"], "readOnly": false,
      "forms": [{"href": "https://lamp.example.com/status", "op": ["readproperty"]}]},
    "brightness": {"type": "integer", "minimum": 0, "maximum": 100, "unit": "percent"}
  },
  "actions": {"toggle": {"forms": [{"href": "https://lamp.example.com/toggle"}]}},
  "events": {"overheating": {"data": {"type": "string"}, "forms": [{"href": "https://lamp.example.com/oh", "subprotocol": "longpoll"}]}}
}`

// TestUserTDsKeepTheirFormsAndGetOurs: a user's TD keeps its forms, gets
// ours after them, and a served TD written back does not keep a node's forms
// (each node adds its own).
func TestUserTDsKeepTheirFormsAndGetOurs(t *testing.T) {
	th := testThings(true)
	thing := "urn:dev:ops:32473-WoTLamp-1234"
	td, err := decodeTD([]byte(lampTD))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := th.prepareTD(thing, td)
	if err != nil {
		t.Fatal(err)
	}
	served, err := th.servedTD(thing, stored)
	if err != nil {
		t.Fatal(err)
	}
	got := requireValidTD(t, served)
	status := got["properties"].(map[string]any)["status"].(map[string]any)
	forms := status["forms"].([]any)
	if forms[0].(map[string]any)["href"] != "https://lamp.example.com/status" {
		t.Errorf("the user's form is not first: %v", forms[0])
	}
	checkPropertyForms(t, th, thing, "status", map[string]any{"forms": forms[1:]})
	checkPropertyForms(t, th, thing, "brightness", got["properties"].(map[string]any)["brightness"].(map[string]any))

	// Written back (through another node, say): the same stored TD.
	again, err := decodeTD(served)
	if err != nil {
		t.Fatal(err)
	}
	other := &Things{cfg: Config{HTTPAddr: "10.0.0.9:8080", CoAPAddr: "10.0.0.9:5683", CoAPSAddr: "10.0.0.9:5684"}}
	stored2, err := other.prepareTD(thing, again)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := decodeTD(stored)
	b, _ := decodeTD(stored2)
	// The served context gained the CoAP prefix; the rest is as stored.
	b["@context"] = a["@context"]
	if !reflect.DeepEqual(a, b) {
		t.Errorf("a served TD written back is stored differently:\n%s\n%s", stored, stored2)
	}
}

// TestInvalidTDsAreRefused: what the schema refuses is refused, with its reason.
func TestInvalidTDsAreRefused(t *testing.T) {
	th := testThings(false)
	cases := map[string]struct{ td, reason string }{
		"no title":          {`{"@context":"https://www.w3.org/2022/wot/td/v1.1","securityDefinitions":{"s":{"scheme":"nosec"}},"security":"s"}`, "title"},
		"no security":       {`{"@context":"https://www.w3.org/2022/wot/td/v1.1","title":"x"}`, "security"},
		"wrong context":     {`{"@context":"https://example.com/ctx","title":"x","securityDefinitions":{"s":{"scheme":"nosec"}},"security":"s"}`, "@context"},
		"undefined scheme":  {`{"@context":"https://www.w3.org/2022/wot/td/v1.1","title":"x","securityDefinitions":{"s":{"scheme":"nosec"}},"security":"other"}`, `security "other" is not defined`},
		"bad scheme":        {`{"@context":"https://www.w3.org/2022/wot/td/v1.1","title":"x","securityDefinitions":{"s":{"scheme":"magic"}},"security":"s"}`, "securityDefinitions"},
		"property a string": {`{"@context":"https://www.w3.org/2022/wot/td/v1.1","title":"x","securityDefinitions":{"s":{"scheme":"nosec"}},"security":"s","properties":{"p":"hot"}}`, "/properties/p"},
		"bad op":            {`{"@context":"https://www.w3.org/2022/wot/td/v1.1","title":"x","securityDefinitions":{"s":{"scheme":"nosec"}},"security":"s","properties":{"p":{"forms":[{"href":"https://a.example/p","op":"invokeaction"}]}}}`, "/properties/p/forms/0"},
		"bad type":          {`{"@context":"https://www.w3.org/2022/wot/td/v1.1","title":"x","securityDefinitions":{"s":{"scheme":"nosec"}},"security":"s","properties":{"p":{"type":"float"}}}`, "/properties/p/type"},
		"title a number":    {`{"@context":"https://www.w3.org/2022/wot/td/v1.1","title":7,"securityDefinitions":{"s":{"scheme":"nosec"}},"security":"s"}`, "/title"},
		"other id":          {`{"@context":"https://www.w3.org/2022/wot/td/v1.1","id":"urn:other","title":"x","securityDefinitions":{"s":{"scheme":"nosec"}},"security":"s"}`, "does not name Thing"},
	}
	var many strings.Builder
	for i := 0; i <= maxProperties; i++ {
		fmt.Fprintf(&many, `,"p%d":{}`, i)
	}
	cases["too many properties"] = struct{ td, reason string }{
		`{"@context":"https://www.w3.org/2022/wot/td/v1.1","title":"x","securityDefinitions":{"s":{"scheme":"nosec"}},"security":"s","properties":{` + many.String()[1:] + `}}`,
		"at most 256"}
	for name, c := range cases {
		td, err := decodeTD([]byte(c.td))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, err = th.prepareTD("lamp", td)
		if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), c.reason) {
			t.Errorf("%s: got %v, want a bad-input error naming %q", name, err, c.reason)
		}
	}
}

// TestThingIDs: Thing ids and TD ids map onto each other; the reserved
// namespace and invalid ids are refused.
func TestThingIDs(t *testing.T) {
	for thing, tdID := range map[string]string{
		"sensor-1":              "urn:flownode:thing:sensor-1",
		"urn:dev:ops:lamp":      "urn:dev:ops:lamp",
		"urn:uuid:0f3c9b6e-1":   "urn:uuid:0f3c9b6e-1",
		"1a:b":                  "urn:flownode:thing:1a:b",
		"greenhouse.2_north~x":  "urn:flownode:thing:greenhouse.2_north~x",
		"Z9-with-dashes-and-33": "urn:flownode:thing:Z9-with-dashes-and-33",
	} {
		if got := tdIDOf(thing); got != tdID {
			t.Errorf("tdIDOf(%q) = %q, want %q", thing, got, tdID)
		}
		for _, s := range []string{thing, tdID} {
			if got, err := thingIDOf(s); err != nil || got != thing {
				t.Errorf("thingIDOf(%q) = %q, %v; want %q", s, got, err, thing)
			}
		}
	}
	for _, bad := range []string{"", "a/b", "urn:flownode:things", "urn:flownode:x", "-a", "a b", "é", strings.Repeat("a", 201), "urn:flownode:thing:", "urn:flownode:thing:urn:flownode:x"} {
		if _, err := thingIDOf(bad); !errors.Is(err, ErrBadInput) {
			t.Errorf("thingIDOf(%q): %v, want bad input", bad, err)
		}
	}
}

// TestMergePatch: RFC 7396's appendix A examples.
func TestMergePatch(t *testing.T) {
	cases := [][3]string{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`["a","b"]`, `["c","d"]`, `["c","d"]`},
		{`{"a":"b"}`, `["c"]`, `["c"]`},
		{`{"a":"foo"}`, `null`, `null`},
		{`{"a":"foo"}`, `"bar"`, `"bar"`},
		{`{"e":null}`, `{"a":1}`, `{"a":1,"e":null}`},
		{`[1,2]`, `{"a":"b","c":null}`, `{"a":"b"}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
	}
	for _, c := range cases {
		target, _ := decodeOneJSON([]byte(c[0]))
		patch, _ := decodeOneJSON([]byte(c[1]))
		got, _ := marshalNoEscape(mergePatch(target, patch))
		if string(got) != c[2] {
			t.Errorf("merge %s with %s = %s, want %s", c[0], c[1], got, c[2])
		}
	}
}

// TestOurHrefs: the forms a node adds are recognised whatever its address;
// others' forms are not.
func TestOurHrefs(t *testing.T) {
	ours := []string{
		"http://h:1/things/lamp/properties/on", "http://h:1/things/lamp/properties/on/observable",
		"ws://x/object/lamp/viewer", "ws://x/object/lamp/send", "coap://[::1]:5683/object/lamp/send",
		"coap://h/things/lamp/properties/a%20b",
	}
	for _, h := range ours {
		if !isOurHref("lamp", h) {
			t.Errorf("%s is ours", h)
		}
	}
	for _, h := range []string{"https://lamp.example.com/status", "http://h/things/other/properties/on",
		"ws://x/object/lamp/status", "http://h/things/lamp", "mqtt://b/object/lamp/send", "::"} {
		if isOurHref("lamp", h) {
			t.Errorf("%s is not ours", h)
		}
	}
}

// policyStub is an Authorizer that tells its policy, as access.Guard does.
type policyStub struct{ p access.Policy }

func (s policyStub) Authorize(*http.Request, string, access.Scope) error { return nil }
func (s policyStub) Policy() access.Policy                               { return s.p }

// TestServedTDsDeclareCredentials: on a node that asks for credentials, every
// form of ours names the schemes it takes (bearer token in the header or the
// token query parameter; reads none when reads are open), the schemes
// are defined, the user's own forms keep theirs, and the TD stays valid
// against the W3C schema.
func TestServedTDsDeclareCredentials(t *testing.T) {
	for _, openReads := range []bool{true, false} {
		th := testThings(true)
		th.cfg.Authorize = policyStub{access.Policy{OpenReads: openReads}}
		td := serveDerived(t, th, "lamp-1", `{"on":true}`)
		defs := td["securityDefinitions"].(map[string]any)
		for _, name := range []string{bearerHeaderSecurity, bearerQuerySecurity, tokenSecurity} {
			if defs[name] == nil {
				t.Fatalf("openReads=%v: %s is not defined: %v", openReads, name, defs)
			}
		}
		if q := defs[bearerQuerySecurity].(map[string]any); q["in"] != "query" || q["name"] != "token" {
			t.Errorf("query scheme: %v", q)
		}
		forms := formList(td["forms"])
		for _, p := range td["properties"].(map[string]any) {
			forms = append(forms, formList(p.(map[string]any)["forms"])...)
		}
		for _, f := range forms {
			m := f.(map[string]any)
			sec := fmt.Sprint(m["security"])
			want := "[" + tokenSecurity + "]"
			switch href := m["href"].(string); {
			case strings.HasPrefix(href, "coap://") && (!readOps[m["op"].(string)] || !openReads):
				t.Errorf("openReads=%v: plain CoAP form %v %v on a node that asks for credentials", openReads, m["op"], href)
			case strings.HasPrefix(href, "coaps://"):
				want = "[" + pskSecurity + "]" // a DTLS session needs its PSK, reads too
			case readOps[m["op"].(string)] && openReads:
				want = "[" + noSecurity + "]"
			}
			if sec != want {
				t.Errorf("openReads=%v: form %v %v has security %s, want %s", openReads, m["op"], m["href"], sec, want)
			}
		}
	}
	// A user's form keeps its own security (none set: the TD's top level).
	th := testThings(false)
	th.cfg.Authorize = policyStub{access.Policy{OpenReads: true}}
	user := map[string]any{
		"@context": "https://www.w3.org/2022/wot/td/v1.1", "title": "lamp",
		"securityDefinitions": map[string]any{"basic_sc": map[string]any{"scheme": "basic", "in": "header"}},
		"security":            "basic_sc",
		"properties": map[string]any{"on": map[string]any{"type": "boolean",
			"forms": []any{map[string]any{"href": "https://lamp.example/on"}}}},
	}
	stored, err := th.prepareTD("lamp-2", user)
	if err != nil {
		t.Fatal(err)
	}
	served, err := th.servedTD("lamp-2", stored)
	if err != nil {
		t.Fatal(err)
	}
	td := requireValidTD(t, served)
	own := formList(td["properties"].(map[string]any)["on"].(map[string]any)["forms"])[0].(map[string]any)
	if own["href"] != "https://lamp.example/on" || own["security"] != nil {
		t.Errorf("the user's form changed: %v", own)
	}
	if td["securityDefinitions"].(map[string]any)["basic_sc"] == nil {
		t.Error("the user's scheme is gone")
	}
}
