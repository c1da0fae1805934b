package wot

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flownode/flownode/ledger"
)

// Provenance from the sensor itself. A Thing whose TD declares a device key
// (the term flownode:deviceKey, 64 hex characters of a raw ed25519 public
// key) takes only readings its device signed with that key: the node that
// owns a reading's key checks it before signing (checkDeviceReadings, a
// node.CheckReadings hook, so a reading that entered through any node is
// checked where it is signed), and the record keeps the device signature
// (ledger.Device). A reading with a device signature for a Thing that
// declares no key, or another key, is refused too: the signature would claim
// a provenance the TD does not back.

const (
	// deviceKeyTerm is the TD term declaring a Thing's device key.
	deviceKeyTerm = tdPrefix + ":deviceKey"
	// tdPrefix and tdNamespace: the prefix of flownode's TD terms and its
	// IRI, which a TD that uses them gets in its @context.
	tdPrefix    = "flownode"
	tdNamespace = "urn:flownode:td:v1#"
)

// deviceKeyOf returns the device key a TD declares, nil when none. The error
// wraps ErrBadInput and says what is wrong with the value.
func deviceKeyOf(td map[string]any) (ed25519.PublicKey, error) {
	v, ok := td[deviceKeyTerm]
	if !ok {
		return nil, nil
	}
	s, _ := v.(string)
	k, err := hex.DecodeString(s)
	if err != nil || len(k) != ed25519.PublicKeySize || s != strings.ToLower(s) {
		return nil, fmt.Errorf("%w: %s must be the device's ed25519 public key as 64 lowercase hex characters (flownode device keygen prints it), not %s", ErrBadInput, deviceKeyTerm, shortJSON(v))
	}
	return ed25519.PublicKey(k), nil
}

// declareDeviceKey checks the device key a client's TD declares, if any, and
// gives the TD's @context the flownode prefix when it lacks it, so that the
// term expands to an IRI of ours for a JSON-LD processor. A TD that binds the
// prefix to another IRI is refused.
func declareDeviceKey(td map[string]any) error {
	k, err := deviceKeyOf(td)
	if err != nil || k == nil {
		return err
	}
	prefix := map[string]any{tdPrefix: tdNamespace}
	switch c := td["@context"].(type) {
	case string:
		td["@context"] = []any{c, prefix}
	case []any:
		for _, e := range c {
			if m, ok := e.(map[string]any); ok {
				if iri, ok := m[tdPrefix]; ok {
					if iri != tdNamespace {
						return fmt.Errorf("%w: the TD's @context binds the prefix %q to %s; %s needs it bound to %q", ErrBadInput, tdPrefix, shortJSON(iri), deviceKeyTerm, tdNamespace)
					}
					return nil
				}
			}
		}
		td["@context"] = append(c, prefix)
	}
	// Any other @context is the schema's to refuse.
	return nil
}

// storedDeviceKey reads the device key of a stored TD (nil: none, or no TD).
func storedDeviceKey(td []byte) (ed25519.PublicKey, error) {
	if len(td) == 0 || !bytes.Contains(td, []byte(`"`+deviceKeyTerm+`"`)) {
		return nil, nil
	}
	m, err := decodeTD(td)
	if err != nil {
		return nil, err
	}
	return deviceKeyOf(m)
}

const (
	// deviceKeyFreshFor is how old a Thing's device key (or its having
	// none, or no TD) may be when the owner checks a reading against it: a
	// key declared, changed or removed through another node is enforced at
	// most that late. It costs each owner one registry read per active Thing
	// per period; most TDs declare no key, and every Thing's readings reach
	// every owner.
	deviceKeyFreshFor = 5 * time.Second
	// deviceKeyCacheSize bounds the device keys cached (about 200 bytes
	// each, no TD bytes): more than the TDs cached, as every owner sees
	// readings of every active Thing.
	deviceKeyCacheSize = 16384
)

// keyOnly is v without its TD's bytes: what the device-key cache keeps.
func (v tdVersion) keyOnly() tdVersion {
	v.td = nil
	return v
}

// withDeviceKey fills in v's device key from its TD, once per version read.
func (v tdVersion) withDeviceKey() tdVersion {
	if v.present() {
		v.deviceKey, v.deviceKeyErr = storedDeviceKey(v.td)
	}
	return v
}

