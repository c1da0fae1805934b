// Package peercache remembers live Chord peers — ID, address, latency — in a
// go-libp2p-kbucket routing table keyed by libp2p peer IDs derived from the
// nodes' ed25519 keys. A node uses it to find rejoin candidates, the
// low-latency ones first, when every successor is dead or after a restart,
// and to probe for a second ring after a partition heals.
//
// It is never used for routing: the table's XOR metric is not Chord's
// clockwise distance. It lives apart from package chord so that the pure
// protocol core does not import libp2p.
package peercache
