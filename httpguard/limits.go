package httpguard

import "time"

// Limits is what the clients of one node may cost it together. The node's
// profiles hold one each (node.Profile.HTTP).
type Limits struct {
	// MaxConns is the most plain HTTP connections open at once (hijacked
	// ones not counted): each holds a goroutine and two 4 KiB buffers.
	MaxConns int
	// MaxHijacked is the most hijacked (WebSocket) connections at once: the
	// peers' RPC and the Web of Things' device and viewer sockets together.
	MaxHijacked int
	// BodyBytes is the most request body bytes held at once by the requests
	// being served; a body is weighed by its Content-Length, or MaxBody when
	// it is sent chunked.
	BodyBytes int64
	// BodyWait is how long a request waits for its share of BodyBytes
	// before it is answered 503.
	BodyWait time.Duration
	// HeaderTimeout bounds the reading of a request's header.
	HeaderTimeout time.Duration
	// MaxHeaderBytes bounds a request's header (Go's default is 1 MiB per
	// connection: MaxConns of them would not fit a gateway). Over it: 431.
	MaxHeaderBytes int
	// BodyTimeout bounds the reading of a request's body.
	BodyTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout time.Duration
}

// GatewayLimits are for a 128 MB gateway: 256 connections and one maximal
// (1 MiB) body in flight, besides bodies of at most 4 KiB, which read at
// once. Storing a maximal batch takes the gateway node about 30 MB of heap
// at its peak, and two at once took it past 70 MB: one at a time holds it
// within its budget (docs/api.md, "Limits and refusals") under 30
// concurrent maximal batches. 5000 connections trickling their bodies
// measured 20 MB of RssAnon at 256 held, 41 MB at 512.
func GatewayLimits() Limits {
	return Limits{MaxConns: 256, MaxHijacked: 512, BodyBytes: 1 << 20, BodyWait: 5 * time.Second,
		HeaderTimeout: 5 * time.Second, MaxHeaderBytes: 16 << 10, BodyTimeout: 10 * time.Second, IdleTimeout: time.Minute}
}

// LaptopLimits are for dev nodes and servers: room for the tests' and
// benchmarks' many clients, still bounded.
func LaptopLimits() Limits {
	return Limits{MaxConns: 4096, MaxHijacked: 2048, BodyBytes: 64 << 20, BodyWait: 5 * time.Second,
		HeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10, BodyTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
}
