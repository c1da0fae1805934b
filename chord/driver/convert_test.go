package driver

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/rpc"
)

// A core message survives the trip to an envelope, through the strict codec,
// and back.
func TestEnvelopeRoundTrip(t *testing.T) {
	a := chord.Peer{ID: chord.HashKey([]byte("a")), Addr: "ws://127.0.0.1:8001"}
	b := chord.Peer{ID: chord.HashKey([]byte("b")), Addr: "coap://127.0.0.1:5683"}
	msgs := []chord.Message{
		{Type: chord.CheckPredecessor, ID: 1 << 60, From: a, To: b},
		{Type: chord.FindSuccessor, ID: 7, From: a, To: b, Key: chord.HashKey([]byte("k"))},
		{Type: chord.NotifyPredecessor, ID: 8, From: b, To: a, Payload: chord.Payload{Pred: a, Succs: []chord.Peer{a, b}, Hint: b}},
		{Type: chord.FoundSuccessor, ID: 9, From: b, To: a, Payload: chord.Payload{Done: true, Owner: b, Next: []chord.Peer{a}}},
		{Type: chord.AppMessage, From: a, To: b, Payload: chord.Payload{Data: json.RawMessage(`{"x":1}`)}},
	}
	codec := rpc.NewCodec(rpc.FlowchainTypes, rpc.DefaultMaxSize)
	for _, m := range msgs {
		env, err := toEnvelope(m)
		if err != nil {
			t.Fatalf("%s: %v", m.Type, err)
		}
		wire, err := codec.Encode(env)
		if err != nil {
			t.Fatalf("%s: encode: %v", m.Type, err)
		}
		back, err := codec.Decode(wire)
		if err != nil {
			t.Fatalf("%s: decode %s: %v", m.Type, wire, err)
		}
		got, err := fromEnvelope(back)
		if err != nil {
			t.Fatalf("%s: %v", m.Type, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", m.Type, got, m)
		}
	}
}

func TestProfiles(t *testing.T) {
	for name, p := range map[string]Profile{"local": LocalProfile(), "laptop": LaptopProfile(), "gateway": GatewayProfile()} {
		if p.Name != name || p.Tick <= 0 || p.Senders <= 0 || p.SendQueue <= 0 {
			t.Errorf("%s: %+v", name, p)
		}
		// A reply must be able to arrive before the core gives up on it.
		if p.SendTimeout > time.Duration(p.Chord.RequestTimeout+1)*p.Tick {
			t.Errorf("%s: send timeout %v outlives the core's request timeout", name, p.SendTimeout)
		}
	}
}
