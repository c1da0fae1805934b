package wot

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestReadingOf: which values a device sends are signed readings (objects with
// exactly data and device) and which are readings; malformed envelopes are
// refused with the shape to send.
func TestReadingOf(t *testing.T) {
	key, sig := strings.Repeat("ab", 32), strings.Repeat("cd", 64)
	plain := []string{`1`, `{"data":1}`, `{"device":1}`, `{"data":1,"device":{},"x":2}`, `["data","device"]`, `{"devices":1,"data":2}`}
	for _, v := range plain {
		r, err := readingOf("m", json.RawMessage(v))
		if err != nil || r.Device != nil || string(r.Data) != v {
			t.Errorf("%s: %+v %v, want the value itself as the reading", v, r, err)
		}
	}
	r, err := readingOf("m", json.RawMessage(`{"device":{"key":"`+key+`","sig":"`+sig+`"},"data":{"n":1}}`))
	if err != nil || r.Device == nil || string(r.Data) != `{"n":1}` || r.Thing != "m" {
		t.Fatalf("envelope: %+v %v", r, err)
	}
	for _, v := range []string{
		`{"data":1,"device":{}}`,
		`{"data":null,"device":{"key":"` + key + `","sig":"` + sig + `"}}`,
		`{"data":1,"device":{"key":"` + key + `"}}`,
		`{"data":1,"device":{"key":"xyz","sig":"` + sig + `"}}`,
		`{"data":1,"device":{"key":"` + key + `","sig":"` + sig + `","extra":1}}`,
		`{"data":1,"device":"signed"}`,
	} {
		if _, err := readingOf("m", json.RawMessage(v)); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "a signed reading is") {
			t.Errorf("%s: %v, want a refusal that shows the envelope", v, err)
		}
	}
}

// TestDeclareDeviceKey: the key term's value is checked, and the TD's
// @context gets the flownode prefix unless it binds it already.
func TestDeclareDeviceKey(t *testing.T) {
	key := strings.Repeat("0a", 32)
	td := map[string]any{"@context": "https://www.w3.org/2022/wot/td/v1.1", deviceKeyTerm: key}
	if err := declareDeviceKey(td); err != nil {
		t.Fatal(err)
	}
	ctx, _ := td["@context"].([]any)
	if len(ctx) != 2 || ctx[1].(map[string]any)[tdPrefix] != tdNamespace {
		t.Fatalf("@context %v", td["@context"])
	}
	if err := declareDeviceKey(td); err != nil || len(td["@context"].([]any)) != 2 {
		t.Fatalf("declared twice: %v %v", err, td["@context"])
	}
	other := map[string]any{"@context": []any{"https://www.w3.org/2022/wot/td/v1.1", map[string]any{tdPrefix: "http://example.com/"}}, deviceKeyTerm: key}
	if err := declareDeviceKey(other); !errors.Is(err, ErrBadInput) {
		t.Errorf("prefix bound elsewhere: %v", err)
	}
	for _, bad := range []any{"", key[:62], strings.ToUpper(key), 7, nil} {
		if err := declareDeviceKey(map[string]any{"@context": "x", deviceKeyTerm: bad}); !errors.Is(err, ErrBadInput) {
			t.Errorf("key %v: %v", bad, err)
		}
	}
	none := map[string]any{"@context": "x"}
	if err := declareDeviceKey(none); err != nil || none["@context"] != "x" {
		t.Errorf("a TD without a key changed: %v %v", err, none)
	}
}
