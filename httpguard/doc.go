// Package httpguard decides what one HTTP client may cost a node and which
// requests it accepts at all, in front of everything the node serves on its
// HTTP port (the API, the Web of Things, the peers' WebSocket RPC).
//
// A Guard does four things, each bounded by Limits (one set per node
// profile, so a 128 MB gateway is tight):
//
//   - Connections (conns.go): at most MaxConns plain HTTP connections. A new
//     one at the cap takes the place of the oldest connection that is not
//     being served: idle, without a whole request header yet, or still
//     reading its body (stuck in it, under a flood); only when every one is
//     being served is the newcomer closed. Hijacked connections (WebSockets) are counted apart, up to
//     MaxHijacked, and never evicted: their handlers own them.
//   - Bodies (body.go): a request body is read by the guard before the
//     handler runs, within BodyTimeout (408 when it trickles), at most
//     MaxBody bytes (413), and only while the bytes of all bodies in flight
//     stay within BodyBytes: a request that cannot get its share within
//     BodyWait gets 503 with Retry-After.
//   - Media types (check.go): a POST, PUT or PATCH with a body carries JSON
//     (application/json or any application/*+json) or gets 415.
//   - Host and Origin (check.go): a Host that is not an IP literal,
//     localhost, the node's own host or an allowed one gets 421 (DNS
//     rebinding); a state-changing request or a WebSocket upgrade whose
//     Origin is neither same-origin nor allowed gets 403 (CSRF).
//
// Every refusal is a JSON body {"error": "..."}, the shape of the API's
// errors (api.ErrorBody).
package httpguard
