package checkpoint

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/flownode/flownode/ledger"
)

// Key names in signature lines. The owner signs under the branch's origin, as
// C2SP logs do; a witness under "flownode/<genesis>/witness/<its node ID>", so a
// reader knows which member cosigned without a key list.
func witnessName(genesis ledger.Hash, id ledger.Key) string {
	return "flownode/" + genesis.String() + "/witness/" + id.String()
}

// Signature algorithms of C2SP signed notes.
const (
	algEd25519       = 0x01 // a plain ed25519 signature over the note text
	algCosignatureV1 = 0x04 // c2sp.org/tlog-cosignature: timestamped
)

func keyHash(name string, alg byte, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte("\n"))
	h.Write([]byte{alg})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// ed25519Signer signs notes with a node's key: the owner's signature on its
// checkpoints.
type ed25519Signer struct {
	name string
	priv ed25519.PrivateKey
}

func (s ed25519Signer) Name() string { return s.name }
func (s ed25519Signer) KeyHash() uint32 {
	return keyHash(s.name, algEd25519, s.priv.Public().(ed25519.PublicKey))
}
func (s ed25519Signer) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.priv, msg), nil }

// cosigner makes cosignature/v1 signatures: ed25519 over
// "cosignature/v1\ntime <unix seconds>\n" + the note text, sent as the 8-byte
// big-endian time followed by the signature. The time says when the witness
// saw the checkpoint; the package's tests check these against the
// transparency-dev implementation.
type cosigner struct {
	name string
	priv ed25519.PrivateKey
	now  func() time.Time
}

func (s cosigner) Name() string { return s.name }
func (s cosigner) KeyHash() uint32 {
	return keyHash(s.name, algCosignatureV1, s.priv.Public().(ed25519.PublicKey))
}
func (s cosigner) Sign(msg []byte) ([]byte, error) {
	t := uint64(s.now().Unix())
	sig := binary.BigEndian.AppendUint64(make([]byte, 0, 8+ed25519.SignatureSize), t)
	return append(sig, ed25519.Sign(s.priv, cosignedMessage(t, msg))...), nil
}

func cosignedMessage(t uint64, msg []byte) []byte {
	return append(fmt.Appendf(nil, "cosignature/v1\ntime %d\n", t), msg...)
}

// verifier checks one key's signatures of one algorithm.
type verifier struct {
	name string
	alg  byte
	pub  ed25519.PublicKey
}

func (v verifier) Name() string    { return v.name }
func (v verifier) KeyHash() uint32 { return keyHash(v.name, v.alg, v.pub) }
func (v verifier) Verify(msg, sig []byte) bool {
	if v.alg == algEd25519 {
		return ed25519.Verify(v.pub, msg, sig)
	}
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(v.pub, cosignedMessage(binary.BigEndian.Uint64(sig), msg), sig[8:])
}

// Sign makes the owner's signed note of c with its identity: the bytes a branch
// publishes.
func Sign(c Checkpoint, id *ledger.Identity) ([]byte, error) {
	if c.Branch() != id.ID {
		return nil, fmt.Errorf("checkpoint of branch %s signed by node %s", c.Branch(), id.ID)
	}
	return note.Sign(&note.Note{Text: string(c.Marshal())}, ed25519Signer{name: c.Origin, priv: id.Private})
}

// Signed is a checkpoint opened and checked: the owner's signature verified, and
// the witnesses whose cosignatures verified.
type Signed struct {
	Checkpoint
	Note       []byte       // the signed note as received, every signature line kept
	Cosigners  []ledger.Key // witnesses with a valid cosignature, in note order
	CosignedAt []time.Time  // when each of them saw it
}

// Keys looks up a member's public key by node ID (network.Members in a node, the
// proof's memberships offline); ok is false for a node that is not a member.
type Keys func(id ledger.Key) (pub ed25519.PublicKey, ok bool)

