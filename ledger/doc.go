// Package ledger holds the node's identity, the genesis block, the node's own branch of
// virtual blocks, the signed JSON-LD records attached to them, their Merkle seals, and
// the verifier that proves all of it untampered. A record may also carry its device's own
// signature over the reading (device.go), which the verifier checks too. The exact byte formats are written down
// in docs/ledger-format.md.
package ledger
