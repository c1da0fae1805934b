package wot

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/flownode/flownode/access"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

// Update is one new value of a Thing: a record just written, as observers get it.
type Update struct {
	Thing  string
	TxID   ledger.Hash
	Time   int64           // the record's time, Unix nanoseconds
	Value  json.RawMessage // the reading's data, as written
	Record json.RawMessage // the signed JSON-LD record, byte for byte as stored
}

// Subscription delivers a Thing's updates in the order they were written, from
// the moment it was made, until Close. Its buffer is bounded: a subscriber that
// falls behind loses the oldest updates and Lost counts them.
type Subscription interface {
	Updates() <-chan Update
	Lost() uint64
	Close()
}

// Errors the fronts map onto their protocol's codes.
var (
	ErrNoThing  = errors.New("no such Thing")        // 404 / 4.04
	ErrBadInput = errors.New("invalid input")        // 400 / 4.00; wrapped with the reason
	ErrNoValue  = errors.New("no value written yet") // 404 / 4.04 for a read before any write
)

// Devices is what the device-facing fronts (the WebSocket /object paths in this
// package, CoAP in wot/coap) need from the layer. *Things implements it.
type Devices interface {
	// Send stores readings (each one JSON value) of a Thing, creating the Thing
	// with a TD derived from the first reading's shape if it has none; it returns
	// once each record is durable on its owner, with the receipts in order, and
	// observers everywhere get the updates in that order.
	Send(ctx context.Context, thing string, values []json.RawMessage) ([]node.Receipt, error)
	// Subscribe follows a Thing's new records, on whichever node they entered.
	Subscribe(thing string) (Subscription, error)
	// Latest returns the Thing's newest value (ErrNoValue if none yet).
	Latest(ctx context.Context, thing string) (Update, error)
	// ThingTD returns the Thing's TD as served (application/td+json), with forms
	// for this node (ErrNoThing if it has none).
	ThingTD(ctx context.Context, id string) ([]byte, error)
	// DirectoryTD returns the directory's own TD (/.well-known/wot).
	DirectoryTD() []byte
	// Present marks a device of the Thing as connected until release is called;
	// /object/{id}/status reports {"isAlive": true} while any is.
	Present(thing string) (release func())
}

// Config says where this node serves the Web of Things, for the forms of the
// TDs it serves.
type Config struct {
	// HTTPAddr is the host:port clients reach this node's HTTP (and WebSocket)
	// port at; CoAPAddr its CoAP UDP port ("" if it serves none);
	// CoAPSAddr its coaps port, CoAP over DTLS with pre-shared keys ("" if
	// it serves none).
	HTTPAddr  string
	CoAPAddr  string
	CoAPSAddr string
	Log       *zap.Logger
	// Authorize decides who may read and write each Thing over HTTP and
	// WebSocket (package access); nil lets everyone.
	Authorize access.Authorizer
}

// Things is the Web of Things layer of one node.
type Things struct {
	node *node.Node
	cfg  Config
	log  *zap.Logger
	reg  registry // registry.go: TDs on the ring
	live live     // fanout.go, devices.go: updates, observers, presence
}

// New builds the layer on a started node.
func New(n *node.Node, cfg Config) (*Things, error) {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	t := &Things{node: n, cfg: cfg, log: cfg.Log}
	if err := t.reg.init(t); err != nil {
		return nil, err
	}
	if err := t.live.init(t); err != nil {
		return nil, err
	}
	// The owner of a reading's key checks its device signature against the
	// Thing's TD before signing it (provenance.go).
	n.CheckReadings(t.checkDeviceReadings)
	return t, nil
}

// Close stops the layer's goroutines and ends its subscriptions.
func (t *Things) Close() {
	t.live.close()
	t.reg.close()
}

// need wraps a route with the authorization it asks: scope on the Thing of
// the path's {id} (onThing), or on every Thing.
func (t *Things) need(scope access.Scope, onThing bool, fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := ""
		if onThing {
			id = r.PathValue("id")
		}
		if access.Check(t.cfg.Authorize, w, r, id, scope) {
			fn(w, r)
		}
	}
}

// Handler serves the layer's HTTP and WebSocket paths: /.well-known/wot,
// /things..., /object/... . The daemon mounts it beside the API.
func (t *Things) Handler() http.Handler {
	mux := http.NewServeMux()
	t.directoryRoutes(mux)
	t.liveRoutes(mux)
	return mux
}
