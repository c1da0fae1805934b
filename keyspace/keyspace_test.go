package keyspace

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestTextRoundTripAndErrors(t *testing.T) {
	s := "00112233445566778899AABBCCDDEEFF00112233"
	id, err := Parse(s)
	if err != nil || id.String() != strings.ToLower(s) || id.Short() != "00112233" {
		t.Fatalf("Parse(%s) = %s, %v", s, id, err)
	}
	b, _ := json.Marshal(id)
	var back ID
	if err := json.Unmarshal(b, &back); err != nil || back != id {
		t.Fatalf("JSON round trip: %s %v", b, err)
	}
	for _, bad := range []string{"", "00", strings.Repeat("g", 40), strings.Repeat("0", 41)} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	var zero ID
	if !zero.IsZero() || id.IsZero() || zero.Cmp(id) != -1 || !zero.Less(id) {
		t.Error("zero, Cmp, Less")
	}
	if got := zero.AddPow2(159); got.String() != "8000000000000000000000000000000000000000" {
		t.Errorf("AddPow2(159) = %s", got)
	}
	if got := (ID{19: 0xff}).AddPow2(0); got.String() != "0000000000000000000000000000000000000100" {
		t.Errorf("AddPow2 carries: %s", got)
	}
}
