package main

import (
	"go.uber.org/zap"

	"github.com/flownode/flownode/node"
	"github.com/flownode/flownode/wot"
	wotcoap "github.com/flownode/flownode/wot/coap"
)

// serveThings mounts the Web of Things on a started node: the directory and
// properties over HTTP, the device paths over WebSocket (both on the --http
// port) and the CoAP device front on the --coap port and, over DTLS, on the
// --coaps port. The returned function
// stops them; call it before the node's Stop.
func serveThings(n *node.Node, log *zap.Logger) (stop func(), err error) {
	things, err := wot.New(n, wot.Config{HTTPAddr: n.Self().Addr, CoAPAddr: n.CoAPAddr(), CoAPSAddr: n.CoAPSAddr(), Log: log.Named("wot")})
	if err != nil {
		return nil, err
	}
	front, err := wotcoap.New(wotcoap.Config{Devices: things, Log: log.Named("coap")})
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
