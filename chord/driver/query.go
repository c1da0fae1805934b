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

// The driver answers two questions itself, in the transport's handler, as
// the reply to a Call (the core's own replies are one-way messages, so a
// Call cannot wait for them):
//
//   - a CHECK_PREDECESSOR addressed to no ID: "who are you?" (bootstrap joins);
//   - a MESSAGE whose payload data is queryState: "what are your predecessor
//     and successors?" (the ring walk of GET /api/v1/ring).
//
// Neither reaches the core.

// queryState is the payload data of a state query.
var queryState = json.RawMessage(`{"query":"state"}`)

// stateAnswer is the reply to a state query.
type stateAnswer struct {
	Status string       `json:"status"`
	Pred   chord.Peer   `json:"pred,omitzero"`
	Succs  []chord.Peer `json:"succs"`
}

func isStateQuery(env *rpc.Envelope) bool {
	if env.Type != rpc.TypeMessage || env.To.ID == "" || len(env.Payload) > 64 {
		return false
	}
	var p struct{ Data json.RawMessage }
	return json.Unmarshal(env.Payload, &p) == nil && string(p.Data) == string(queryState)
}

func (d *Driver) answerState(ctx context.Context) *rpc.Envelope {
	var st chord.State
	if err := d.do(ctx, func() { st = d.core.State() }); err != nil {
		return &rpc.Envelope{Type: rpc.TypeError, Error: err.Error()}
	}
	a := stateAnswer{Status: st.Status, Pred: st.Pred, Succs: st.Succs}
	data, _ := json.Marshal(a)
	payload, _ := json.Marshal(chord.Payload{Data: data})
	return &rpc.Envelope{Type: rpc.TypeMessage, From: wirePeer(d.self), Payload: payload}
}

// PeerState asks p for its status, predecessor and successors.
func (d *Driver) PeerState(ctx context.Context, p chord.Peer) (status string, pred chord.Peer, succs []chord.Peer, err error) {
	payload, _ := json.Marshal(chord.Payload{Data: queryState})
	reply, err := d.tr.Call(ctx, p.Addr, &rpc.Envelope{
		Type: rpc.TypeMessage, ID: rand.Uint64(), From: wirePeer(d.self), To: wirePeer(p), Payload: payload,
	})
	if err != nil {
		return "", chord.Peer{}, nil, err
	}
	var pl chord.Payload
	var a stateAnswer
	if err := json.Unmarshal(reply.Payload, &pl); err != nil {
		return "", chord.Peer{}, nil, fmt.Errorf("state of %s: %w", p.Addr, err)
	}
	if err := json.Unmarshal(pl.Data, &a); err != nil {
		return "", chord.Peer{}, nil, fmt.Errorf("state of %s: %w", p.Addr, err)
	}
	return a.Status, a.Pred, a.Succs, nil
}

// ErrWalkBroken: the ring walk met a node that did not answer, or one with
// no successor.
var ErrWalkBroken = errors.New("driver: ring walk broken")

// Walk follows successors from this node, asking each node in turn, until it
// is back at the start, meets a node twice (a cycle that excludes this node),
// or has visited limit nodes. It returns the nodes in ring order; err says
// why the walk stopped short of closing the ring.
func (d *Driver) Walk(ctx context.Context, limit int) ([]chord.Peer, error) {
	st := d.State()
	out := []chord.Peer{st.Self}
	seen := map[chord.ID]bool{st.Self.ID: true}
	succs := st.Succs
	for len(out) < limit {
		if len(succs) == 0 {
			return out, fmt.Errorf("%w: %s has no successor", ErrWalkBroken, out[len(out)-1].Addr)
		}
		next := succs[0]
		if next.ID == st.Self.ID {
			return out, nil // closed the ring
		}
		if seen[next.ID] {
			return out, fmt.Errorf("%w: %s leads back to %s, not to this node", ErrWalkBroken, out[len(out)-1].Addr, next.Addr)
		}
		seen[next.ID] = true
		out = append(out, next)
		var err error
		if _, _, succs, err = d.PeerState(ctx, next); err != nil {
			return out, fmt.Errorf("%w: %s did not answer: %v", ErrWalkBroken, next.Addr, err)
		}
	}
	return out, fmt.Errorf("%w: more than %d nodes", ErrWalkBroken, limit)
}
