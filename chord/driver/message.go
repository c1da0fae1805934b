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
	var pl chord.Payload
	if len(env.Payload) > 0 {
		if err := json.Unmarshal(env.Payload, &pl); err != nil {
			return &rpc.Envelope{Type: rpc.TypeError, Error: "MESSAGE payload: " + err.Error()}
		}
	}
	if len(pl.Data) == 0 {
		return &rpc.Envelope{Type: rpc.TypeError, Error: "MESSAGE without data"}
	}
	out, err := d.cfg.Messages(ctx, from, pl.Data)
	if err != nil {
		return &rpc.Envelope{Type: rpc.TypeError, Error: err.Error()}
	}
	payload, err := json.Marshal(chord.Payload{Data: out})
	if err != nil {
		return &rpc.Envelope{Type: rpc.TypeError, Error: "encode reply: " + err.Error()}
	}
	return &rpc.Envelope{Type: rpc.TypeMessage, From: wirePeer(d.self), Payload: payload}
}

// ErrEmptyReply: the peer answered an application MESSAGE without data.
var ErrEmptyReply = errors.New("driver: empty reply")

// Call sends data to p as an application MESSAGE and returns the data of its
// reply, in one attempt (the application owns its retries). An error returned
// by p's handler comes back as an *rpc.RemoteError.
func (d *Driver) Call(ctx context.Context, p chord.Peer, data json.RawMessage) (json.RawMessage, error) {
	payload, err := json.Marshal(chord.Payload{Data: data})
	if err != nil {
		return nil, err
	}
	// One attempt: the application owns its retries, and must know whether a
	// failed request may have run (ringledger marks such readings Resend).
	reply, err := d.tr.Call(rpc.WithoutRetries(ctx), p.Addr, &rpc.Envelope{
		Type: rpc.TypeMessage, ID: rand.Uint64(), From: wirePeer(d.self), To: wirePeer(p), Payload: payload,
	})
	if err != nil {
		return nil, err
	}
	var pl chord.Payload
	if err := json.Unmarshal(reply.Payload, &pl); err != nil {
		return nil, fmt.Errorf("reply of %s: %w", p.Addr, err)
	}
	if len(pl.Data) == 0 {
		return nil, fmt.Errorf("%w from %s", ErrEmptyReply, p.Addr)
	}
	return pl.Data, nil
}
