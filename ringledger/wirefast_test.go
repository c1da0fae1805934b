package ringledger

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/flownode/flownode/ledger"
)

// The hand-written codec of replicate bodies writes what encoding/json writes
// and reads it back as decodeStrict would.
func TestReplicateBodyCodec(t *testing.T) {
	rec := json.RawMessage(`{"a":"x\"}","b":[1,2]}`)
	var pos ledger.Key
	pos[0], pos[19] = 0xab, 0x01
	bodies := []replicateBody{
		{},
		{Records: []json.RawMessage{rec, rec}},
		{Pointers: []wirePointer{{TxID: ledger.Hash{1}, Key: pos}, {TxID: ledger.Hash{2}, Key: pos, Time: 42}}},
		{History: []wireHistory{{Pos: pos, Record: rec}}},
		{Records: []json.RawMessage{rec}, Pointers: []wirePointer{{TxID: ledger.Hash{3}}}, History: []wireHistory{{Pos: pos, Record: rec}, {Record: rec}}},
	}
	for _, b := range bodies {
		want, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.appendJSON(nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("appendJSON = %s, %v\nencoding/json: %s", got, err, want)
		}
		back, err := decodeReplicateBody(got)
		if err != nil {
			t.Fatalf("decode %s: %v", got, err)
		}
		var strict replicateBody
		if err := decodeStrict(got, &strict); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, strict) {
			t.Fatalf("decodeReplicateBody(%s) = %+v, decodeStrict: %+v", got, back, strict)
		}
	}
	for _, bad := range []string{`{"records":[1,]}`, `{"record":[]}`, `{"history":[{"pos":"zz","record":1}]}`,
		`{"history":[{"record":1}]}`, `{"history":[{"pos":"` + pos.String() + `","record":1,"x":2}]}`, `{"pointers":[{"t":1}]}`, `[]`} {
		if b, err := decodeReplicateBody([]byte(bad)); err == nil {
			t.Errorf("decodeReplicateBody(%s) = %+v, want an error", bad, b)
		}
	}
}

// FuzzDecodeReplicateBody: whatever the bytes, decodeReplicateBody never
// panics, and what it accepts decodeStrict accepts too, with the same result.
func FuzzDecodeReplicateBody(f *testing.F) {
	f.Add([]byte(`{"records":[{"a":1}],"pointers":[{"t":"` + ledger.Hash{1}.String() + `","k":"` + ledger.Key{2}.String() + `"}],"history":[{"pos":"` + ledger.Key{3}.String() + `","record":{"b":2}}]}`))
	f.Add([]byte(`{"history":[{"pos":"zz","record":1}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, err := decodeReplicateBody(raw)
		if err != nil {
			return
		}
		var strict replicateBody
		if err := decodeStrict(raw, &strict); err != nil {
			t.Fatalf("decodeReplicateBody accepted %q, decodeStrict refuses it: %v", raw, err)
		}
		if !reflect.DeepEqual(compactBody(b), compactBody(strict)) {
			t.Fatalf("%q: %+v, decodeStrict: %+v", raw, b, strict)
		}
	})
}

// compactBody normalises raw values (whitespace) for comparison.
func compactBody(b replicateBody) replicateBody {
	c := func(v json.RawMessage) json.RawMessage {
		var buf bytes.Buffer
		if json.Compact(&buf, v) != nil {
			return v
		}
		return buf.Bytes()
	}
	for i := range b.Records {
		b.Records[i] = c(b.Records[i])
	}
	for i := range b.History {
		b.History[i].Record = c(b.History[i].Record)
	}
	return b
}
