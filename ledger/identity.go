package ledger

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyFile is the name of the node's private key file inside its data directory.
const KeyFile = "node.key"

// Identity is a node's ed25519 key pair. Its ID (SHA-1 of the public key) is the node's
// Chord ID and the ID of its branch; it is stable across restarts.
type Identity struct {
	Private ed25519.PrivateKey
	Public  ed25519.PublicKey
	ID      Key
}

// NewIdentity derives an identity from a 32-byte ed25519 seed.
func NewIdentity(seed []byte) (*Identity, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("key seed must be %d bytes, got %d", ed25519.SeedSize, len(seed))
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	return &Identity{Private: priv, Public: pub, ID: NodeID(pub)}, nil
}

// GenerateIdentity makes a fresh identity from r (crypto/rand when nil).
func GenerateIdentity(r io.Reader) (*Identity, error) {
	if r == nil {
		r = rand.Reader
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(r, seed); err != nil {
		return nil, fmt.Errorf("generate node key: %w", err)
	}
	return NewIdentity(seed)
}

// NodeID is the Chord ID of the holder of pub: SHA-1 of the raw public key.
func NodeID(pub ed25519.PublicKey) Key {
	return Key(sha1.Sum(pub))
}

// LoadIdentity reads dir/node.key and never creates it: offline tools use it to learn
// which node a data dir belongs to. A missing key is an error wrapping fs.ErrNotExist.
func LoadIdentity(dir string) (*Identity, error) {
	path := filepath.Join(dir, KeyFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read node key: %w", err)
	}
	seed, derr := hex.DecodeString(strings.TrimSpace(string(b)))
	if derr != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("node key %s is damaged: want %d hex-encoded bytes", path, ed25519.SeedSize)
	}
	return NewIdentity(seed)
}

// LoadOrCreateIdentity reads dir/node.key, or creates it on first start. The file holds
// the hex seed; it is written with mode 0600 and synced before it is used, so a crash
// never leaves a node that signed with a key it then forgets.
func LoadOrCreateIdentity(dir string) (id *Identity, created bool, err error) {
	id, err = LoadIdentity(dir)
	switch {
	case err == nil:
		return id, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, err
	}
	path := filepath.Join(dir, KeyFile)
	id, err = GenerateIdentity(nil)
	if err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create data dir: %w", err)
	}
	if err := WriteFileSynced(path, []byte(hex.EncodeToString(id.Private.Seed())+"\n"), 0o600); err != nil {
		return nil, false, fmt.Errorf("write node key: %w", err)
	}
	return id, true, nil
}

// WriteFileSynced writes path through a synced temporary file beside it and a rename,
// then syncs the directory: after a crash the file is the old one or the new one,
// whole, never torn. Node keys, memberships and revocations are written with it.
func WriteFileSynced(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the rename, a no-op
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
