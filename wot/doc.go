// Package wot is the device-facing side of a node: the HTTP API, the Web of Things
// Thing registry and Thing Descriptions, and the dashboard. It calls the node service,
// never chord or store directly.
package wot
