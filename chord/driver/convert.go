package driver

import (
	"fmt"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/rpc"
)

// toEnvelope puts a core message on the wire: the ids in hex, the payload as
// JSON (omitted when empty).
func toEnvelope(m chord.Message) (*rpc.Envelope, error) {
	env := &rpc.Envelope{Type: string(m.Type), ID: m.ID, From: wirePeer(m.From), To: wirePeer(m.To)}
	if !m.Key.IsZero() {
		env.Key = m.Key.Hex()
	}
	if !payloadEmpty(m.Payload) {
		b, err := encodePayload(m.Payload)
		if err != nil {
			return nil, fmt.Errorf("encode %s payload: %w", m.Type, err)
		}
		env.Payload = b
	}
	return env, nil
}

// fromEnvelope reads a core message off the wire. The codec has already
// checked ids and addresses; the payload is decoded here.
func fromEnvelope(env *rpc.Envelope) (chord.Message, error) {
	m := chord.Message{Type: chord.MsgType(env.Type), ID: env.ID}
	var err error
	if m.From, err = corePeer(env.From); err != nil {
		return m, fmt.Errorf("from: %w", err)
	}
	if m.To, err = corePeer(env.To); err != nil {
		return m, fmt.Errorf("to: %w", err)
	}
	if env.Key != "" {
		if m.Key, err = chord.ParseID(env.Key); err != nil {
			return m, fmt.Errorf("key: %w", err)
		}
	}
	if len(env.Payload) > 0 {
		if err := decodePayload(env.Payload, &m.Payload); err != nil {
			return m, fmt.Errorf("%s payload: %w", env.Type, err)
		}
	}
	return m, nil
}

func wirePeer(p chord.Peer) rpc.Peer {
	if p.IsZero() {
		return rpc.Peer{}
	}
	return rpc.Peer{ID: p.ID.Hex(), Addr: p.Addr}
}

func corePeer(p rpc.Peer) (chord.Peer, error) {
	if p.ID == "" {
		return chord.Peer{}, nil
	}
	id, err := chord.ParseID(p.ID)
	if err != nil {
		return chord.Peer{}, err
	}
	return chord.Peer{ID: id, Addr: p.Addr}, nil
}

func payloadEmpty(p chord.Payload) bool {
	return p.Pred.IsZero() && len(p.Succs) == 0 && p.Hint.IsZero() && !p.Done &&
		p.Owner.IsZero() && len(p.Next) == 0 && len(p.Data) == 0
}
