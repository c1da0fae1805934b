// Package node wires a flownode together: the ledger, the store, the miner and (later)
// the ring, behind one small service that the API layer calls.
package node
