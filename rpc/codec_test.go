package rpc

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

var testCodec = NewCodec(FlowchainTypes, 0)

func fullEnvelope() *Envelope {
	return &Envelope{
		Type:    TypeFoundSuccessor,
		ID:      18446744073709551615, // above 2^53: must survive as a string
		From:    Peer{ID: nodeID(1), Addr: "ws://127.0.0.1:8000"},
		To:      Peer{ID: nodeID(2), Addr: "coap://[::1]:5683"},
		Key:     nodeID(3),
		Payload: json.RawMessage(`{"done":true,"owner":{"id":"` + nodeID(2) + `","addr":"coap://gw-2.lan:5683"},"s":"<é\u2028>"}`),
		Error:   "line\nbreak \"quoted\" \x01 é \xff",
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, env := range []*Envelope{
		fullEnvelope(),
		{Type: TypeCheckPredecessor, From: Peer{ID: nodeID(1), Addr: "mem://a"}},
		{Type: TypeNotifyJoin, ID: 7, From: Peer{ID: nodeID(1), Addr: "ws://node-1:80"}, To: Peer{Addr: "ws://boot:8000"}},
	} {
		b, err := testCodec.Encode(env)
		if err != nil {
			t.Fatalf("encode %+v: %v", env, err)
		}
		got, err := testCodec.Decode(b)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		want := *env
		want.Error = strings.ToValidUTF8(want.Error, "\ufffd")
		if !reflect.DeepEqual(got, &want) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, &want)
		}
		// encoding/json agrees on what the bytes mean.
		var std Envelope
		if err := json.Unmarshal(b, &std); err != nil || !reflect.DeepEqual(&std, got) {
			t.Errorf("encoding/json reads %s as %+v, %v", b, std, err)
		}
	}
}

func TestCodecEncodeMatchesEncodingJSON(t *testing.T) {
	env := fullEnvelope()
	env.Error = "plain"
	env.Payload = json.RawMessage(`{"a": [1, 2]}`)
	ours, err := testCodec.Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	std, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	if string(ours) != string(std) {
		t.Errorf("ours %s\n std %s", ours, std)
	}
}

