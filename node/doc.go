// Package node is the facade of one flownode: it opens the node's identity,
// store, ledger and miner from one Config, and, once AttachRing gives it a
// ring, its share of the distributed ledger (package ringledger). The HTTP
// API and the daemon call it: put, get, status, verify, leave. It writes
// nothing to the store itself: records go through the ledger, placement and
// copies through ringledger. docs/architecture.md follows one reading
// through it.
package node
