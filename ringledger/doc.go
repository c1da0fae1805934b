// Package ringledger is one node's share of the distributed ledger: the
// records and txID pointers of the keys it owns on the Chord ring, and copies
// of its predecessors'. It places each reading on successor(key), has that
// owner sign and store it, replicates it to the owner's next k-1 successors,
// keeps the txID → key pointer index, reads from any node, and repairs copies
// after joins, leaves, failures and partitions. It knows the ring only
// through the narrow Ring interface (chord/driver.Driver in the daemon).
//
// The files are cut by direction, like go-libp2p-kad-dht:
//
//	wire.go       the peer requests and answers (JSON), and call, the client stub
//	errors.go     Refusal: a peer's structured no, with a Code that says what to do
//	members.go    Members: who is a member (now, or when a record was signed)
//	client.go     the asking side: Put, Record, RecordsByKey, RecordsByThing
//	handlers.go   the answering side: one handler per op, each saying what it checks
//	replicate.go  queues and batches of copies to the replicas
//	pointers.go   the index writes: txID pointers and history entries
//	history.go    the per-Thing time index: positions, checks, storing
//	history_query.go  a Thing's history and newest record, bucket by bucket
//	rebuild.go    indexing a range again (old data, lost history writes)
//	repair.go     repair rounds (handoff, re-replication, anti-entropy), Leave
//	placement.go  ranges and who holds what (pure functions)
//	routing.go    finding a key's owner: own range, cached ranges, Chord lookup
//	local.go      this node's own store: a ring of one, local reads
//
// A reading's way, in one direction (docs/architecture.md draws it):
//
//  1. client.go Put: the entry node stamps the readings (time, salt), computes
//     each key (H_DATA), groups them by owner (routing.go owner) and sends
//     each owner a put (putTo → wire.go call).
//  2. handlers.go handlePut → ownerPutReadings, on the owner: every key must
//     be in its range (else CodeMisrouted, and the entry node looks up again);
//     Config.Check may refuse a reading (CodeInput: device signatures, wot);
//     the ledger signs the readings into the head block and stores them in
//     one fsynced group commit, with the pointers and history entries of the
//     node's own positions (ownindex.go); replication (replicate.go) and the
//     other index writes (pointers.go) start; the answer carries the signed records once
//     they are durable (and on every replica with wait=replicas).
//  3. client.go checkPut, on the entry node: each record must verify, be the
//     reading it sent (its device signature kept), be signed by the owner it called (a member), with its
//     key in that owner's range as the entry node knows the ring; it then
//     becomes the client's receipt.
//  4. replicate.go → handlers.go handleReplicate, on each replica: each record
//     is checked (range, signer's membership, signature, txID, block) before
//     the ledger ingests it.
//
// Trust. The transport authenticated every sender: from.ID is a fact, and
// everything else a peer says is a claim, checked before it is acted on.
// With Config.Members set:
//
//   - every op: the sender must be a member now (memberNow), or CodeRefused;
//   - replicate: each pushed record and pointer lies in the sender's range
//     as this node knows the ring (placement.MayOwn: no live node it knows is
//     a closer successor); each record's signer was a member at the record's
//     time (members.go signers: an unknown membership is asked of the sender,
//     op membership, and learnt: it proves itself); ledger.Ingest checks the
//     rest; a pointer never overwrites another (checkPointers);
//   - pointers: the data key is in the sender's range (the owner of a record
//     writes its pointer), no overwrite, no contradiction with a record held;
//     history entries likewise: the record's key is in the sender's range,
//     and the entry is a record that checks (signature, txID, signer's
//     membership) at a position recomputed from it (checkHistory); copies
//     of history entries come from the owner of their position;
//   - put: the keys are in this node's range;
//   - repair pulls (repair.go pull): entries in the range asked for, signers
//     checked as for replicate, learnt from the peer pulled from;
//   - answers: put records (checkPut), ranges (learnRange caches a claimed
//     range only when placement.Agrees with this node's view; has answers
//     likewise, before a copy is dropped), records read from peers
//     (peerRecord: CheckSelf and the signer's membership at its time).
//
// Refusals are counted in Stats (Rejected, NotMember, BadAnswers). What no
// check can catch: an owner that signs a correct record and does not store
// it (its signature makes that provable), and a member that writes
// pointers for keys in its own range (as it could sign records there).
//
// Placement of the kinds of entries: a record lives at its data key; a
// txID pointer (txID → data key) at txID[:20], so that any node finds a
// record from its txID in two routed steps; a history entry (a copy of the
// record) at its Thing's hour bucket and at its Thing's extremes (history.go),
// so that a Thing's history costs a lookup per hour, not a question to every
// node; the blocks of a branch travel with the records that need them. The owner of a position is
// successor(position); its next k-1 successors hold copies.
//
// Repair: every SyncInterval, and at once when the range or the successors
// change, the owner reconciles its range (pred, self] with each of its k-1
// first successors, both ways (range digests, then lists of the sub-ranges
// that differ). That one mechanism is the handoff on join (the new node pulls
// its range from its successor, which held it), the re-replication after a
// failure (the successor's range grew; it pushes it on) and anti-entropy
// after a partition or a crash. A graceful leave runs it towards the
// replicas before leaving.
package ringledger
