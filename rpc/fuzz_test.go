package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"reflect"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// Seeds live in testdata/fuzz/<FuzzName>/; plain `go test` runs them.

// FuzzDecode checks that Decode never panics, that every error wraps a
// sentinel, and that whatever it accepts encoding/json reads the same way
// and survives Encode and Decode unchanged.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		checkJSONScanner(t, data)
		peekID(data) // must not panic either
		env, err := testCodec.Decode(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnknownType) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		var std Envelope
		if err := json.Unmarshal(data, &std); err != nil {
			t.Fatalf("accepted what encoding/json rejects (%v): %q", err, data)
		}
		if bytes.Equal(std.Payload, []byte("null")) {
			std.Payload = nil
		}
		if !reflect.DeepEqual(&std, env) {
			t.Fatalf("encoding/json reads %q as\n%+v\nwe read\n%+v", data, std, env)
		}
		b, err := testCodec.Encode(env)
		if err != nil {
			t.Fatalf("cannot encode what was decoded: %v", err)
		}
		again, err := testCodec.Decode(b)
		if err != nil {
			t.Fatalf("cannot decode what was encoded (%v): %q", err, b)
		}
		want := *env
		if want.Payload != nil {
			var buf bytes.Buffer
			json.Compact(&buf, want.Payload)
			want.Payload = buf.Bytes()
		}
		if !reflect.DeepEqual(again, &want) {
			t.Fatalf("round trip changed the envelope:\n%+v\n%+v", again, &want)
		}
	})
}

// checkJSONScanner checks validJSON and compactJSON against encoding/json.
func checkJSONScanner(t *testing.T, data []byte) {
	if ours, std := validJSON(data), json.Valid(data); ours != std {
		t.Fatalf("validJSON = %v, json.Valid = %v for %q", ours, std, data)
	}
	var want bytes.Buffer
	stdErr := json.Compact(&want, data)
	got, err := compactJSON([]byte("prefix"), data)
	if (err == nil) != (stdErr == nil) || err == nil && string(got) != "prefix"+want.String() {
		t.Fatalf("compactJSON = %q, %v; json.Compact = %q, %v", got, err, want.Bytes(), stdErr)
	}
}

// fuzzHandler answers like echo, without the slow path.
func fuzzHandler(_ context.Context, env *Envelope) *Envelope {
	if env.Type == TypeNotifySuccessor {
		return nil
	}
	return &Envelope{Type: TypeFoundSuccessor, Payload: env.Payload}
}

// checkAnswer checks a transport's answer to frame: none, or a decodable
// envelope that is either the handler's reply to frame or an error reply.
func checkAnswer(t *testing.T, self Peer, frame, reply []byte) {
	t.Helper()
	if reply == nil {
		return
	}
	r, err := testCodec.Decode(reply)
	if err != nil {
		t.Fatalf("answer does not decode (%v): %q", err, reply)
	}
	if r.From != self {
		t.Fatalf("answer from %+v", r.From)
	}
	req, err := testCodec.Decode(frame)
	switch {
	case err != nil:
		if r.Type != TypeError {
			t.Fatalf("undecodable frame answered with %+v", r)
		}
	case r.ID != req.ID:
		t.Fatalf("answer id %d to request %d", r.ID, req.ID)
	case r.Type != TypeError && r.Type != TypeFoundSuccessor:
		t.Fatalf("answer %+v", r)
	}
}

// FuzzWSFrame feeds arbitrary frames to what a WS node does with each frame
// read from a connection.
func FuzzWSFrame(f *testing.F) {
	log, _ := testLogger(f)
	self := Peer{ID: nodeID(2), Addr: "ws://127.0.0.1:8000"}
	tr, err := NewWS(WSConfig{Self: self, Handler: fuzzHandler, Logger: log})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { tr.Close() })
	f.Fuzz(func(t *testing.T, frame []byte) {
		checkAnswer(t, self, frame, tr.handleFrame(context.Background(), frame, ""))
	})
}

// FuzzCoAPBody feeds arbitrary path ids and bodies to what a CoAP node does
// with each POST to /node/{id}/receive.
func FuzzCoAPBody(f *testing.F) {
	log, _ := testLogger(f)
	tr, err := NewCoAP(CoAPConfig{Self: Peer{ID: nodeID(2)}, Listen: "127.0.0.1:0", Handler: fuzzHandler, Logger: log})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { tr.Close() })
	self := tr.self
	f.Fuzz(func(t *testing.T, pathID string, body []byte) {
		for _, oneway := range []bool{false, true} {
			code, reply := tr.handleBody(context.Background(), pathID, body, oneway, "")
			switch code {
			case codes.Changed:
				if oneway && reply != nil {
					t.Fatalf("a one-way message answered with %q", reply)
				}
			case codes.BadRequest, codes.RequestEntityTooLarge, codes.NotFound, codes.InternalServerError:
				if reply == nil {
					t.Fatalf("CoAP %v without an error reply", code)
				}
			default:
				t.Fatalf("CoAP %v", code)
			}
			if pathID != self.ID && pathID != AnyNode {
				if code != codes.NotFound {
					t.Fatalf("path id %q answered %v", pathID, code)
				}
				continue
			}
			checkAnswer(t, self, body, reply)
			if code != codes.Changed {
				if r, _ := testCodec.Decode(reply); r.Type != TypeError {
					t.Fatalf("CoAP %v with %+v", code, r)
				}
			}
		}
	})
}

// FuzzCoAPDatagram feeds arbitrary datagrams to the one-way path and then
// go-coap's connection machinery, as the server loop does: a malformed
// datagram must not panic the node (its handling runs on the node's own
// goroutines).
func FuzzCoAPDatagram(f *testing.F) {
	log, _ := testLogger(f)
	tr, err := NewCoAP(CoAPConfig{Self: Peer{ID: nodeID(2)}, Listen: "127.0.0.1:0", Handler: fuzzHandler, Logger: log})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { tr.Close() })
	// Answers go to the discard port of loopback, where nobody listens.
	from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	for _, body := range []string{`{"type":"PING","id":1}`, `{`, ``} {
		if d, err := onewayDatagram(7, nodeID(2), []byte(body)); err == nil {
			f.Add(d)
		}
	}
	if blocks, err := tr.onewayBlocks(nodeID(2), bytes.Repeat([]byte("x"), 2100)); err == nil {
		for _, d := range blocks {
			f.Add(d)
		}
	}
	f.Fuzz(func(t *testing.T, datagram []byte) {
		if tr.takeOneway(from, datagram) {
			return
		}
		if c := tr.srv.conn(from); c != nil {
			_ = c.cc.Process(nil, datagram)
		}
	})
}