// Open checks a signed checkpoint of the network with genesis g: it must be a
// well-formed checkpoint of that network, signed by its branch's owner. Cosignature
// lines of members verify or are dropped; lines of unknown keys are ignored.
func Open(raw []byte, g ledger.Hash, keys Keys) (*Signed, error) {
	text, _, ok := cutNote(raw)
	if !ok {
		return nil, errors.New("checkpoint: not a signed note")
	}
	c, err := Parse(text)
	if err != nil {
		return nil, err
	}
	genesis, branch, _ := ParseOrigin(c.Origin)
	if genesis != g {
		return nil, fmt.Errorf("checkpoint of another network (genesis %s)", genesis)
	}
	ownerKey, ok := keys(branch)
	if !ok {
		return nil, fmt.Errorf("checkpoint of branch %s, which is not a member", branch)
	}
	if ledger.NodeID(ownerKey) != branch {
		return nil, fmt.Errorf("branch %s's key does not hash to its ID", branch)
	}
	vs := []note.Verifier{verifier{name: c.Origin, alg: algEd25519, pub: ownerKey}}
	for _, sig := range signatureNames(raw) {
		id, ok := witnessID(g, sig)
		if !ok || id == branch {
			continue
		}
		if pub, ok := keys(id); ok && ledger.NodeID(pub) == id {
			vs = append(vs, verifier{name: sig, alg: algCosignatureV1, pub: pub})
		}
	}
	n, err := note.Open(raw, note.VerifierList(vs...))
	if err != nil {
		return nil, fmt.Errorf("checkpoint of branch %s: %w", branch, err)
	}
	s := &Signed{Checkpoint: c, Note: raw}
	owner := false
	for _, sig := range n.Sigs {
		if sig.Name == c.Origin {
			owner = true
			continue
		}
		id, _ := witnessID(g, sig.Name)
		s.Cosigners = append(s.Cosigners, id)
		s.CosignedAt = append(s.CosignedAt, cosignTime(sig))
	}
	if !owner {
		return nil, fmt.Errorf("checkpoint of branch %s: no valid signature of its owner", branch)
	}
	return s, nil
}

// Cosign adds the witness id's cosignature to a signed checkpoint it has checked.
func Cosign(raw []byte, id *ledger.Identity, g ledger.Hash, now func() time.Time) ([]byte, error) {
	text, _, ok := cutNote(raw)
	if !ok {
		return nil, errors.New("checkpoint: not a signed note")
	}
	sigs, err := unverifiedSigs(raw)
	if err != nil {
		return nil, err
	}
	return note.Sign(&note.Note{Text: string(text), UnverifiedSigs: sigs},
		cosigner{name: witnessName(g, id.ID), priv: id.Private, now: now})
}

// Merge adds to a signed checkpoint the signature lines of another copy of the same
// checkpoint (a witness's answer), keeping one line per key.
func Merge(raw, other []byte) ([]byte, error) {
	text, _, ok := cutNote(raw)
	otherText, _, ok2 := cutNote(other)
	if !ok || !ok2 || string(text) != string(otherText) {
		return nil, errors.New("checkpoint: merging signatures of different checkpoints")
	}
	a, err := unverifiedSigs(raw)
	if err != nil {
		return nil, err
	}
	b, err := unverifiedSigs(other)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var all []note.Signature
	for _, s := range append(a, b...) {
		k := fmt.Sprintf("%s %08x", s.Name, s.Hash)
		if !seen[k] {
			seen[k] = true
			all = append(all, s)
		}
	}
	return note.Sign(&note.Note{Text: string(text), UnverifiedSigs: all})
}

func unverifiedSigs(raw []byte) ([]note.Signature, error) {
	_, err := note.Open(raw, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return nil, fmt.Errorf("checkpoint: malformed signed note: %v", err)
	}
	return unverified.Note.UnverifiedSigs, nil
}

// cutNote splits a signed note into its text and its signature block.
func cutNote(raw []byte) (text, sigs []byte, ok bool) {
	i := indexBlankLine(raw)
	if i < 0 {
		return nil, nil, false
	}
	return raw[:i+1], raw[i+2:], true
}

func indexBlankLine(raw []byte) int {
	for i := 0; i+1 < len(raw); i++ {
		if raw[i] == '\n' && raw[i+1] == '\n' {
			return i
		}
	}
	return -1
}

// signatureNames lists the key names of a note's signature lines.
func signatureNames(raw []byte) []string {
	_, sigs, ok := cutNote(raw)
	if !ok {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(sigs), "\n") {
		rest, ok := strings.CutPrefix(line, "— ")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rest, " ")
		out = append(out, name)
	}
	return out
}

// witnessID reads the node ID from a witness's key name.
func witnessID(g ledger.Hash, name string) (ledger.Key, bool) {
	rest, ok := strings.CutPrefix(name, "flownode/"+g.String()+"/witness/")
	if !ok {
		return ledger.Key{}, false
	}
	id, err := ledger.ParseKey(rest)
	return id, err == nil
}

func cosignTime(sig note.Signature) time.Time {
	raw, err := base64.StdEncoding.DecodeString(sig.Base64)
	if err != nil || len(raw) < 4+8 {
		return time.Time{}
	}
	return time.Unix(int64(binary.BigEndian.Uint64(raw[4:])), 0).UTC()
}
