package ledger

import (
	"strings"
	"testing"
)

func TestCanonicalDataNumbers(t *testing.T) {
	ok := []string{
		`"99999999999999999999"`, // digits inside a string are not a number
		`{"a\"99999999999999999999": "x\\"}`,
		`[9007199254740992, -9007199254740992, 1.5e300, 0.000001, -0]`,
		`{"n": 1e3}`,
		`[0.1, 123456.789012345, 1.7976931348623157e308, 5e-324]`,
		`[0.1, 123456.789012345, 1.7976931348623157e308, 5e-324]`,
		` [ 1 , 2 ] `,
	}
	for _, s := range ok {
		if _, err := CanonicalData([]byte(s)); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	bad := map[string]string{
		`[1, [2, 9007199254740993]]`:   "cannot be kept exactly",
		`{"a": -12345678901234567890}`: "cannot be kept exactly",
		`1e309`:                        "out of range",
		`12345678901234567890.0`:       "cannot be kept exactly",
		`0.30000000000000000001`:       "cannot be kept exactly",
		`{"a": 1} {"b": 2}`:            "single JSON value",
		`{"a": }`:                      "not valid JSON",
		strings.Repeat("[", MaxDataDepth+1) + strings.Repeat("]", MaxDataDepth+1): "deeper",
	}
	for s, want := range bad {
		if _, err := CanonicalData([]byte(s)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.40s: err = %v, want %q", s, err, want)
		}
	}
	out, err := CanonicalData([]byte(`{"b": [1.0, 2e1], "a": "<&>"}`))
	if err != nil || string(out) != `{"a":"<&>","b":[1,20]}` {
		t.Fatalf("canonical form %s, %v", out, err)
	}
}
