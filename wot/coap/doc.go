// Package coap is the Web of Things' CoAP device front. Devices speak CoAP
// (RFC 7252) on two ports: plain, on the node's CoAP port beside the peers'
// DTLS (the transport tells them apart by the first byte, RFC 7983, and
// hands this package the plain datagrams: rpc.CoAPConfig.Plain,
// node.ServeDeviceCoAP, Server.Datagram); and over DTLS with a pre-shared
// key on the coaps port (package coaps decrypts and hands this package each
// datagram with its session's PSK identity: node.ServeDeviceCoAPS,
// Server.SecureDatagram). Its state is kept by Source (address, identity,
// DTLS or not), so the two never mix.
//
// Config.Authorize, when set, decides every request on a Thing from its
// Source and the scope it needs (read for GET and Observe, write for
// /object/{id}/send and any other method), before anything of it is kept:
// 4.01 Unauthorized without a valid credential (access.ErrNoCredential),
// 4.03 Forbidden when the credential does not cover the Thing
// (access.ErrForbidden), 5.03 when the check fails. /.well-known/core and
// /.well-known/wot stay open.
//
// It works datagram by datagram with go-coap's codec only, not go-coap's
// server or block-wise layer, which matches Block1 blocks by token while
// libcoap sends each block with a new token (go-coap#512): blocks are
// reassembled here, by source, path and Request-Tag.
//
// A confirmable POST is answered piggybacked on its ACK when Devices.Send
// returns within Config.SeparateAfter (500 ms): Send waits for a durable
// write on the ring, tens of milliseconds, so most exchanges cost one
// datagram each way. A slower one gets an empty ACK at that point, well
// before the client's 2-3 s ACK_TIMEOUT makes it retransmit, and the
// response follows as a confirmable message of its own. A retransmitted
// request finds its exchange (by source and message ID, the last
// ExchangesPerSource of each source) and gets the same answer again; it is
// not stored twice.
//
// Wiring, on a started node and its Web of Things layer:
//
//	front, err := coap.New(coap.Config{Devices: things, Authorize: check, Log: log})
//	n.ServeDeviceCoAP(front.Datagram)        // plain CoAP
//	n.ServeDeviceCoAPS(front.SecureDatagram) // coaps (node.Config.CoAPSListen, DevicePSK)
//	// and front.Close() before things.Close()
//
// Resources:
//
//	POST /object/{id}/send              a reading (JSON) or a batch (JSON array): 2.01 and the receipt(s)
//	GET  /object/{id}/viewer            the Thing's latest record; with Observe, each new record
//	GET  /things/{id}                   the Thing's TD (Content-Format 432)
//	GET  /things/{id}/properties/{name} a property's latest value; with Observe, each new one
//	GET  /.well-known/core              the resources (RFC 6690 link format)
//	GET  /.well-known/wot               the directory's TD (Content-Format 432)
//
// Files, by job:
//
//	server.go     Server, Source, Authorizer: the queue, the workers, bounds, the sweep
//	wire.go       decoding and encoding datagrams, options, block options
//	dispatch.go   a datagram's way: ACK/RST, dedup, Authorize, options, blocks, then the route
//	exchange.go   one request's life: dedup of retransmissions, piggybacked or separate responses
//	sources.go    what is kept per source address, and its bounds
//	block1.go     Block1 uploads, reassembled by source, path and Request-Tag (RFC 7959)
//	block2.go     Block2 downloads of large responses, from a short-lived cache
//	observe.go    Observe (RFC 7641): observers, notifications, confirmable checks
//	outbox.go     confirmable messages this server sends, retransmitted until acknowledged
//	routes.go     the resources and their handlers
//	async.go      handlers that wait on Devices: bounded, off the workers, a device's writes in order
//	linkformat.go /.well-known/core
package coap
