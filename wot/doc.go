// Package wot is the Web of Things layer: every device is a virtual Thing with a
// W3C Thing Description (TD 1.1), kept in a registry that lives on the ring like
// the records; readings are property writes that become ledger records; observers
// get each new value live on whichever node they are connected to.
//
// Files, by job:
//
//	wot.go        Things: the layer's state and its constructor; shared types
//	td.go         Thing Descriptions: building, deriving from a reading, the directory TD
//	forms.go      the forms a node adds to the TDs it serves
//	validate.go   TDs checked against the W3C TD 1.1 JSON Schema
//	registry.go   the TD registry on the ring (records at successor(SHA-1(id)))
//	cache.go      the node's cache of TDs
//	listing.go    the directory listing: each node answers for the range it owns
//	mergepatch.go JSON Merge Patch (RFC 7396) for PATCH /things/{id}
//	directory.go  HTTP: /.well-known/wot, /things (WoT Discovery directory API)
//	properties.go HTTP: read/write/observe properties (SSE, long-poll)
//	devices.go   WebSocket: Flowchain's /object/{id}/send, /viewer, /status
//	fanout.go    observation across the ring: design, wire, rendezvous handlers
//	publish.go   the entry node's publication queues
//	leases.go    leases at the rendezvous; renewing them; catching up
//	hub.go       this node's subscriptions: delivery in order, dedup, catch-up
//	latest.go    the newest value per Thing (readproperty)
//	live.go      Send, Subscribe, Latest, Present; the entry hook
//	presence.go  devices connected, for /object/{id}/status
//	conns.go     connection bounds and error answers of the live paths
//	provenance.go device keys in TDs; the owner's check of device-signed readings
//
// The CoAP device front is package wot/coap; it uses Devices. Imports flow
// down only: wot → node → ringledger.
package wot
