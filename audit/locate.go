package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// locateDiff names the first field where a line's bytes differ from the
// encoding flownode writes of what they parse to (want): a hex digit in the
// other case, a renamed field, a space. It walks both as JSON trees; "" when
// only the spacing between fields differs.
func locateDiff(got, want []byte) string {
	return diffJSON("", got, want)
}

func diffJSON(path string, got, want []byte) string {
	got, want = bytes.TrimSpace(got), bytes.TrimSpace(want)
	if bytes.Equal(got, want) {
		return ""
	}
	switch {
	case len(want) > 0 && want[0] == '{' && len(got) > 0 && got[0] == '{':
		gk, gv, gerr := objectFields(got)
		wk, wv, werr := objectFields(want)
		if gerr != nil || werr != nil {
			return orRoot(path)
		}
		for _, k := range wk {
			v, ok := gv[k]
			if !ok {
				return join(path, k)
			}
			if p := diffJSON(join(path, k), v, wv[k]); p != "" {
				return p
			}
		}
		for _, k := range gk {
			if _, ok := wv[k]; !ok {
				return join(path, k)
			}
		}
		return ""
	case len(want) > 0 && want[0] == '[' && len(got) > 0 && got[0] == '[':
		var ga, wa []json.RawMessage
		if json.Unmarshal(got, &ga) != nil || json.Unmarshal(want, &wa) != nil || len(ga) != len(wa) {
			return orRoot(path)
		}
		for i := range wa {
			if p := diffJSON(fmt.Sprintf("%s[%d]", path, i), ga[i], wa[i]); p != "" {
				return p
			}
		}
		return ""
	}
	return orRoot(path)
}

// objectFields decodes a JSON object's fields in order.
func objectFields(b []byte) ([]string, map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return nil, nil, err
	}
	var keys []string
	vals := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		if _, dup := vals[k]; dup {
			return nil, nil, fmt.Errorf("field %q twice", k)
		}
		keys = append(keys, k)
		vals[k] = v
	}
	if _, err := dec.Token(); err != nil && err != io.EOF {
		return nil, nil, err
	}
	return keys, vals, nil
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func orRoot(path string) string {
	if path == "" {
		return "the line"
	}
	return path
}

// locateDecode names the field of a JSON object that does not decode into a
// fresh value of newV's type: the first field that fails on its own, then the
// element of an array, then the field of that element ("branches[1].membership").
// "" when no single field fails (the object as a whole is wrong).
func locateDecode(body []byte, newV func() any) string {
	keys, vals, err := objectFields(body)
	if err != nil {
		return ""
	}
	try := func(obj map[string]any) bool {
		b, err := json.Marshal(obj)
		return err == nil && decodeStrict(b, newV()) != nil
	}
	for _, k := range keys {
		if !try(map[string]any{k: vals[k]}) {
			continue
		}
		var elems []json.RawMessage
		if json.Unmarshal(vals[k], &elems) != nil {
			return k
		}
		for i, e := range elems {
			if !try(map[string]any{k: []json.RawMessage{e}}) {
				continue
			}
			ek, ev, err := objectFields(e)
			if err != nil {
				return fmt.Sprintf("%s[%d]", k, i)
			}
			for _, sk := range ek {
				if try(map[string]any{k: []map[string]json.RawMessage{{sk: ev[sk]}}}) {
					return fmt.Sprintf("%s[%d].%s", k, i, sk)
				}
			}
			return fmt.Sprintf("%s[%d]", k, i)
		}
		return k
	}
	return ""
}

// decodeAt decodes body strictly into v; on failure it names the field.
func decodeAt(where string, body []byte, v any, newV func() any) *failure {
	err := decodeStrict(body, v)
	if err == nil {
		return nil
	}
	if field := locateDecode(body, newV); field != "" {
		if strings.HasSuffix(where, "]") {
			where += "." + field // covers[3].leaf
		} else {
			where += ": " + field
		}
	}
	return fail(where, err)
}
