package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Provenance from the sensor itself: a device that holds its own ed25519 key (declared in
// its Thing Description) signs each reading, and the owner keeps that signature in the
// record's "device" field, next to its own. The record then proves which device produced
// the value, not only which node signed it: anyone holding the device's public key checks
// it offline (VerifyDevice). docs/ledger-format.md ("Device signature") has the bytes.

// DeviceReadingType is the "type" member of what a device signs: it keeps a device
// signature from being taken for a signature over anything else the key might sign.
const DeviceReadingType = "DeviceReading"

// Device is a device's signature over a reading, kept in the record. Fields are in
// RFC 8785 key order.
type Device struct {
	Key PubKey `json:"key"` // the device's ed25519 public key, 64 hex
	Sig HexSig `json:"sig"` // ed25519 by Key over DeviceMessage(thing, data)
}

// DeviceMessage is what a device signs for a reading of thing: the canonical JSON
// (RFC 8785) of {"data": data, "thing": thing, "type": "DeviceReading"}. canonicalData
// must be the reading's canonical JSON and thing a valid Thing id (no character of one
// needs escaping in JSON), so the bytes are written out directly.
//
// Neither the node's time nor the salt is signed: the device does not know them. A
// device that may send the same value twice puts its own counter or time in the data;
// the same signed reading sent again is the same record (StampReadings).
func DeviceMessage(thing string, canonicalData []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(canonicalData) + len(thing) + 48)
	b.WriteString(`{"data":`)
	b.Write(canonicalData)
	b.WriteString(`,"thing":"`)
	b.WriteString(thing)
	b.WriteString(`","type":"` + DeviceReadingType + `"}`)
	return b.Bytes()
}

// SignDevice signs a reading of thing with a device's key: the tool of devices and
// tests (flownode device sign). data need not be canonical; the signature is over its
// canonical form, which is what the ledger stores.
func SignDevice(priv ed25519.PrivateKey, thing string, data []byte) (*Device, error) {
	if err := ValidThingID(thing); err != nil {
		return nil, err
	}
	canon, err := CanonicalData(data)
	if err != nil {
		return nil, err
	}
	pub, _ := priv.Public().(ed25519.PublicKey)
	return &Device{Key: PubKey(pub), Sig: ed25519.Sign(priv, DeviceMessage(thing, canon))}, nil
}

// check verifies d over a reading of thing with canonical data.
func (d *Device) check(thing string, canonicalData []byte) error {
	if len(d.Key) != ed25519.PublicKeySize || len(d.Sig) != ed25519.SignatureSize {
		return &Mismatch{What: "device key and signature", Expected: "an ed25519 key and signature", Actual: "missing or malformed"}
	}
	if !ed25519.Verify(ed25519.PublicKey(d.Key), DeviceMessage(thing, canonicalData), d.Sig) {
		return &Mismatch{What: "device signature", Expected: "a valid ed25519 signature by device " + hex.EncodeToString(d.Key) + " over the reading", Actual: "a signature that does not verify"}
	}
	return nil
}

// VerifyDevice is the offline check of a record's provenance: the record verifies on its
// own (Record.CheckSelf: canonical form, the node's signature, hData, txID, and the
// device signature it carries) and that device signature is by devicePub. It needs
// nothing but the record's bytes and the device's public key (from the Thing's TD).
// It does not check that the signing node was a member of the network: a verifier
// that cares checks the signer against the network's membership.
func VerifyDevice(raw []byte, devicePub ed25519.PublicKey) (*Record, error) {
	r, err := ParseRecord(raw)
	if err != nil {
		return nil, err
	}
	if err := r.CheckSelf(raw); err != nil {
		return nil, err
	}
	if r.Device == nil {
		return nil, &Mismatch{What: "record device", Expected: "a device signature by " + hex.EncodeToString(devicePub), Actual: "none: the reading was not signed by a device"}
	}
	if !bytes.Equal(r.Device.Key, devicePub) {
		return nil, &Mismatch{What: "record device key", Expected: hex.EncodeToString(devicePub), Actual: hex.EncodeToString(r.Device.Key)}
	}
	return r, nil
}

