// Package store keeps the ledger in Badger: explicit key prefixes for blocks,
// records, indices and metadata, group-committed durable writes, and memory
// profiles that fit a 128 MB gateway.
//
// Files, by content:
//
//	store.go     Open, Close, Raw
//	options.go   profiles (gateway, laptop, local) and Badger's options
//	keys.go      key layout and the builders that address raw entries
//	write.go     the Write, Record and Block types; validation
//	commit.go    group commit, and why an acknowledged write is durable
//	dirsync.go   directory fsync for files Badger creates
//	read.go      point reads and index queries
//	iterate.go   streaming walks for the verifier
//	ring.go      txID pointers, Chord ring ranges and their digests
//	stats.go     counters for /metrics
//	logger.go    Badger's log → zap
//	jffs2*.go    refusing a data directory on JFFS2 flash
//
// Every Write is durable when it returns nil. Many concurrent writers share
// one sync, so ingest under load is bounded by Badger's write path, not by
// the disk's sync latency.
package store
