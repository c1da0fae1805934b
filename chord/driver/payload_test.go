package driver

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/flownode/flownode/chord"
)

// payloadSeeds are payloads the ring sends, and a few it never does.
func payloadSeeds() []chord.Payload {
	a := chord.Peer{ID: chord.HashKey([]byte("a")), Addr: "ws://127.0.0.1:8001"}
	b := chord.Peer{ID: chord.HashKey([]byte("b")), Addr: "coap://[::1]:5683"}
	return []chord.Payload{
		{},
		{Done: true, Owner: a, Succs: []chord.Peer{b, a}, Pred: b},
		{Next: []chord.Peer{a, b}, Pred: a},
		{Pred: a, Succs: []chord.Peer{a, b}, Hint: b},
		{Succs: []chord.Peer{{Addr: "ws://x:1"}}},                // a zero ID in a list is written
		{Pred: chord.Peer{Addr: "ws://y:2"}, Owner: a},           // a zero Pred is not
		{Owner: chord.Peer{ID: a.ID, Addr: "ws://a<b>&c:1"}},     // escaped by encoding/json
		{Owner: chord.Peer{ID: a.ID, Addr: "ws://\"\\\n\xff:1"}}, // escaped, invalid UTF-8
		{Data: json.RawMessage(`{"x": "<1>"}`)},
	}
}

// encodePayload writes what json.Marshal writes.
func FuzzPayloadEncode(f *testing.F) {
	for _, p := range payloadSeeds() {
		f.Add(p.Pred.ID[:], p.Owner.Addr, len(p.Succs), p.Done, len(p.Next), []byte(p.Data))
	}
	f.Fuzz(func(t *testing.T, id []byte, addr string, succs int, done bool, next int, data []byte) {
		var pid chord.ID
		copy(pid[:], id)
		p := chord.Peer{ID: pid, Addr: addr}
		pl := chord.Payload{Pred: p, Hint: p, Done: done, Owner: p}
		for i := range succs % 20 {
			pl.Succs = append(pl.Succs, chord.Peer{ID: chord.HashKey([]byte{byte(i)}), Addr: addr})
		}
		for i := range next % 20 {
			pl.Next = append(pl.Next, chord.Peer{ID: chord.HashKey([]byte{byte(i), 1}), Addr: "ws://n:1"})
		}
		if json.Valid(data) {
			pl.Data = data
		}
		want, werr := json.Marshal(pl)
		got, gerr := encodePayload(pl)
		if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("encodePayload(%+v)\n got %s, %v\nwant %s, %v", pl, got, gerr, want, werr)
		}
	})
}

// decodePayload reads what json.Unmarshal reads, the same way: its own
// reader only takes input on which both agree.
func FuzzPayloadDecode(f *testing.F) {
	for _, p := range payloadSeeds() {
		b, _ := json.Marshal(p)
		f.Add(b)
	}
	for _, s := range []string{
		`{"done":false}`, `{"succs":[]}`, `{"pred":{}}`, `{"pred":{"addr":"ws://a:1"}}`,
		`{"Pred":{"id":"86f7e437faa5a7fce15d1ddcb9eaeaea377667b8","addr":"a"}}`,
		`{"next":[{"id":"86F7E437FAA5A7FCE15D1DDCB9EAEAEA377667B8","addr":"a"}]}`,
		`{"done":true,"done":false}`, `{"owner":{"id":"00","addr":"a"}}`, `{"x":1}`, `{} `, `null`,
		`{"succs":null}`, `{"pred":{"id":"86f7e437faa5a7fce15d1ddcb9eaeaea377667b8","addr":"a","id":"86f7e437faa5a7fce15d1ddcb9eaeaea377667b9"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want, got chord.Payload
		werr := json.Unmarshal(b, &want)
		gerr := decodePayload(b, &got)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("decodePayload(%q): error %v, json.Unmarshal: %v", b, gerr, werr)
		}
		if werr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decodePayload(%q)\n got %+v\nwant %+v", b, got, want)
		}
		r := payloadReader{b: b}
		var fast chord.Payload
		if r.payload(&fast) && r.i == len(b) && (werr != nil || !reflect.DeepEqual(fast, want)) {
			t.Fatalf("the reader took %q as %+v; json.Unmarshal: %+v, %v", b, fast, want, werr)
		}
	})
}

// BenchmarkPayload compares the payload of a lookup answer both ways.
func BenchmarkPayload(b *testing.B) {
	var succs []chord.Peer
	for i := range 12 {
		succs = append(succs, chord.Peer{ID: chord.HashKey([]byte{byte(i)}), Addr: "ws://127.0.0.1:40000"})
	}
	p := chord.Payload{Done: true, Owner: succs[0], Succs: succs[1:], Pred: succs[11]}
	data, _ := json.Marshal(p)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = encodePayload(p)
		}
	})
	b.Run("encode-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = json.Marshal(p)
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var q chord.Payload
			_ = decodePayload(data, &q)
		}
	})
	b.Run("decode-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var q chord.Payload
			_ = json.Unmarshal(data, &q)
		}
	})
}