// deviceStampDomain separates the stamps derived from device signatures from those of
// idempotency keys (StampIdempotent).
const deviceStampDomain = "flownode/device-reading/v1\x00"

// stampDevice stamps a device-signed reading from its signature: its salt and ring key
// are derived from the signature (deterministic in ed25519), and it is marked Resend.
// The same signed reading, sent again to any node, is then routed to the same owner,
// which finds its record (findResent) instead of signing a second one: a replayed
// reading adds nothing to the ledger.
func stampDevice(r *Reading, now time.Time) error {
	if r.Key != nil {
		return errors.New("a device-signed reading takes no client-chosen key: its key is derived from the device signature, so that a replay is the same record")
	}
	if len(r.Device.Sig) != ed25519.SignatureSize {
		return fmt.Errorf("device signature is %d bytes, want %d", len(r.Device.Sig), ed25519.SignatureSize)
	}
	salt, k := DeviceStamp(r.Thing, r.Device.Sig)
	r.Time, r.Salt, r.Resend, r.Key = now.UnixNano(), salt, true, &k
	return nil
}

// DeviceStamp is the salt and ring key of a device-signed reading, derived from its
// signature: S = SHA256("flownode/device-reading/v1" ‖ 0x00 ‖ thing ‖ 0x00 ‖ sig),
// salt = S[:16], key = SHA1(S). A record with a device signature must have them
// (CheckSelf), so one signed reading is one record on every node.
func DeviceStamp(thing string, sig []byte) (salt []byte, key Key) {
	h := sha256.New()
	h.Write([]byte(deviceStampDomain))
	h.Write([]byte(thing))
	h.Write([]byte{0})
	h.Write(sig)
	sum := h.Sum(nil)
	return sum[:SaltSize:SaltSize], Key(sha1.Sum(sum))
}

// checkStamp refuses a device-signed reading or record whose salt or key is not the
// one derived from its signature.
func (d *Device) checkStamp(thing string, salt []byte, key Key) error {
	wantSalt, wantKey := DeviceStamp(thing, d.Sig)
	if !bytes.Equal(salt, wantSalt) || key != wantKey {
		return &Mismatch{What: "device-signed salt and key", Expected: hex.EncodeToString(wantSalt) + " " + wantKey.String() + " (derived from the device signature)", Actual: hex.EncodeToString(salt) + " " + key.String()}
	}
	return nil
}

// stampDevices returns readings with every unstamped device-signed reading stamped
// from its signature (a copy of the slice when one is; readings itself otherwise).
func stampDevices(readings []Reading, now time.Time) ([]Reading, error) {
	var out []Reading
	for i := range readings {
		if readings[i].Device == nil || readings[i].Salt != nil || readings[i].Time != 0 {
			continue
		}
		if out == nil {
			out = append([]Reading(nil), readings...)
		}
		if err := stampDevice(&out[i], now); err != nil {
			return nil, &InputError{Index: i, Err: err}
		}
	}
	if out == nil {
		return readings, nil
	}
	return out, nil
}

// checkDevices verifies the device signature and derived stamp of every device-signed
// reading (datas: their canonical data), on several cores for large batches: an ed25519
// verification costs about three signatures.
func checkDevices(readings []Reading, datas [][]byte) error {
	var idx []int
	for i := range readings {
		if readings[i].Device != nil {
			idx = append(idx, i)
		}
	}
	errs := make([]error, len(idx))
	parallel(len(idx), func(j int) {
		r := &readings[idx[j]]
		key := Key{}
		if r.Key != nil {
			key = *r.Key
		}
		err := r.Device.checkStamp(r.Thing, r.Salt, key)
		if err == nil {
			err = r.Device.check(r.Thing, datas[idx[j]])
		}
		errs[j] = err
	})
	for j, err := range errs {
		if err != nil {
			return &InputError{Index: idx[j], Err: fmt.Errorf("the device signature does not check: %w", err)}
		}
	}
	return nil
}
