// Package network makes a flownode ring permissioned: who may take part, and how a
// node proves it.
//
// A network has an authority: an ed25519 key pair whose private half stays off the
// nodes (network init writes it to a directory the operator keeps offline). Its public
// key is part of the network's identity: it is in the network's Description
// (network.json) and bound into the genesis block, so two networks with one name but
// different authorities have different genesis blocks.
//
// The authority admits a node by signing a Membership for the node's public key: an
// X.509 certificate (ed25519, signed by the authority key) whose subject names the node
// ID (SHA-1 of the node's public key, its Chord ID and branch) and the network, valid
// until its expiry. A node presents its membership as its TLS (and DTLS) certificate,
// so peers authenticate each other with standard handshakes: a handshake proves that
// the peer holds the key its membership names, and the membership proves that the
// authority admitted that key. Grinding keys buys nothing, because admission is per key.
//
// The authority revokes a member with a signed Revocation. Any member accepts one that
// verifies, keeps it, and passes it on; a revoked or expired member is refused by every
// peer. Members is a node's view of its network: the description, the memberships it
// has seen, and the revocations it holds. Its Verify is what the transports call on
// every handshake.
//
// Files: an authority directory holds authority.key (0600) and network.json; a node's
// data directory holds node.key, network.json, membership.pem and revocations.json.
package network