func TestCodecDecodeRejects(t *testing.T) {
	from := `"from":{"id":"` + nodeID(1) + `","addr":"ws://127.0.0.1:1"}`
	ok := `{"type":"MESSAGE","id":"1",` + from + `}`
	if _, err := testCodec.Decode([]byte(ok)); err != nil {
		t.Fatalf("baseline rejected: %v", err)
	}
	small := NewCodec(FlowchainTypes, 64)
	cases := []struct {
		name, in string
		want     error
		says     string
	}{
		{"empty", ``, ErrMalformed, "not valid JSON"},
		{"not json", `hello`, ErrMalformed, "not valid JSON"},
		{"trailing data", ok + `{}`, ErrMalformed, "trailing"},
		{"truncated", ok[:len(ok)-1], ErrMalformed, "not valid JSON"},
		{"array", `[` + ok + `]`, ErrMalformed, "want a JSON object"},
		{"unknown field", `{"type":"MESSAGE","id":"1",` + from + `,"ttl":3}`, ErrMalformed, `unknown field "ttl"`},
		{"field case", `{"Type":"MESSAGE","id":"1",` + from + `}`, ErrMalformed, `unknown field "Type"`},
		{"repeated field", `{"type":"MESSAGE","type":"MESSAGE","id":"1",` + from + `}`, ErrMalformed, "appears twice"},
		{"unknown peer field", `{"type":"MESSAGE","id":"1","from":{"id":"` + nodeID(1) + `","addr":"ws://a:1","x":1}}`, ErrMalformed, `unknown field "x" in from`},
		{"no type", `{"id":"1",` + from + `}`, ErrMalformed, "no type"},
		{"unknown type", `{"type":"PING","id":"1",` + from + `}`, ErrUnknownType, `"PING"`},
		{"type not string", `{"type":7,"id":"1",` + from + `}`, ErrMalformed, "type: want a string"},
		{"id as number", `{"type":"MESSAGE","id":1,` + from + `}`, ErrMalformed, "decimal number in a string"},
		{"id negative", `{"type":"MESSAGE","id":"-1",` + from + `}`, ErrMalformed, "without sign"},
		{"id leading zero", `{"type":"MESSAGE","id":"01",` + from + `}`, ErrMalformed, "leading zeros"},
		{"id overflow", `{"type":"MESSAGE","id":"18446744073709551616",` + from + `}`, ErrMalformed, "decimal uint64"},
		{"id hex", `{"type":"MESSAGE","id":"0x1",` + from + `}`, ErrMalformed, "decimal uint64"},
		{"no from", `{"type":"MESSAGE","id":"1"}`, ErrMalformed, "from.id"},
		{"from id short", `{"type":"MESSAGE","id":"1","from":{"id":"abc","addr":"ws://a:1"}}`, ErrMalformed, "from.id"},
		{"from id upper", `{"type":"MESSAGE","id":"1","from":{"id":"` + strings.ToUpper(nodeID(0xabc)) + `","addr":"ws://a:1"}}`, ErrMalformed, "lowercase hex"},
		{"from addr scheme", `{"type":"MESSAGE","id":"1","from":{"id":"` + nodeID(1) + `","addr":"http://a:1"}}`, ErrMalformed, "scheme must be"},
		{"from addr no port", `{"type":"MESSAGE","id":"1","from":{"id":"` + nodeID(1) + `","addr":"ws://a"}}`, ErrMalformed, "host:port"},
		{"from addr path", `{"type":"MESSAGE","id":"1","from":{"id":"` + nodeID(1) + `","addr":"ws://a:1/x"}}`, ErrMalformed, "port"},
		{"from addr port 0", `{"type":"MESSAGE","id":"1","from":{"id":"` + nodeID(1) + `","addr":"ws://a:0"}}`, ErrMalformed, "1-65535"},
		{"from addr bad ipv6", `{"type":"MESSAGE","id":"1","from":{"id":"` + nodeID(1) + `","addr":"ws://[::g]:1"}}`, ErrMalformed, "IPv6"},
		{"from null", `{"type":"MESSAGE","id":"1","from":null}`, ErrMalformed, "from: want a JSON object"},
		{"to id bad", `{"type":"MESSAGE","id":"1",` + from + `,"to":{"id":"zz","addr":""}}`, ErrMalformed, "to.id"},
		{"key short", `{"type":"MESSAGE","id":"1",` + from + `,"key":"abcd"}`, ErrMalformed, "key"},
		{"key empty", `{"type":"MESSAGE","id":"1",` + from + `,"key":""}`, ErrMalformed, "key is empty"},
		{"error without message", `{"type":"ERROR","id":"1",` + from + `}`, ErrMalformed, "without an error message"},
		{"invalid utf-8", "{\"type\":\"MESSAGE\",\"id\":\"1\"," + from + ",\"error\":\"\xff\"}", ErrMalformed, "UTF-8"},
		{"too large", ok, ErrTooLarge, "the limit is 64"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			codec := testCodec
			if c.want == ErrTooLarge {
				codec = small
			}
			env, err := codec.Decode([]byte(c.in))
			if !errors.Is(err, c.want) {
				t.Fatalf("Decode(%s) = %+v, %v; want %v", c.in, env, err, c.want)
			}
			if !strings.Contains(err.Error(), c.says) {
				t.Errorf("error %q does not say %q", err, c.says)
			}
		})
	}
}

func TestCodecEncodeRejects(t *testing.T) {
	good := func() *Envelope {
		return &Envelope{Type: TypeMessage, ID: 1, From: Peer{ID: nodeID(1), Addr: "coap://10.0.0.1:5683"}}
	}
	cases := []struct {
		name   string
		change func(*Envelope)
		want   error
	}{
		{"unknown type", func(e *Envelope) { e.Type = "PING" }, ErrUnknownType},
		{"no from", func(e *Envelope) { e.From = Peer{} }, ErrMalformed},
		{"bad key", func(e *Envelope) { e.Key = "xyz" }, ErrMalformed},
		{"bad to addr", func(e *Envelope) { e.To.Addr = "tcp://x:1" }, ErrMalformed},
		{"payload not json", func(e *Envelope) { e.Payload = json.RawMessage(`{"a":`) }, ErrMalformed},
		{"payload too large", func(e *Envelope) { e.Payload = json.RawMessage(`"` + strings.Repeat("x", DefaultMaxSize) + `"`) }, ErrTooLarge},
		{"envelope too large", func(e *Envelope) { e.Payload = json.RawMessage(`"` + strings.Repeat("x", DefaultMaxSize-100) + `"`) }, ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := good()
			c.change(e)
			if _, err := testCodec.Encode(e); !errors.Is(err, c.want) {
				t.Fatalf("Encode = %v, want %v", err, c.want)
			}
		})
	}
	if _, err := testCodec.Encode(nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("Encode(nil) = %v", err)
	}
}

