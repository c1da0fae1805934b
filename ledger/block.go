package ledger

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// BlockHeader holds every field H_BLOCK commits to. Counters and times are strings in
// JSON because JCS would round integers above 2^53.
type BlockHeader struct {
	Type    string `json:"type"`    // "Block"
	Network Hash   `json:"network"` // genesis hash
	Branch  Key    `json:"branch"`  // the miner's node ID
	No      uint64 `json:"no,string"`
	Prev    Hash   `json:"prev"`        // hash of block No-1 (the genesis hash for block 1)
	Time    int64  `json:"time,string"` // unix nanoseconds when the proof was found
	Nonce   uint64 `json:"nonce,string"`
	Proof   Hash   `json:"proof"`         // ProofDigest(parent's proof, branch, nonce): the seed of the next draw
	Seal    Hash   `json:"seal"`          // RFC 6962 Merkle root of the records attached to Prev
	Sealed  uint64 `json:"sealed,string"` // how many records Seal covers
	Miner   PubKey `json:"miner"`         // ed25519 public key; Branch = SHA-1(Miner)
}

// Block is a header with its hash and the miner's signature over that hash.
type Block struct {
	BlockHeader
	Hash Hash   `json:"hash"` // H_BLOCK = SHA-256(JCS(header))
	Sig  HexSig `json:"sig"`  // ed25519 over H_BLOCK
}

// PubKey is an ed25519 public key written as 64 hex characters.
type PubKey []byte

// HexSig is an ed25519 signature written as 128 hex characters.
type HexSig []byte

func (p PubKey) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(p)), nil }
func (p *PubKey) UnmarshalText(b []byte) error {
	v := make([]byte, ed25519.PublicKeySize)
	if err := decodeHex(v, b, "public key"); err != nil {
		return err
	}
	*p = v
	return nil
}
func (s HexSig) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(s)), nil }
func (s *HexSig) UnmarshalText(b []byte) error {
	v := make([]byte, ed25519.SignatureSize)
	if err := decodeHex(v, b, "signature"); err != nil {
		return err
	}
	*s = v
	return nil
}

// HeaderHash computes H_BLOCK: the SHA-256 of the header's canonical JSON.
func (h *BlockHeader) HeaderHash() (Hash, error) {
	b, err := Canonical(h)
	if err != nil {
		return Hash{}, err
	}
	return sha256.Sum256(b), nil
}

// SignBlock fills in the header's type, miner and branch from id, then its hash and signature.
func SignBlock(h BlockHeader, id *Identity) (*Block, []byte, error) {
	h.Type = "Block"
	h.Miner = PubKey(id.Public)
	h.Branch = id.ID
	hash, err := h.HeaderHash()
	if err != nil {
		return nil, nil, err
	}
	b := &Block{BlockHeader: h, Hash: hash, Sig: ed25519.Sign(id.Private, hash[:])}
	raw, err := Canonical(b)
	if err != nil {
		return nil, nil, err
	}
	return b, raw, nil
}

// ParseBlock decodes stored block bytes. It rejects unknown fields, so a block that
// carries anything its hash does not commit to is an error, not silently ignored.
func ParseBlock(raw []byte) (*Block, error) {
	var b Block
	if err := decodeStrict(raw, &b); err != nil {
		return nil, fmt.Errorf("block is not valid JSON: %w", err)
	}
	if b.Type != "Block" {
		return nil, fmt.Errorf("block type is %q, want \"Block\"", b.Type)
	}
	return &b, nil
}

// CheckSelf verifies what a block proves on its own: its hash commits to its header,
// its branch is its miner's ID, and the miner signed the hash.
func (b *Block) CheckSelf() error {
	want, err := b.HeaderHash()
	if err != nil {
		return err
	}
	if want != b.Hash {
		return &Mismatch{What: "block hash", Expected: want.String(), Actual: b.Hash.String()}
	}
	if len(b.Miner) != ed25519.PublicKeySize {
		return fmt.Errorf("block miner key has %d bytes", len(b.Miner))
	}
	if id := NodeID(ed25519.PublicKey(b.Miner)); id != b.Branch {
		return &Mismatch{What: "block branch (SHA-1 of miner key)", Expected: id.String(), Actual: b.Branch.String()}
	}
	if !ed25519.Verify(ed25519.PublicKey(b.Miner), b.Hash[:], b.Sig) {
		return &Mismatch{What: "block signature", Expected: "a valid ed25519 signature by the miner", Actual: "a signature that does not verify"}
	}
	return nil
}

func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytesReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}
