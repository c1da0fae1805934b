package wot

// STUB: replaced by the live work (helper B): properties, devices, fan-out.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/flownode/flownode/node"
)

type live struct{}

func (l *live) init(t *Things) error { return nil }
func (l *live) close()               {}

func (t *Things) liveRoutes(mux *http.ServeMux) {}

// Send: see Devices.
func (t *Things) Send(ctx context.Context, thing string, values []json.RawMessage) ([]node.Receipt, error) {
	return nil, errors.New("not built yet")
}

// Subscribe: see Devices.
func (t *Things) Subscribe(thing string) (Subscription, error) {
	return nil, errors.New("not built yet")
}

// Latest: see Devices.
func (t *Things) Latest(ctx context.Context, thing string) (Update, error) {
	return Update{}, ErrNoValue
}

// Present: see Devices.
func (t *Things) Present(thing string) func() { return func() {} }

var _ Devices = (*Things)(nil)
