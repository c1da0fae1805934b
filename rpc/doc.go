// Package rpc carries Chord messages between nodes: one envelope and codec for every
// transport, request/reply correlation with deadlines and retries, and the WebSocket,
// CoAP and in-memory transports.
package rpc
