package checkpoint

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	tdlog "github.com/transparency-dev/formats/log"
	tdnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/flownode/flownode/ledger"
)

func identity(t *testing.T, b byte) *ledger.Identity {
	t.Helper()
	id, err := ledger.NewIdentity(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

var genesis = ledger.Hash(sha256.Sum256([]byte("genesis")))

func keysOf(ids ...*ledger.Identity) Keys {
	return func(id ledger.Key) (ed25519.PublicKey, bool) {
		for _, i := range ids {
			if i.ID == id {
				return i.Public, true
			}
		}
		return nil, false
	}
}

func sample(owner *ledger.Identity) Checkpoint {
	return Checkpoint{Origin: Origin(genesis, owner.ID), Size: 7,
		Root: ledger.Hash(sha256.Sum256([]byte("root"))), Head: ledger.Hash(sha256.Sum256([]byte("head")))}
}

var fixedNow = func() time.Time { return time.Unix(1767225600, 0) }

// The notes are C2SP signed notes: transparency-dev's own parser and cosignature
// verifier, an implementation independent of this package, accept them.
func TestNotesAreC2SPCheckpointsAndCosignatures(t *testing.T) {
	owner, witness := identity(t, 1), identity(t, 2)
	c := sample(owner)
	raw, err := Sign(c, owner)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := note.NewEd25519VerifierKey(c.Origin, owner.Public)
	if err != nil {
		t.Fatal(err)
	}
	ov, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	parsed, rest, _, err := tdlog.ParseCheckpoint(raw, c.Origin, ov)
	if err != nil {
		t.Fatalf("transparency-dev refuses the checkpoint: %v\n%s", err, raw)
	}
	if parsed.Size != c.Size || !bytes.Equal(parsed.Hash, c.Root[:]) || string(rest) != c.Head.String()+"\n" {
		t.Fatalf("transparency-dev reads %+v", parsed)
	}

	cosigned, err := Cosign(raw, witness, genesis, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	wkey, err := note.NewEd25519VerifierKey(witnessName(genesis, witness.ID), witness.Public)
	if err != nil {
		t.Fatal(err)
	}
	wv, err := tdnote.NewVerifierForCosignatureV1(wkey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(cosigned, note.VerifierList(ov, wv))
	if err != nil || len(n.Sigs) != 2 {
		t.Fatalf("transparency-dev's cosignature verifier: %v (%d signatures)\n%s", err, len(n.Sigs), cosigned)
	}
	if ts, err := tdnote.CoSigV1Timestamp(n.Sigs[1]); err != nil || !ts.Equal(fixedNow()) {
		t.Fatalf("cosignature time %v (%v)", ts, err)
	}

	s, err := Open(cosigned, genesis, keysOf(owner, witness))
	if err != nil {
		t.Fatal(err)
	}
	if s.Checkpoint != c || len(s.Cosigners) != 1 || s.Cosigners[0] != witness.ID || !s.CosignedAt[0].Equal(fixedNow()) {
		t.Fatalf("opened %+v", s)
	}
}

func TestOpenRefusesWhatItCannotTrust(t *testing.T) {
	owner, witness, stranger := identity(t, 1), identity(t, 2), identity(t, 3)
	raw, err := Sign(sample(owner), owner)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(raw); i++ {
		flipped := append([]byte(nil), raw...)
		flipped[i] ^= 1
		if s, err := Open(flipped, genesis, keysOf(owner)); err == nil && bytes.Equal(s.Checkpoint.Marshal(), sample(owner).Marshal()) == false {
			t.Fatalf("byte %d flipped: opened as %+v", i, s.Checkpoint)
		} else if err == nil && !bytes.Equal(flipped, raw) && strings.Count(string(flipped), "\n") == strings.Count(string(raw), "\n") {
			// A flip inside the signature's base64 padding can leave the decoded bytes
			// unchanged; anything else must fail.
			t.Logf("byte %d flipped and still opened (base64 slack?)", i)
		}
	}
	if _, err := Open(raw, ledger.Hash{}, keysOf(owner)); err == nil {
		t.Fatal("a checkpoint of another network opened")
	}
	if _, err := Open(raw, genesis, keysOf(witness)); err == nil {
		t.Fatal("a checkpoint of a non-member opened")
	}
	// Signed by another key under the owner's name.
	forged, err := note.Sign(&note.Note{Text: string(sample(owner).Marshal())}, ed25519Signer{name: sample(owner).Origin, priv: stranger.Private})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(forged, genesis, keysOf(owner)); err == nil {
		t.Fatal("a checkpoint signed by another key opened")
	}
	if _, err := Sign(sample(owner), witness); err == nil {
		t.Fatal("a node signed another branch's checkpoint")
	}
	// A stranger's cosignature is not counted; a member's is, once, after Merge.
	bad, err := Cosign(raw, stranger, genesis, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	good, err := Cosign(raw, witness, genesis, fixedNow)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := Merge(bad, good)
	if err != nil {
		t.Fatal(err)
	}
	merged, err = Merge(merged, good)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(merged, genesis, keysOf(owner, witness))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Cosigners) != 1 || s.Cosigners[0] != witness.ID {
		t.Fatalf("cosigners %v, want just the witness", s.Cosigners)
	}
	if strings.Count(string(merged), "— ") != 3 {
		t.Fatalf("merged note:\n%s", merged)
	}
	other := sample(owner)
	other.Size++
	otherRaw, _ := Sign(other, owner)
	if _, err := Merge(raw, otherRaw); err == nil {
		t.Fatal("merged the signatures of two checkpoints")
	}
}

func TestParseIsStrict(t *testing.T) {
	c := sample(identity(t, 1))
	good := string(c.Marshal())
	for _, bad := range []string{
		strings.Replace(good, "\n7\n", "\n07\n", 1),
		strings.Replace(good, "\n7\n", "\n+7\n", 1),
		good + "extra\n",
		strings.TrimSuffix(good, "\n"),
		strings.Replace(good, "flownode/", "other/", 1),
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
	if got, err := Parse([]byte(good)); err != nil || got != c {
		t.Fatalf("%+v %v", got, err)
	}
}