func TestCodecNullPayloadAndWhitespace(t *testing.T) {
	in := " {\n\t\"type\" : \"CHECK_TTL\" , \"id\":\"0\", \"from\" : { \"addr\":\"mem://x\", \"id\":\"" + nodeID(5) + "\" } , \"payload\" : null } \n"
	env, err := testCodec.Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if env.Payload != nil || env.From.Addr != "mem://x" || env.Type != TypeCheckTTL {
		t.Errorf("got %+v", env)
	}
}

func TestPeekID(t *testing.T) {
	for in, want := range map[string]int64{
		`{"type":"BOGUS","id":"42"}`:           42,
		`{"x":{"id":"1"},"id":"7","id":"8"}`:   7,
		`{"id":42}`:                            -1,
		`{"id":"42"`:                           -1,
		`[{"id":"42"}]`:                        -1,
		`{"payload":"}\"id\":\"9\"","id":"3"}`: 3,
	} {
		id, ok := peekID([]byte(in))
		if want < 0 && ok || want >= 0 && (!ok || id != uint64(want)) {
			t.Errorf("peekID(%s) = %d, %v; want %d", in, id, ok, want)
		}
	}
}

func TestSplitAddr(t *testing.T) {
	for _, good := range []string{"ws://127.0.0.1:8000", "coap://[::1]:5683", "ws://gw-1.lan:80", "mem://a", "mem://node-1:2", "coaps://gw-1.lan:5684"} {
		if _, _, err := SplitAddr(good); err != nil {
			t.Errorf("SplitAddr(%q): %v", good, err)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:80", "ws://", "ws://:80", "ws://a:65536", "ws://a:b", "ws://::1:80", "ws://[fe80::1%eth0]:80", "ws://a b:1", "wss://a:1", "mem://", "coaps://", "ws://u@a:1", "ws://-a:1"} {
		if _, _, err := SplitAddr(bad); !errors.Is(err, ErrBadAddr) {
			t.Errorf("SplitAddr(%q) = %v, want ErrBadAddr", bad, err)
		}
	}
}

// TestJSONScannerAgainstEncodingJSON mutates JSON texts at random and checks
// that validJSON and compactJSON agree with encoding/json on every one.
func TestJSONScannerAgainstEncodingJSON(t *testing.T) {
	texts := []string{
		`{"a":[1,-2.5e+3,0.0,1E9,"x\"\\\/\b\f\n\r\t\u00e9",true,false,null],"b":{}}`,
		` [ {"k" : "v"} , [ ] , "" ] `,
		`"\ud83d\ude00 plain text with <html> & stuff"`,
		`-0`, `123456789012345678901234567890`, `{"":""}`,
	}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte(" \t\n\r{}[],:\"\\/-+.eE0123456789abfnrtulsx\x00\x1f\x7f\xc3\xa9\xff")
	for i := range 100000 {
		b := []byte(texts[i%len(texts)])
		for n := r.IntN(4); n > 0; n-- {
			switch p := r.IntN(len(b) + 1); r.IntN(3) {
			case 0: // replace
				if p < len(b) {
					b[p] = alphabet[r.IntN(len(alphabet))]
				}
			case 1: // insert
				b = append(b[:p], append([]byte{alphabet[r.IntN(len(alphabet))]}, b[p:]...)...)
			case 2: // cut
				b = b[:p]
			}
		}
		checkJSONScanner(t, b)
		if t.Failed() {
			return
		}
	}
}
