package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"
)

// deviceKey is a test device's key, from a fixed seed.
func deviceKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// signed is a reading of thing signed by priv.
func signed(t testing.TB, priv ed25519.PrivateKey, thing, data string) Reading {
	t.Helper()
	d, err := SignDevice(priv, thing, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return Reading{Thing: thing, Data: []byte(data), Device: d}
}

func TestDeviceSignedReadingIsKeptAndVerifiesOffline(t *testing.T) {
	f := newFixture(t)
	dev := deviceKey(1)
	rcs, err := f.l.Append(context.Background(), []Reading{signed(t, dev, "meter-1", `{"kWh": 12.5, "n": 1}`), {Thing: "meter-2", Data: []byte(`1`)}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := VerifyDevice(rcs[0].Record, dev.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatalf("offline check of a device-signed record: %v", err)
	}
	// What the device signed is in the record, and checks with the key alone.
	if !ed25519.Verify(dev.Public().(ed25519.PublicKey), []byte(`{"data":{"kWh":12.5,"n":1},"thing":"meter-1","type":"DeviceReading"}`), r.Device.Sig) {
		t.Fatal("the device signature is not over the documented message")
	}
	if !bytes.Contains(rcs[0].Record, []byte(`"data":{"kWh":12.5,"n":1},"device":{"key":"`)) {
		t.Fatalf("device field not between data and hData: %s", rcs[0].Record)
	}
	// A record without a device signature does not pass for one, nor one by another device.
	if _, err := VerifyDevice(rcs[1].Record, dev.Public().(ed25519.PublicKey)); err == nil || !strings.Contains(err.Error(), "not signed by a device") {
		t.Fatalf("unsigned record: %v", err)
	}
	if _, err := VerifyDevice(rcs[0].Record, deviceKey(2).Public().(ed25519.PublicKey)); err == nil || !strings.Contains(err.Error(), "device key") {
		t.Fatalf("other device: %v", err)
	}
	if bytes.Contains(rcs[1].Record, []byte(`"device"`)) {
		t.Fatalf("a record without a device signature has the field: %s", rcs[1].Record)
	}
	f.mine()
	f.mustBeValid()
}

func TestBadDeviceSignatureStoresNothing(t *testing.T) {
	f := newFixture(t)
	dev := deviceKey(1)
	good := signed(t, dev, "meter-1", `{"n":1}`)
	other := signed(t, dev, "meter-1", `{"n":2}`)
	wrongSig := good
	wrongSig.Device = &Device{Key: good.Device.Key, Sig: other.Device.Sig}
	otherThing := good
	otherThing.Thing = "meter-9" // a signature is for one Thing
	otherData := good
	otherData.Data = []byte(`{"n":3}`)
	short := good
	short.Device = &Device{Key: good.Device.Key, Sig: good.Device.Sig[:10]}
	withKey := good
	k := Key{1}
	withKey.Key = &k
	for name, r := range map[string]Reading{"wrong signature": wrongSig, "other thing": otherThing, "other data": otherData, "short signature": short, "client key": withKey} {
		_, err := f.l.Append(context.Background(), []Reading{{Thing: "fine", Data: []byte(`1`)}, r})
		var ie *InputError
		if !errors.As(err, &ie) || ie.Index != 1 {
			t.Errorf("%s: %v, want an input error for reading 1", name, err)
		}
	}
	if n := f.l.Stats().Records; n != 0 {
		t.Fatalf("%d records stored after refusals", n)
	}
}

// A signed reading sent again, to any node and at any time, is its first record:
// its stamp is derived from the signature.
func TestReplayedSignedReadingIsTheSameRecord(t *testing.T) {
	f := newFixture(t)
	r := signed(t, deviceKey(1), "meter-1", `{"n":1}`)
	first, err := f.l.Append(context.Background(), []Reading{r})
	if err != nil {
		t.Fatal(err)
	}
	f.mine()
	// The entry node stamps it (StampReadings), later, as another node would.
	again := []Reading{r}
	if err := StampReadings(again, time.Unix(0, f.now).Add(time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	second, err := f.l.Append(context.Background(), again)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first[0].Record, second[0].Record) || f.l.Stats().Records != 1 {
		t.Fatalf("a replay made another record:\n%s\n%s", first[0].Record, second[0].Record)
	}
	// A node that stamps it otherwise (its own salt) is refused: one signed
	// reading has one stamp.
	forged := r
	forged.Time, forged.Salt = f.now, bytes.Repeat([]byte{9}, SaltSize)
	if _, err := f.l.Append(context.Background(), []Reading{forged}); err == nil || !strings.Contains(err.Error(), "derived from the device signature") {
		t.Fatalf("reading with a stamp not derived from its signature: %v", err)
	}
	if err := StampIdempotent(&Reading{Thing: r.Thing, Data: r.Data, Device: r.Device}, "k", time.Now()); err == nil {
		t.Fatal("an idempotency key was taken for a device-signed reading")
	}
}

// A node that signs a record with a device signature that does not verify (or moves
// it to other data) makes a record that fails CheckSelf, whoever checks it.
func TestForgedDeviceSignatureFailsCheckSelf(t *testing.T) {
	id, _ := NewIdentity(bytes.Repeat([]byte{7}, 32))
	dev := deviceKey(1)
	d, _ := SignDevice(dev, "meter-1", []byte(`{"n":1}`))
	record := func(data string, dv *Device) []byte {
		salt, key := DeviceStamp("meter-1", dv.Sig)
		c, _ := CanonicalData([]byte(data))
		h := DataHash(c, 5, salt)
		r := &Record{TxID: TxID(Hash{1}, h), Key: key, HData: h, Salt: salt, Thing: "meter-1", Time: 5,
			Block: BlockRef{Branch: id.ID, Hash: Hash{1}}, Data: c, Device: dv}
		raw, err := SignRecord(r, id)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	check := func(raw []byte) error {
		r, err := ParseRecord(raw)
		if err != nil {
			return err
		}
		return r.CheckSelf(raw)
	}
	if err := check(record(`{"n":1}`, d)); err != nil {
		t.Fatalf("good record: %v", err)
	}
	bad := *d
	bad.Sig = append(HexSig(nil), d.Sig...)
	bad.Sig[3] ^= 1
	var m *Mismatch
	if err := check(record(`{"n":1}`, &bad)); !errors.As(err, &m) || m.What != "device signature" {
		t.Fatalf("flipped device signature: %v", err)
	}
	if err := check(record(`{"n":2}`, d)); !errors.As(err, &m) || m.What != "device signature" {
		t.Fatalf("device signature moved to other data: %v", err)
	}
}
