package wot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/flownode/flownode/ledger"
)

// A Thing Description is handled as its decoded JSON object (numbers kept as
// json.Number, so that a TD stored and served again keeps its numbers' text).
// The TD stored on the ring is node-independent: it has no forms of ours.
// Each node adds the forms of the protocols it serves when it serves it
// (forms.go).

// tdContext is the @context of the TDs flownode makes: the TD 1.0 IRI first,
// then the TD 1.1 one (node-wot 0.9 refuses a TD whose context is only the
// 1.1 IRI), then the SOSA prefix, which the derived TDs' @type uses.
func tdContext() []any {
	return []any{
		"https://www.w3.org/2019/wot/td/v1",
		"https://www.w3.org/2022/wot/td/v1.1",
		map[string]any{"sosa": "http://www.w3.org/ns/sosa/"},
	}
}

// The one security scheme of this issue: none. Device credentials come next.
const noSecurity = "nosec_sc"

func noSecurityDefinitions() map[string]any {
	return map[string]any{noSecurity: map[string]any{"scheme": "nosec"}}
}

// thingIRIPrefix makes a TD id (which must be an IRI) of a Thing id that is not one.
const thingIRIPrefix = "urn:flownode:thing:"

// reservedPrefix names flownode's own Things (the registry's records, the TD
// ids above); no client Thing may use it.
const reservedPrefix = "urn:flownode:"

