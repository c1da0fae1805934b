// Package checkpoint is what a branch commits to and what others can hold it to:
// signed checkpoints of a branch's tree (C2SP tlog-checkpoint signed notes,
// golang.org/x/mod/sumdb/note), cosignatures of witnesses (C2SP
// tlog-cosignature, cosignature/v1), and the proof that one record is in the
// ledger, checked offline with only the network's public description.
//
// A branch's tree is the RFC 6962 tree over its block hashes (ledger/branchtree.go),
// so a checkpoint of size N commits to blocks 1..N. The branch's owner signs its
// checkpoints; the members that replicate the branch check that each new one
// extends the one they saw before (a consistency proof) and cosign it. Two
// checkpoints of one branch that do not extend each other are an equivocation,
// and both signed notes are the evidence: nobody but the owner could have signed
// them.
package checkpoint

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/flownode/flownode/ledger"
)

// Checkpoint is the body of a branch's signed note:
//
//	flownode/<genesis hash>/<branch>   the origin: one per branch of one network
//	<size>                             blocks the tree covers (the head's number)
//	<root, base64>                     the tree's root
//	<head hash, hex>                   an extension line: the head block's hash
//
// The head line names the head block, so that evidence of an equivocation names
// both heads (the root commits to it as well: it is the tree's last leaf).
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   ledger.Hash
	Head   ledger.Hash // the hash of block Size; the genesis hash for size 0
}

// Origin is the checkpoint origin of a branch of the network with genesis g.
func Origin(genesis ledger.Hash, branch ledger.Key) string {
	return "flownode/" + genesis.String() + "/" + branch.String()
}

// ParseOrigin splits an origin into its genesis and branch.
func ParseOrigin(origin string) (genesis ledger.Hash, branch ledger.Key, err error) {
	rest, ok := strings.CutPrefix(origin, "flownode/")
	g, b, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		return genesis, branch, fmt.Errorf("origin %q is not flownode/<genesis>/<branch>", origin)
	}
	if genesis, err = ledger.ParseHash(g); err != nil {
		return genesis, branch, fmt.Errorf("origin %q: %w", origin, err)
	}
	if branch, err = ledger.ParseKey(b); err != nil {
		return genesis, branch, fmt.Errorf("origin %q: %w", origin, err)
	}
	return genesis, branch, nil
}

// Marshal is the note text of c.
func (c Checkpoint) Marshal() []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]), c.Head)
}

// Parse reads a note text strictly: exactly the four lines Marshal writes.
func Parse(text []byte) (Checkpoint, error) {
	var c Checkpoint
	lines := strings.Split(string(text), "\n")
	if len(lines) != 5 || lines[4] != "" {
		return c, errors.New("checkpoint: want 4 lines (origin, size, root, head)")
	}
	c.Origin = lines[0]
	if _, _, err := ParseOrigin(c.Origin); err != nil {
		return c, fmt.Errorf("checkpoint: %w", err)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return c, fmt.Errorf("checkpoint: size %q is not a decimal number", lines[1])
	}
	c.Size = size
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != len(c.Root) {
		return c, fmt.Errorf("checkpoint: root %q is not 32 bytes of base64", lines[2])
	}
	copy(c.Root[:], root)
	if c.Head, err = ledger.ParseHash(lines[3]); err != nil {
		return c, fmt.Errorf("checkpoint: head: %w", err)
	}
	if !bytes.Equal(c.Marshal(), text) {
		return c, errors.New("checkpoint: not in canonical form")
	}
	return c, nil
}

// Branch is the branch the checkpoint is of.
func (c Checkpoint) Branch() ledger.Key {
	_, b, _ := ParseOrigin(c.Origin)
	return b
}

// String names the checkpoint in logs and evidence: "size N, head H".
func (c Checkpoint) String() string {
	return fmt.Sprintf("size %d, head %s, root %s", c.Size, c.Head, c.Root)
}
