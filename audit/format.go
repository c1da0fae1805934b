package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
)

// The audit file is JSON lines (docs/merged.md): one Header, one BlockLine per
// merged block in merge order, one Trailer. Each line is exactly the encoding
// encodeLine gives its value, so a changed hex case, space or field name is a
// difference too.

// FileType and FileVersion name the format in the header.
const (
	FileType    = "flownode-audit"
	FileVersion = 1
)

// Header is the first line: the network, the window and each branch's place.
type Header struct {
	Type     string              `json:"type"` // FileType
	Version  int                 `json:"version"`
	Network  network.Description `json:"network"`
	Genesis  ledger.Hash         `json:"genesis"`
	From     string              `json:"from"` // RFC 3339; "": from genesis
	To       string              `json:"to"`   // RFC 3339, excluded; "": up to each owner's head at the walk
	Node     string              `json:"node"` // the node the auditor asked
	Walked   string              `json:"walked"`
	Branches []Branch            `json:"branches"`
	Sum      string              `json:"sum"`
}

// Branch is one branch of the ring as the audit found it.
type Branch struct {
	ID     ledger.Key `json:"id"`
	Addr   string     `json:"addr"`   // the owner's address in the ring walk
	Source string     `json:"source"` // the HTTP URL its blocks came from
	// Membership is the branch owner's membership certificate (DER): the
	// network's authority admitted the key that signs the branch's blocks.
	Membership []byte `json:"membership"`
	// Anchor is the block just before the window, as stored (absent when that
	// is genesis): the window's first block links to it.
	Anchor json.RawMessage `json:"anchor,omitempty"`
	Blocks int             `json:"blocks"` // in the window
	Head   Ref             `json:"head"`   // the last block in the window (the anchor when none)
}

// Ref names a block of a branch by number and hash (0 and the genesis hash: genesis).
type Ref struct {
	No   uint64      `json:"no,string"`
	Hash ledger.Hash `json:"hash"`
}

// BlockLine is one merged block: its stored bytes, what its seal covers (the
// records attached to its parent, in position order) and the running digest.
type BlockLine struct {
	Type   string          `json:"type"` // "block"
	Block  json.RawMessage `json:"block"`
	Covers []Cover         `json:"covers"`
	Digest ledger.Hash     `json:"digest"`
	Sum    string          `json:"sum"`
}

// Cover is one record a block's seal covers. HData and Leaf are absent when the
// ring could not supply the record (the trailer lists it as missing).
type Cover struct {
	Seq   uint64       `json:"seq,string"`
	TxID  ledger.Hash  `json:"txID"`
	HData *ledger.Key  `json:"hData,omitempty"` // with the parent's hash it recomputes the txID
	Leaf  *ledger.Hash `json:"leaf,omitempty"`  // RFC 6962 leaf hash of the record's bytes
}

// Trailer is the last line: totals, the merged head digest and completeness.
type Trailer struct {
	Type    string      `json:"type"` // "end"
	Blocks  int         `json:"blocks"`
	Records int         `json:"records"` // sealed records the ring supplied
	Head    ledger.Hash `json:"head"`    // the merged head digest
	Missing []Missing   `json:"missing"` // sealed records the ring could not supply
	Short   []Short     `json:"short"`   // seals covering more records than the ring lists
	Sum     string      `json:"sum"`
}

// Missing is a record a seal covers that no node could supply.
type Missing struct {
	TxID   ledger.Hash `json:"txID"`
	Branch ledger.Key  `json:"branch"`
	Block  uint64      `json:"block,string"` // the block it is attached to (its seal is the next block's)
	Seq    uint64      `json:"seq,string"`
	Key    *ledger.Key `json:"key,omitempty"` // its data key, when the ring's txID pointer still names it
	// Holders are the nodes that should hold it: the key's owner, then its
	// replicas, from the ring walk.
	Holders []Holder `json:"holders,omitempty"`
}

// Holder names a node of the ring walk.
type Holder struct {
	ID   ledger.Key `json:"id"`
	Addr string     `json:"addr"`
}

// Short is a seal that covers more records than any node lists for its block:
// the positions of the others are not known.
type Short struct {
	Branch ledger.Key `json:"branch"`
	Block  uint64     `json:"block,string"` // the sealing block
	Sealed uint64     `json:"sealed,string"`
	Listed int        `json:"listed"`
}

// encodeLine is the one encoding of every line: encoding/json in struct field
// order, without HTML escaping (blocks embed verbatim).
func encodeLine(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// lineSum chains a line to the one before it: SHA-256 of the previous line's sum
// (nothing for the header) and the line's encoding with "sum" empty. It catches
// a change in the fields no signature or hash of the ledger proves (seq, node
// addresses, the window) and lines dropped, added or swapped.
func lineSum(prev []byte, unsummed []byte) string {
	h := sha256.New()
	h.Write(prev)
	h.Write(unsummed)
	return hex.EncodeToString(h.Sum(nil))
}

// nextDigest is the running digest of the merged branch: d_i = SHA-256(d_{i-1} ‖
// H_BLOCK_i), d_0 the genesis hash.
func nextDigest(prev, blockHash ledger.Hash) ledger.Hash {
	var b [64]byte
	copy(b[:32], prev[:])
	copy(b[32:], blockHash[:])
	return sha256.Sum256(b[:])
}
