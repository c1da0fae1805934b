package main

import (
	"go.uber.org/zap"

	"github.com/flownode/flownode/access"
	"github.com/flownode/flownode/node"
	"github.com/flownode/flownode/wot"
	wotcoap "github.com/flownode/flownode/wot/coap"
)

// serveThings mounts the Web of Things on a started node: the directory and
// properties over HTTP, the device paths over WebSocket (both on the --http
// port) and the CoAP device front on the --coap port and, over DTLS, on the
// --coaps port. The returned function
// stops them; call it before the node's Stop.
func serveThings(n *node.Node, log *zap.Logger, guard *access.Guard) (stop func(), err error) {
	things, err := wot.New(n, wot.Config{HTTPAddr: n.Self().Addr, CoAPAddr: n.CoAPAddr(), CoAPSAddr: n.CoAPSAddr(),
		Log: log.Named("wot"), Authorize: guard})
	if err != nil {
		return nil, err
	}
	// Every CoAP request on a Thing asks the guard: a coaps device by its PSK
	// identity, a plain CoAP one only where the policy is open (loopback on
	// a dev node, reads when they are open).
	authorize := func(src wotcoap.Source, thing string, need access.Scope) error {
		return guard.AuthorizePSK(src.Identity, src.Addr.Addr(), thing, need)
	}
	front, err := wotcoap.New(wotcoap.Config{Devices: things, Log: log.Named("coap"), Authorize: authorize})
	if err != nil {
		things.Close()
		return nil, err
	}
	h := things.Handler()
	for _, pattern := range []string{"/.well-known/wot", "/things", "/things/", "/object/"} {
		n.Handle(pattern, h)
	}
	n.ServeDeviceCoAP(front.Datagram)
	n.ServeDeviceCoAPS(front.SecureDatagram)
	return func() {
		n.ServeDeviceCoAP(nil)
		n.ServeDeviceCoAPS(nil)
		front.Close()
		things.Close()
	}, nil
}
