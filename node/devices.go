package node

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"go.uber.org/zap"

	"github.com/flownode/flownode/coaps"
	"github.com/flownode/flownode/rpc"
)

// The devices' CoAP: plain on the CoAP port, beside the peers' DTLS
// (ServeDeviceCoAP), and over DTLS with pre-shared keys on a coaps port of
// its own (Config.CoAPSListen, ServeDeviceCoAPS).

// DefaultCoAPSListen is the daemon's default --coaps: CoAP over DTLS's
// port (RFC 7252 §12.7).
const DefaultCoAPSListen = ":5684"

// errNoDeviceKeys fails every device handshake of a node started without
// Config.DevicePSK.
var errNoDeviceKeys = errors.New("this node has no device keys")

// ServeDeviceCoAP makes h serve the devices' plain CoAP datagrams on the
// node's CoAP port, which peers reach over DTLS (the two are told apart by
// their first byte, RFC 7983). It may be called while the node serves;
// datagrams that come before are dropped. The Web of Things' CoAP front
// (wot/coap) is such an h.
func (n *Node) ServeDeviceCoAP(h rpc.PlainCoAP) {
	n.deviceCoAP.Store(&h)
}

// ServeDeviceCoAPS makes h serve the datagrams of the devices' DTLS
// sessions on the coaps port (Config.CoAPSListen), decrypted, with the PSK
// identity of each session. As ServeDeviceCoAP, it may be called while the
// node serves. The Web of Things' CoAP front's SecureDatagram is such an h.
func (n *Node) ServeDeviceCoAPS(h coaps.Handler) {
	n.deviceCoAPS.Store(&h)
}

// CoAPAddr is host:port where clients reach the started node's CoAP port
// (the advertised host and the port it listens on); "" for a node not made
// by Start.
func (n *Node) CoAPAddr() string { return n.coapAddr }

// CoAPSAddr is host:port where devices reach the started node's coaps port
// (the advertised host and the port it listens on); "" when it serves none.
func (n *Node) CoAPSAddr() string { return n.coapsAddr }

// CoAPSStats returns the coaps listener's counters, or nil when the node
// serves no coaps port.
func (n *Node) CoAPSStats() *coaps.Stats {
	if n.coaps == nil {
		return nil
	}
	return n.coaps.Stats()
}

// servePlainCoAP is the CoAP transport's Plain: it hands the datagram to
// ServeDeviceCoAP's handler, if any.
func (n *Node) servePlainCoAP(dgram []byte, from netip.AddrPort, reply func([]byte) error) {
	if h := n.deviceCoAP.Load(); h != nil && *h != nil {
		(*h)(dgram, from, reply)
	}
}

// serveSecureCoAP is the coaps listener's Handler: it hands the datagram to
// ServeDeviceCoAPS's handler, if any.
func (n *Node) serveSecureCoAP(dgram []byte, from netip.AddrPort, identity string, reply func([]byte) error) {
	if h := n.deviceCoAPS.Load(); h != nil && *h != nil {
		(*h)(dgram, from, identity, reply)
	}
}

// listenCoAPS binds the coaps port, if addr names one: before the node
// opens, so that a bad address changes nothing.
func listenCoAPS(addr string) (*net.UDPConn, error) {
	if addr == "" {
		return nil, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, &AddrError{CoAPS: true, Addr: addr, Err: errors.New("want HOST:PORT or :PORT")}
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, &AddrError{CoAPS: true, Addr: addr, Err: err}
	}
	uc, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, &AddrError{CoAPS: true, Addr: addr, Err: err}
	}
	return uc, nil
}

// serveCoAPS serves the devices' DTLS sessions on the coaps socket uc
// (listenCoAPS), if any.
func (n *Node) serveCoAPS(uc *net.UDPConn, advHost string) error {
	if uc == nil {
		return nil
	}
	psk := n.cfg.DevicePSK
	if psk == nil {
		psk = func([]byte) ([]byte, error) { return nil, errNoDeviceKeys }
	}
	l, err := coaps.Serve(uc, coaps.Config{PSK: psk, Handler: n.serveSecureCoAP, Limits: n.cfg.Profile.DeviceDTLS,
		Log: n.log.Named("coaps")})
	if err != nil {
		return err
	}
	n.coaps = l
	n.coapsAddr = net.JoinHostPort(advHost, fmt.Sprint(l.Addr().Port()))
	n.log.Info("devices' coaps port", zap.String("addr", n.coapsAddr))
	return nil
}

// stopCoAPS closes the coaps port and its sessions.
func (n *Node) stopCoAPS() {
	if n.coaps != nil {
		if err := n.coaps.Close(); err != nil {
			n.log.Debug("coaps close", zap.Error(err))
		}
	}
}
