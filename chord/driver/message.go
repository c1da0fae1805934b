package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/rpc"
)

// Application messages: the layer above the ring (replication, routed
// writes and reads) talks to other nodes with request/reply MESSAGEs whose
// payload data is its own. Config.Messages answers them; Call sends them.

// answerMessage hands an application MESSAGE to Config.Messages.
func (d *Driver) answerMessage(ctx context.Context, env *rpc.Envelope) *rpc.Envelope {
	from, err := corePeer(env.From)
	if err != nil {
		return &rpc.Envelope{Type: rpc.TypeError, Error: "from: " + err.Error()}
	}
	data, err := messageData(env.Payload)
	if err != nil {
		return &rpc.Envelope{Type: rpc.TypeError, Error: "MESSAGE payload: " + err.Error()}
	}
	if len(data) == 0 {
		return &rpc.Envelope{Type: rpc.TypeError, Error: "MESSAGE without data"}
	}
	out, err := d.cfg.Messages(ctx, from, data)
	if err != nil {
		return &rpc.Envelope{Type: rpc.TypeError, Error: err.Error()}
	}
	return &rpc.Envelope{Type: rpc.TypeMessage, From: wirePeer(d.self), Payload: messagePayload(out)}
}

// messagePayload is the payload of an application MESSAGE carrying data:
// {"data":...}, as encoding/json writes chord.Payload{Data: data}. data is
// not copied or checked here: the rpc codec checks the whole envelope when it
// encodes it (an invalid one fails the send).
func messagePayload(data json.RawMessage) json.RawMessage {
	if len(data) == 0 {
		return json.RawMessage(`{}`)
	}
	b := make([]byte, 0, len(data)+9)
	b = append(b, `{"data":`...)
	b = append(b, data...)
	return append(b, '}')
}

// messageData returns the data of an application MESSAGE's payload without
// decoding it: a payload of only "data" (what messagePayload writes) is split
// in one pass (rpc.Fields); any other is decoded as a chord.Payload, as
// before, so that every payload a peer could send means what it meant.
func messageData(payload json.RawMessage) (json.RawMessage, error) {
	if len(payload) == 0 {
		return nil, nil
	}
	if f, err := rpc.Fields(payload, "data"); err == nil {
		return f[0], nil
	}
	var pl chord.Payload
	if err := json.Unmarshal(payload, &pl); err != nil {
		return nil, err
	}
	return pl.Data, nil
}

// ErrEmptyReply: the peer answered an application MESSAGE without data.
var ErrEmptyReply = errors.New("driver: empty reply")

// Call sends data to p as an application MESSAGE and returns the data of its
// reply, in one attempt (the application owns its retries). An error returned
// by p's handler comes back as an *rpc.RemoteError.
func (d *Driver) Call(ctx context.Context, p chord.Peer, data json.RawMessage) (json.RawMessage, error) {
	payload := messagePayload(data)
	// One attempt: the application owns its retries, and must know whether a
	// failed request may have run (ringledger marks such readings Resend).
	reply, err := d.tr.Call(rpc.WithoutRetries(ctx), p.Addr, &rpc.Envelope{
		Type: rpc.TypeMessage, ID: rand.Uint64(), From: wirePeer(d.self), To: wirePeer(p), Payload: payload,
	})
	if err != nil {
		return nil, err
	}
	out, err := messageData(reply.Payload)
	if err != nil {
		return nil, fmt.Errorf("reply of %s: %w", p.Addr, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w from %s", ErrEmptyReply, p.Addr)
	}
	return out, nil
}
