// Package api is the HTTP side of a node: the JSON API under /api/v1 (records,
// keys, Things' records, blocks, verify, node and ring), the JSON-LD context,
// the health probes /healthz and /readyz, the Prometheus metrics at /metrics,
// and the dashboard at /. docs/api.md is its contract.
//
// It calls the node facade (package node) and uses ledger types, never chord,
// rpc or store directly.
//
// The types the API reads and answers are declared once, so that clients in this
// module (cmd/flownode, scripts) decode with the same declarations: PutRequest,
// NodeInfo and NodeStats, RingWalk, RecordList, BlockList and ErrorBody here;
// node.Receipt (a put's answer), node.Peer and ledger.Report (verify's answer)
// where they are defined.
//
// The name wot is kept for the Web of Things layer (Thing Descriptions, a Thing
// registry), which does not exist yet; this package is not it.
package api
