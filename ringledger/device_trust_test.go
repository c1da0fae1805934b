package ringledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/ringledger/placement"
)

// TestLiarTamperedDeviceSignatureIsRefused: a member that signs, as owner, a
// record whose device signature does not verify (its own signature over the
// record is valid) cannot make a replica keep it; an owner that answers a put
// of a device-signed reading with a record that dropped the device signature
// fails the put. The honest nodes' stores are unchanged.
func TestLiarTamperedDeviceSignatureIsRefused(t *testing.T) {
	r := newMemberRing(t, 5)
	ctx := context.Background()
	liar, succ, entry := r.nodes[r.ids[1]], r.nodes[r.ids[2]], r.nodes[r.ids[4]]
	dev := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, ed25519.SeedSize))
	g, id := liar.ledger.Genesis(), liar.ledger.Identity()

	// record signs, as the liar, a record of data carrying device d, stamped
	// from d's signature as the format requires; ok says whether its key is in
	// the liar's range as the replica knows the ring.
	record := func(data []byte, d *ledger.Device) ([]byte, bool) {
		salt, key := ledger.DeviceStamp("meter", d.Sig)
		at := time.Now().UnixNano()
		h := ledger.DataHash(data, at, salt)
		rec := &ledger.Record{Block: ledger.BlockRef{Branch: id.ID, Hash: g.Hash}, Data: data, HData: h, Key: key,
			Salt: salt, Thing: "meter", Time: at, TxID: ledger.TxID(g.Hash, h), Seq: uint64(salt[0]), Device: d}
		raw, err := ledger.SignRecord(rec, id)
		if err != nil {
			t.Fatal(err)
		}
		return raw, placement.MayOwn(succ.state(), liar.self(), key)
	}
	var good, tampered []byte
	for i := 0; good == nil || tampered == nil; i++ {
		data := []byte(fmt.Sprintf(`{"v":%d}`, i))
		d, err := ledger.SignDevice(dev, "meter", data)
		if err != nil {
			t.Fatal(err)
		}
		if raw, ok := record(data, d); ok && good == nil {
			good = raw
			continue
		}
		bad := &ledger.Device{Key: d.Key, Sig: append(ledger.HexSig(nil), d.Sig...)}
		bad.Sig[10] ^= 0x40
		if raw, ok := record(data, bad); ok && tampered == nil {
			tampered = raw
		}
	}
	from := r.peer(liar.self())
	before := settle(t, r)
	rf := send(t, succ, from, opReplicate, replicateBody{Records: []json.RawMessage{tampered}})
	if rf == nil || rf.Code != CodeRefused || !strings.Contains(rf.Reason, "device signature") {
		t.Fatalf("a record with a tampered device signature: %v, want refused for its device signature", rf)
	}
	unchanged(t, r, before, liar.self())
	// The same liar's record with a good device signature is taken: the
	// refusal above was the device signature's.
	if rf := send(t, succ, from, opReplicate, replicateBody{Records: []json.RawMessage{good}}); rf != nil {
		t.Fatalf("a record with a good device signature: %v", rf)
	}

	// An owner that drops the device signature from the record it signs.
	lieOnPuts(t, r, liar, func(b putBody) (putAnswer, error) {
		ans := putAnswer{Range: wireRange{From: r.ids[0], To: liar.self()}}
		for _, w := range b.Readings {
			w.Device = nil
			ans.Records = append(ans.Records, recordOf(t, w, id, g))
		}
		return ans, nil
	})
	var reading ledger.Reading
	for i := 0; ; i++ {
		data := []byte(fmt.Sprintf(`{"w":%d}`, i))
		d, _ := ledger.SignDevice(dev, "meter", data)
		if _, key := ledger.DeviceStamp("meter", d.Sig); placement.MayOwn(entry.state(), liar.self(), key) {
			reading = ledger.Reading{Thing: "meter", Data: data, Device: d}
			break
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := entry.Put(pctx, []ledger.Reading{reading}, PutOptions{}); err == nil {
		t.Fatal("a put answered with a record without the device signature succeeded")
	}
	if entry.Stats().BadAnswers == 0 {
		t.Error("the answer without the device signature was not counted as bad")
	}
}
