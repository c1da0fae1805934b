// Package node wires a flownode together: the ledger, the store, the miner
// and, once AttachRing gives it one, the ring, behind one small service (put,
// get, status, verify) that the HTTP API calls. Inside it is this node's
// share of the distributed ledger (dist): placement of readings on the
// successor of their key, forwarding to that owner, replication to the next
// k-1 successors, the txID pointer index, reads from any node, and the
// repair rounds that do handoff, re-replication and anti-entropy.
// docs/architecture.md follows one reading through it.
package node
