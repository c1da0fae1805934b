// Package rpc carries Chord messages between nodes: one envelope and codec for every
// transport, request/reply correlation with deadlines and retries, and the WebSocket,
// CoAP (plain or over DTLS) and in-memory transports.
//
// # Envelope and codec
//
// Every transport carries the same JSON Envelope:
// {type, id, from{id, addr}, to?, key?, payload?, error?}, with Flowchain's message
// names (TypeNotifyStabilize ... TypeMessage, listed in FlowchainTypes) and
// TypeError for error replies. A Codec is strict: exact field names, no unknown or
// repeated fields, no trailing data, a size limit (DefaultMaxSize, 64 KiB), known
// types only, ids of 40 lowercase hex characters, addresses of the form
// scheme://host:port. Failures wrap ErrTooLarge, ErrMalformed or ErrUnknownType.
// The package does not import chord; chord converts its Message to and from
// Envelope.
//
// # Transports
//
// A Transport sends one way (Send) or waits for the reply (Call). Each is built with
// the node's Handler, which answers incoming envelopes, and a zap logger.
//
//   - WS (gorilla/websocket): the node mounts Handler() at ReceivePattern,
//     "/node/{id}/receive", on its HTTP server. A node dials one connection per
//     peer address, to /node/<to.ID>/receive, or /node/any/receive when it does
//     not know the peer's ID (bootstrap joins); requests go out on it and replies
//     come back on it. Pings keep it alive; a dead one is redialed on next use.
//   - CoAP (plgd-dev/go-coap/v3, UDP): confirmable POSTs to /node/<to.ID>/receive,
//     the reply in the 2.04 response; refusals are 4.xx responses that carry an
//     error reply. A Send's POST carries the query "oneway"; its handler runs
//     after the envelope is accepted and its reply is dropped. It is one
//     non-confirmable datagram when it fits in CoAPConfig.MaxDatagram (1452
//     bytes), or up to 8 KiB of non-confirmable 1 KiB blocks (nothing waits
//     for an acknowledgement: a lost datagram is a lost message), sent from
//     the listening socket and taken by the read loop without go-coap's
//     per-peer machinery; else confirmable and block-wise, answered as soon as
//     it decodes. So no handler holds a worker for a round trip while it
//     sends. Router() lets the node add its own routes.
//   - CoAP with CoAPConfig.Auth (coaps://host:port): the same POSTs, but
//     every datagram, one-way messages included, travels inside a DTLS 1.2
//     session (pion/dtls v3.1.15) that both sides authenticated (see
//     below). A one-way message that fits in a datagram is a non-confirmable
//     POST on the session, a larger one a confirmable block-wise POST.
//   - MemTransport on a MemNetwork, for tests: seeded drops, delays, duplicates
//     and partitions.
//   - Multi picks one of them by the destination's scheme (ws://, coap://,
//     coaps://, mem://), so that a ring can mix transports.
//
// # Authenticated peers
//
// With an Auth (WSConfig.Auth, CoAPConfig.Auth) a transport handles nothing from
// a peer that has not proved, in a handshake, that it holds the key of a
// membership Auth.Verify accepts: TLS 1.3 inside the WebSocket, DTLS 1.2
// (TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 or CHACHA20_POLY1305, X25519, the
// members' ed25519 certificates both ways, extended master secret required)
// for CoAP. Every message is handled with the ID its session authenticated
// (AuthenticatedPeer) and refused unless its From.ID is that ID; a reply goes
// back on the session the request came on, never to a claimed address. A dialer
// that knows the ID it expects at an address (To.ID) refuses a peer that
// authenticates as another. Refusals are counted (Stats.Refused) and reported to
// Auth.Refused. Reverify closes the sessions of peers Verify now refuses (after a
// revocation).
//
// A source of datagrams costs an authenticating CoAP transport nothing until it
// proves it receives at its address: a ClientHello without a valid cookie gets
// a HelloVerifyRequest made statelessly (an HMAC of the source address and the
// time, valid 30 s), and only a ClientHello that echoes one starts a pion server
// session. pion cannot take over a cookie exchange made by someone else (it
// numbers handshake messages from the first ClientHello it sees, and the
// transcript covers the numbers), so this package's dialer fetches its cookie
// with a probe and starts pion's handshake with the cookie in its first
// ClientHello; peers are flownode nodes, and other DTLS clients are not served.
// Sessions are bounded: MaxHandshakes in progress (64, at most 16 per source IP),
// each within DialTimeout (3 s); MaxSessions in all (512); a session silent for
// IdleTimeout (2 min) is closed. Plain CoAP datagrams and stray records from a
// source without a session are dropped. Flooded from 10,000 source addresses,
// the transport's heap does not grow (TestCoAPSFlood logs the figures).
//
// # Calls, replies and retries
//
// Call correlates the reply by envelope ID on the connection it used (CoAP: by its
// token; the reply must still carry the request's ID). The caller keeps IDs unique
// among its calls in flight to one peer (else ErrDuplicateID). The far side stamps
// the request's ID on its handler's reply. A reply no Call waits for (the answer
// to a Send over WS or mem, or one that came too late) goes to the local Handler.
// An error reply becomes a *RemoteError.
//
// Call honours ctx's deadline; without one each attempt gets CallOptions.Timeout.
// Connection errors (ErrUnreachable, ErrConnLost) and timed-out attempts are
// retried up to CallOptions.Retries times with jittered exponential backoff; error
// replies and encoding errors never are. A retried request may run twice on the far
// side.
//
// Frames that fail to decode are logged with the reason and counted in Stats; a
// request whose id can still be read is answered with an error reply (CoAP always
// answers, with a 4.xx code). A handler that panics is logged with its stack and
// answered with an error reply.
//
// # go-coap
//
// The CoAP server runs its own read loop over go-coap's connection machinery,
// because go-coap v3.5.4's udp.Server answers every request after the 65,536th from
// a peer (when message IDs wrap) with a stale cached response, and scans that cache
// on every datagram. See respCache and coapServer. go-coap's per-connection timers
// (a goroutine each, polling every connection) are replaced by one housekeeping
// goroutine that visits only the connections with requests in flight each tick.
// Request messages are not returned to go-coap's message pool after Do: its
// block-wise layer may still read them (a data race otherwise). DTLS sessions are
// go-coap's dtls.Client built by hand (CoAP.session) for the same respCache; their
// socket is this package's dtlsServer, not pion's listener, for the stateless
// cookies above.
package rpc