// iriScheme matches the scheme of an absolute IRI among the characters a
// Thing id may hold (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":").
var iriScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9.-]*:`)

// tdIDOf returns the TD id of a Thing: the Thing id itself when it is an
// absolute IRI (a URN such as urn:dev:ops:lamp-1 or urn:uuid:...), else
// urn:flownode:thing:<id>. The Thing id is what paths and records name.
func tdIDOf(thing string) string {
	if iriScheme.MatchString(thing) {
		return thing
	}
	return thingIRIPrefix + thing
}

// thingIDOf returns the Thing id a path or a TD names: a Thing id, or the TD
// id of one (urn:flownode:thing:<id>). It refuses what cannot name a Thing.
func thingIDOf(s string) (string, error) {
	id := strings.TrimPrefix(s, thingIRIPrefix)
	if err := checkThingID(id); err != nil {
		return "", err
	}
	return id, nil
}

// checkThingID refuses what cannot name a client's Thing: an invalid Thing id
// (ledger.ValidThingID: 1-200 letters, digits, '.', '_', ':', '~', '-'; URNs
// fit) or one in flownode's reserved urn:flownode: namespace. The error wraps
// ErrBadInput.
func checkThingID(id string) error {
	if err := ledger.ValidThingID(id); err != nil {
		return fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	if strings.HasPrefix(id, reservedPrefix) {
		return fmt.Errorf("%w: thing id %q is in the urn:flownode: namespace, which flownode keeps for itself", ErrBadInput, id)
	}
	return nil
}

// maxDerivedProperties bounds the properties a TD derived from a reading gets:
// the first ones in name order.
const maxDerivedProperties = 64

// deriveTD makes the TD of a Thing first seen through a reading: one property
// per top-level member of an object reading, with that member's JSON type, or
// one property "value" for any other JSON value.
func deriveTD(thing string, value json.RawMessage) (map[string]any, error) {
	v, err := decodeOneJSON(value)
	if err != nil {
		return nil, fmt.Errorf("%w: the reading is not JSON: %v", ErrBadInput, err)
	}
	props := map[string]any{}
	if obj, ok := v.(map[string]any); ok {
		names := make([]string, 0, len(obj))
		for name := range obj {
			if name != "" { // a property needs a name: it is a path segment
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, name := range names[:min(len(names), maxDerivedProperties)] {
			props[name] = derivedProperty(obj[name])
		}
	} else {
		props["value"] = derivedProperty(v)
	}
	return map[string]any{
		"@context":            tdContext(),
		"@type":               "sosa:Sensor",
		"id":                  tdIDOf(thing),
		"title":               thing,
		"description":         "A device's Thing, described from the shape of its first reading.",
		"securityDefinitions": noSecurityDefinitions(),
		"security":            noSecurity,
		"properties":          props,
	}, nil
}

// propertyOf describes one value: its JSON type (a null gives none), and that
// it is observable (every write is a reading that observers get).
func derivedProperty(v any) map[string]any {
	p := map[string]any{"observable": true}
	if t := tdDataType(v); t != "" {
		p["type"] = t
	}
	return p
}

// jsonType names a decoded value's type as TD data schemas do: an integer is
// a number written without fraction or exponent.
func tdDataType(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		if strings.ContainsAny(string(x), ".eE") {
			return "number"
		}
		return "integer"
	}
	return ""
}

// decodeJSON decodes one JSON value, numbers as json.Number, refusing
// trailing data.
func decodeOneJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one JSON value")
	}
	return v, nil
}

// decodeTD decodes a TD's bytes, which must be one JSON object.
func decodeTD(b []byte) (map[string]any, error) {
	v, err := decodeOneJSON(b)
	if err != nil {
		return nil, err
	}
	td, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("a Thing Description is a JSON object")
	}
	return td, nil
}

// encodeJSON encodes v without HTML escaping (TDs hold URLs with '&').
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// directoryTD is the TD of this node's Thing Description Directory (WoT
// Discovery 1.0 §7.3.2, after the specification's example directory TD): the
// property "things" lists every TD of the ring, the actions create, retrieve,
// update, patch and delete one. base is the node's HTTP origin.
func directoryTD(base string) map[string]any {
	idVar := map[string]any{"id": map[string]any{
		"@type": "ThingID", "title": "Thing Description ID", "type": "string", "format": "iri-reference",
	}}
	errorAnswer := func(code int, what string) map[string]any {
		return map[string]any{"description": what, "contentType": ctJSON, "success": false, "htv:statusCodeValue": code}
	}
	invalid := errorAnswer(400, "Invalid input: the error says why")
	notFound := errorAnswer(404, "No Thing with this id")
	action := func(description, method, href, input string, status int, more map[string]any, errs ...map[string]any) map[string]any {
		f := map[string]any{
			"href": href, "op": "invokeaction", "htv:methodName": method,
			"response":            map[string]any{"description": "Success", "htv:statusCodeValue": status},
			"additionalResponses": append([]any{}, anyMaps(errs)...),
		}
		if input != "" {
			f["contentType"] = input
		}
		a := map[string]any{"description": description, "forms": []any{f}}
		for k, v := range more {
			a[k] = v
		}
		return a
	}
	tdInput := map[string]any{"description": "A Thing Description", "type": "object"}
	return map[string]any{
		"@context": []any{
			"https://www.w3.org/2019/wot/td/v1",
			"https://www.w3.org/2022/wot/td/v1.1",
			"https://www.w3.org/2022/wot/discovery",
			map[string]any{"htv": "http://www.w3.org/2011/http#"},
		},
		"@type":               "ThingDirectory",
		"title":               "flownode Thing Description Directory",
		"description":         "The Thing Descriptions of every Thing of this flownode ring, kept on the ring; any node answers for all.",
		"version":             map[string]any{"instance": "1.0.0"},
		"base":                base + "/",
		"securityDefinitions": noSecurityDefinitions(),
		"security":            noSecurity,
		"properties": map[string]any{"things": map[string]any{
			"description": "Every Thing Description of the ring, in id order, a page at a time (the Link header names the next page)",
			"uriVariables": map[string]any{
				"offset": map[string]any{"title": "Number of TDs to skip before the page", "type": "integer", "minimum": 0, "default": 0},
				"limit":  map[string]any{"title": "Number of TDs in a page", "type": "integer", "minimum": 1, "maximum": maxListLimit, "default": defaultListLimit},
				"format": map[string]any{"title": "Payload format", "type": "string", "enum": []any{"array"}, "default": "array"},
			},
			"readOnly": true, "type": "array", "items": map[string]any{"type": "object"},
			"forms": []any{map[string]any{
				"href": "things{?offset,limit,format}", "op": "readproperty", "htv:methodName": "GET",
				"contentType":         "application/ld+json",
				"response":            map[string]any{"description": "Success", "contentType": "application/ld+json", "htv:statusCodeValue": 200},
				"additionalResponses": []any{invalid},
			}},
		}},
		"actions": map[string]any{
			"createThing": action("Create a Thing Description with its id (PUT on a new id: 201)", "PUT", "things/{id}", ctTD, 201,
				map[string]any{"uriVariables": idVar, "input": tdInput, "idempotent": true}, invalid),
			"createAnonymousThing": action("Create a Thing Description; one without an id gets a urn:uuid id (201, Location names it)", "POST", "things", ctTD, 201,
				map[string]any{"input": tdInput}, invalid, errorAnswer(409, "A Thing with this id exists already: PUT replaces it")),
			"retrieveThing": action("Retrieve a Thing Description, with forms for this node", "GET", "things/{id}", "", 200,
				map[string]any{"uriVariables": idVar, "output": tdInput, "safe": true, "idempotent": true}, notFound),
			"updateThing": action("Replace a Thing Description (PUT on an existing id: 204)", "PUT", "things/{id}", ctTD, 204,
				map[string]any{"uriVariables": idVar, "input": tdInput, "idempotent": true}, invalid),
			"partiallyUpdateThing": action("Update a Thing Description with a JSON Merge Patch (RFC 7396); the result must be valid", "PATCH", "things/{id}", ctMergePatch, 204,
				map[string]any{"uriVariables": idVar, "input": map[string]any{"type": "object"}}, invalid, notFound),
			"deleteThing": action("Delete a Thing Description", "DELETE", "things/{id}", "", 204,
				map[string]any{"uriVariables": idVar, "idempotent": true}, notFound),
		},
	}
}

func anyMaps(ms []map[string]any) []any {
	out := make([]any, len(ms))
	for i, m := range ms {
		out[i] = m
	}
	return out
}

// Media types of the directory.
const (
	ctTD         = "application/td+json"
	ctLD         = "application/ld+json"
	ctMergePatch = "application/merge-patch+json"
)
