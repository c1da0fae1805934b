package ledger

import (
	"bufio"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// formatVectors reads the `name = value` lines of the ```vectors blocks in
// docs/ledger-format.md: the document is the test's oracle, so the two cannot drift.
func formatVectors(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("../docs/ledger-format.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v := map[string]string{}
	in := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```vectors"):
			in = true
		case strings.HasPrefix(line, "```"):
			in = false
		case in && strings.Contains(line, " = "):
			name, val, _ := strings.Cut(line, " = ")
			v[strings.TrimSpace(name)] = strings.TrimSpace(val)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return v
}

// buildVectors computes every vector from the documented inputs with the ledger's code.
func buildVectors(t *testing.T, in map[string]string) map[string]string {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	seed, err := hex.DecodeString(in["input.seed"])
	must(err)
	id, err := NewIdentity(seed)
	must(err)
	g, err := NewGenesis(Network{Name: in["input.network"], Mining: MiningParams{Rate: 20, MeanBlockTime: time.Second, Mean: 0, Variance: 0.2}})
	must(err)
	data, err := CanonicalData([]byte(in["input.data"]))
	must(err)
	salt, err := hex.DecodeString(in["input.salt"])
	must(err)
	tm, err := time.Parse(time.RFC3339Nano, in["input.time"])
	must(err)
	hData := DataHash(data, tm.UnixNano(), salt)
	ref := BlockRef{Branch: id.ID, No: 0, Hash: g.Hash}
	r := &Record{TxID: TxID(g.Hash, hData), Key: hData, HData: hData, Salt: salt, Thing: in["input.thing"],
		Time: tm.UnixNano(), Block: ref, Seq: 0, Data: data}
	rec, err := SignRecord(r, id)
	must(err)
	leaf := LeafHash(rec)
	root := MerkleRoot([]Hash{leaf})
	bt, err := time.Parse(time.RFC3339Nano, in["input.block1.time"])
	must(err)
	h := BlockHeader{Type: "Block", Network: g.Hash, Branch: id.ID, No: 1, Prev: g.Hash, Time: bt.UnixNano(),
		Nonce: 17, Proof: proofDigest(g.Hash, id.ID, 17), Seal: root, Sealed: 1, Miner: PubKey(id.Public)}
	header, err := Canonical(&h)
	must(err)
	blk, blkRaw, err := SignBlock(h, id)
	must(err)
	// Format 2: the same reading, signed by its device.
	devSeed, err := hex.DecodeString(in["input.device.seed"])
	must(err)
	dev, err := SignDevice(ed25519.NewKeyFromSeed(devSeed), in["input.thing"], []byte(in["input.data"]))
	must(err)
	devSalt, devKey := DeviceStamp(in["input.thing"], dev.Sig)
	devHData := DataHash(data, tm.UnixNano(), devSalt)
	dr := &Record{TxID: TxID(g.Hash, devHData), Key: devKey, HData: devHData, Salt: devSalt, Thing: in["input.thing"],
		Time: tm.UnixNano(), Block: ref, Seq: 1, Data: data, Device: dev}
	devRec, err := SignRecord(dr, id)
	must(err)
	return map[string]string{
		"device public key":       hex.EncodeToString(dev.Key),
		"device message":          string(DeviceMessage(in["input.thing"], data)),
		"device signature":        hex.EncodeToString(dev.Sig),
		"device salt":             hex.EncodeToString(devSalt),
		"device key":              devKey.String(),
		"device H_DATA":           devHData.String(),
		"device txID":             dr.TxID.String(),
		"device record":           string(devRec),
		"device record signature": hex.EncodeToString(dr.Signature),
		"public key":              hex.EncodeToString(id.Public),
		"node id":                 id.ID.String(),
		"genesis":                 string(g.Bytes),
		"genesis hash":            g.Hash.String(),
		"canonical data":          string(data),
		"time ns":                 itoa(tm.UnixNano()),
		"H_DATA":                  hData.String(),
		"txID":                    r.TxID.String(),
		"record":                  string(rec),
		"record leaf hash":        leaf.String(),
		"seal":                    root.String(),
		"empty seal":              MerkleRoot(nil).String(),
		"block1 header":           string(header),
		"block1 proof":            h.Proof.String(),
		"block1 H_BLOCK":          blk.Hash.String(),
		"block1 signature":        hex.EncodeToString(blk.Sig),
		"block1":                  string(blkRaw),
	}
}

// proofDigest is the miner's SHA256(seed ‖ branch ‖ nonce as 8 bytes big-endian),
// written out here because the ledger does not import the miner.
func proofDigest(seed Hash, branch Key, nonce uint64) Hash {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], nonce)
	return sha256.Sum256(append(append(seed[:], branch[:]...), n[:]...))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestFormatVectors(t *testing.T) {
	doc := formatVectors(t)
	got := buildVectors(t, doc)
	if os.Getenv("FLOWNODE_PRINT_VECTORS") != "" {
		for _, k := range sortedKeys(got) {
			t.Logf("%s = %s", k, got[k])
		}
	}
	if len(doc) < len(got) {
		t.Fatalf("docs/ledger-format.md holds %d vectors; the code computes %d", len(doc), len(got))
	}
	for name, want := range got {
		if doc[name] != want {
			t.Errorf("vector %q:\n doc:  %s\n code: %s", name, doc[name], want)
		}
	}
}
