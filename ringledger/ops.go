package ringledger

import (
	"context"
	"encoding/json"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
)

// The ring primitives the layers above the ledger (the Web of Things) build on:
// their own ops travel in the ledger's envelope ({"op","body"} answered
// {"answer"} or {"refusal"}) to peers the ledger has looked up.

// Refuse makes a refusal to answer an op with.
func Refuse(code Code, format string, args ...any) *Refusal { return refuse(code, format, args...) }

// CallOp sends op with body to p and decodes its answer into out (nil: ignore
// it). A refusal comes back as an error wrapping *Refusal.
func (d *Ledger) CallOp(ctx context.Context, p chord.Peer, op string, body, out any) error {
	return d.call(ctx, p, op, body, out)
}

// Owner returns successor(key): this node, a cached range owner, or a lookup.
func (d *Ledger) Owner(ctx context.Context, key ledger.Key) (chord.Peer, error) {
	if !d.attached.Load() {
		return d.state().Self, nil
	}
	return d.owner(ctx, key)
}

// Members lists the ring's nodes (a walk, cached for a sync interval).
func (d *Ledger) Members(ctx context.Context) ([]chord.Peer, error) {
	if !d.attached.Load() {
		return []chord.Peer{d.state().Self}, nil
	}
	return d.memberList(ctx)
}

// AnswerOp frames an op handler's result as the ledger frames its own:
// {"answer": out}, or {"refusal": ...} for an error (a *Refusal as it is,
// anything else as "unavailable"). The sender must be a member now.
func (d *Ledger) AnswerOp(from chord.Peer, handle func() (any, error)) (json.RawMessage, error) {
	var out any
	err := d.memberNow(from.ID)
	if err == nil {
		out, err = handle()
	}
	if err == nil {
		return json.Marshal(reply{Answer: out})
	}
	r := refusalOf(err)
	if r == nil {
		r = refuse(CodeUnavailable, "%v", err)
	}
	return json.Marshal(reply{Refusal: r})
}

// DecodeOpBody decodes an op's body strictly (unknown fields refused), as a
// refusal when it does not decode.
func DecodeOpBody(op string, body json.RawMessage, v any) error {
	if err := decodeStrict(body, v); err != nil {
		return refuse(CodeRefused, "malformed %s body: %v", op, err)
	}
	return nil
}
