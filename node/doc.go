// Package node is the facade of one flownode and its embeddable Go API.
//
// Start runs a whole node in-process from one Config, as `flownode run` does:
// it opens the node's identity, store, ledger and miner (Open), listens for
// HTTP and WebSocket RPC on a ServeMux it owns (Handle mounts more on it:
// the daemon mounts package api there) and for CoAP, starts the Chord driver
// and creates or joins the ring, retrying the join in the background. Wait
// blocks until Start's context ends or a part fails; Stop leaves the ring and
// closes. A Profile (GatewayProfile, LaptopProfile, LocalProfile, or
// ProfileNamed for a command line) sets the store, the ring's timers and the
// ledger's limits together. Config.OnRecord sees every reading this node
// signs as owner once it is durable, Config.OnQuery every read it answers;
// both run on a goroutine of the node's own (see Example).
//
// Open alone gives a node without a ring (a ring of one) until AttachRing
// gives it one: tests and the offline tools use it.
//
// The path of one reading: Node.Put → ringledger (client.go) Put, which
// stamps it, computes its key and finds the key's owner → a put MESSAGE on
// the wire (wire.go), or a direct call when this node owns the key → on the
// owner, handlers.go handlePut → ownerPutReadings → ledger.Append, which
// signs the record and writes it in one group commit of the store → the
// owner's OnRecord hook, replication to its successors, the receipt back.
// The facade writes nothing to the store itself: records go through the
// ledger, placement and copies through ringledger. docs/architecture.md
// follows the reading in more detail.
package node
