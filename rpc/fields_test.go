package rpc

import (
	"encoding/json"
	"testing"
)

func TestFields(t *testing.T) {
	for _, c := range []struct {
		in      string
		op, bdy string // want; "" for absent
		bad     bool
	}{
		{in: `{"op":"put","body":{"a":[1,"}"]}}`, op: `"put"`, bdy: `{"a":[1,"}"]}`},
		{in: ` { "body" : [ 1 , 2 ] , "op" : "x" } `, op: `"x"`, bdy: `[ 1 , 2 ]`},
		{in: `{"op":"a"}`, op: `"a"`},
		{in: `{"op":null,"body":"s\"}"}`, bdy: `"s\"}"`},
		{in: `{}`},
		{in: `{"op":"a","op":"b"}`, bad: true},
		{in: `{"op":"a","Body":1}`, bad: true},
		{in: `{"op":"a","x":1}`, bad: true},
		{in: `{"op":"a"} {}`, bad: true},
		{in: `{"op":"a",}`, bad: true},
		{in: `[1]`, bad: true},
		{in: `"op"`, bad: true},
		{in: ``, bad: true},
		{in: `{"op":"a"`, bad: true},
	} {
		got, err := Fields([]byte(c.in), "op", "body")
		if c.bad {
			if err == nil {
				t.Errorf("Fields(%s) = %q, want an error", c.in, got)
			}
			continue
		}
		if err != nil || string(got[0]) != c.op || string(got[1]) != c.bdy {
			t.Errorf("Fields(%s) = %q, %v; want %s, %s", c.in, got, err, c.op, c.bdy)
		}
	}
}

func TestElements(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: `[]`, want: nil},
		{in: `null`, want: nil},
		{in: `[{"a":"]"},2 , "x",[3]]`, want: []string{`{"a":"]"}`, `2`, `"x"`, `[3]`}},
		{in: `[1,]`, bad: true},
		{in: `[1 2]`, bad: true},
		{in: `{"a":1}`, bad: true},
		{in: `[1]x`, bad: true},
	} {
		got, err := Elements([]byte(c.in))
		if c.bad {
			if err == nil {
				t.Errorf("Elements(%s) = %q, want an error", c.in, got)
			}
			continue
		}
		if err != nil || len(got) != len(c.want) {
			t.Fatalf("Elements(%s) = %q, %v; want %q", c.in, got, err, c.want)
		}
		for i := range got {
			if string(got[i]) != c.want[i] {
				t.Errorf("Elements(%s)[%d] = %s, want %s", c.in, i, got[i], c.want[i])
			}
		}
	}
}

// FuzzFields checks that Fields never panics and agrees with encoding/json on
// what it accepts: every object it splits decodes with json.Unmarshal too.
func FuzzFields(f *testing.F) {
	f.Add([]byte(`{"op":"put","body":{"a":1}}`))
	f.Add([]byte(`[{"x":1},2]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := Fields(b, "op", "body"); err == nil {
			var v struct {
				Op   json.RawMessage `json:"op"`
				Body json.RawMessage `json:"body"`
			}
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("Fields accepted %q, encoding/json refuses it: %v", b, err)
			}
		}
		if _, err := Elements(b); err == nil {
			var v []json.RawMessage
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("Elements accepted %q, encoding/json refuses it: %v", b, err)
			}
		}
	})
}