// deviceKey returns the device key thing's TD declares now (nil: none, or
// no TD), from a version at most deviceKeyFreshFor old. The absence of a TD
// is cached as briefly. A failed lookup is an error, never "no key".
func (t *Things) deviceKey(ctx context.Context, thing string) (ed25519.PublicKey, error) {
	if v, ok := t.reg.keys.get(thing, deviceKeyFreshFor); ok {
		return v.deviceKey, v.deviceKeyErr
	}
	res, err, _ := t.reg.flight.Do("device-key\x00"+thing, func() (any, error) {
		// Shared by every waiting caller: the first one's leaving must not
		// fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dirTimeout)
		defer cancel()
		v, _, err := t.reg.latest(ctx, thing)
		return v, err
	})
	if err != nil {
		return nil, err
	}
	v := res.(tdVersion)
	return v.deviceKey, v.deviceKeyErr
}

// checkDeviceReadings is the owner's check (node.CheckReadings) of readings
// it is about to sign: each reading of a Thing declaring a device key carries
// a device signature by that key, and no other reading carries one. That the
// signature verifies is the ledger's check (ledger.Append), which follows.
func (t *Things) checkDeviceReadings(ctx context.Context, rs []ledger.Reading) error {
	keys := map[string]ed25519.PublicKey{} // a batch holds at most a message of readings
	for i := range rs {
		r := &rs[i]
		if strings.HasPrefix(r.Thing, reservedPrefix) {
			if r.Device != nil {
				return &ledger.InputError{Index: i, Err: errors.New("flownode's own Things take no device signature")}
			}
			continue
		}
		key, ok := keys[r.Thing]
		if !ok {
			k, err := t.deviceKey(ctx, r.Thing)
			switch {
			case errors.Is(err, ErrBadInput):
				return &ledger.InputError{Index: i, Err: fmt.Errorf("the TD of Thing %q declares an unusable device key (%v): fix the TD", r.Thing, err)}
			case err != nil:
				// Not knowing the key is no reason to sign what may need one.
				return fmt.Errorf("cannot read the TD of Thing %q to check its device key: %w", r.Thing, err)
			}
			keys[r.Thing], key = k, k
		}
		if err := deviceRule(r.Thing, key, r.Device); err != nil {
			return &ledger.InputError{Index: i, Err: err}
		}
	}
	return nil
}

// deviceRule says whether a reading's device signature d fits the key its
// Thing's TD declares (nil: none).
func deviceRule(thing string, key ed25519.PublicKey, d *ledger.Device) error {
	switch {
	case key == nil && d == nil:
		return nil
	case key == nil:
		return fmt.Errorf("Thing %q declares no device key (%s in its TD), so a reading signed by a device is refused: declare the key first", thing, deviceKeyTerm)
	case d == nil:
		return fmt.Errorf("Thing %q declares device key %x: its readings must be signed by that device (send {\"data\": …, \"device\": {\"key\": …, \"sig\": …}}, see flownode device sign)", thing, []byte(key))
	case !bytes.Equal(d.Key, key):
		return fmt.Errorf("Thing %q declares device key %x, but the reading is signed by device key %x", thing, []byte(key), []byte(d.Key))
	}
	return nil
}

// signedReading is a device's envelope of a signed reading, what a device
// sends over WebSocket and CoAP (and the HTTP API's put body holds the same
// members): its data and the device's signature over it.
type signedReading struct {
	Data   json.RawMessage `json:"data"`
	Device *ledger.Device  `json:"device"`
}

// readingOf makes the reading of one value a device sent for thing: a value
// that is an object with exactly the members "data" and "device" is a signed
// reading (an envelope), any other value is the reading itself.
func readingOf(thing string, v json.RawMessage) (ledger.Reading, error) {
	if !isEnvelope(v) {
		return ledger.Reading{Thing: thing, Data: v}, nil
	}
	var s signedReading
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.DisallowUnknownFields()
	err := dec.Decode(&s)
	if err == nil && (s.Device == nil || len(s.Device.Key) == 0 || len(s.Device.Sig) == 0 || len(s.Data) == 0 || string(s.Data) == "null") {
		err = errors.New(`data must be a JSON value other than null, device an object with both "key" and "sig"`)
	}
	if err != nil {
		return ledger.Reading{}, fmt.Errorf("%w: a signed reading is {\"data\": …, \"device\": {\"key\": 64 hex, \"sig\": 128 hex}}: %v", ErrBadInput, err)
	}
	return ledger.Reading{Thing: thing, Data: s.Data, Device: s.Device}, nil
}

// isEnvelope reports whether v is an object whose members are exactly
// "data" and "device".
func isEnvelope(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || v[0] != '{' || !bytes.Contains(v, []byte(`"device"`)) {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(v, &m) != nil || len(m) != 2 {
		return false
	}
	_, d := m["data"]
	_, dev := m["device"]
	return d && dev
}
