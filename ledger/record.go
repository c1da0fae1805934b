package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
)

// ContextPath is where every node serves the JSON-LD context of its records. Records name
// it as a relative IRI, so a JSON-LD processor that fetched a record from a node resolves
// the context on that same node and never on the internet.
const ContextPath = "/ns/flownode/v1"

// RecordType is the JSON-LD type of a reading's record.
const RecordType = "Reading"

// BlockRef names the block a record is attached to. Fields are in RFC 8785 key order.
type BlockRef struct {
	Branch Key    `json:"branch"`
	Hash   Hash   `json:"hash"`
	No     uint64 `json:"no,string"`
}

// Record is a signed reading: a JSON-LD document, stored and served as its canonical JSON.
//
// The fields are declared in RFC 8785 key order, so encodeRecord can produce canonical
// bytes with encoding/json alone; TestRecordEncodingIsJCS holds it to the real thing.
type Record struct {
	Context   string          `json:"@context"`
	Block     BlockRef        `json:"block"`
	Data      json.RawMessage `json:"data"`
	Device    *Device         `json:"device,omitempty"`    // format 2: the device's signature over the reading, when it signed it
	HData     Key             `json:"hData"`               // SHA1(data ‖ time ‖ salt)
	Key       Key             `json:"key"`                 // ring key: H_DATA unless the client chose one
	Salt      HexBytes        `json:"salt"`                // the random part of H_DATA
	Seq       uint64          `json:"seq,string"`          // position among the block's records
	Signature HexSig          `json:"signature,omitempty"` // ed25519 over JCS(record without signature)
	Signer    PubKey          `json:"signer"`
	Thing     string          `json:"thing"`
	Time      int64           `json:"time,string"` // unix nanoseconds when the reading was taken by the node that received it
	TxID      Hash            `json:"txID"`        // SHA256(SHA256(H_BLOCK ‖ H_DATA))
	Type      string          `json:"type"`
}

// HexBytes is a byte string written as lowercase hex.
type HexBytes []byte

func (h HexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }
func (h *HexBytes) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	if err != nil {
		return fmt.Errorf("salt is not hex: %w", err)
	}
	*h = v
	return nil
}

// SaltSize is the number of random bytes in H_DATA.
const SaltSize = 16

var thingID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:~-]{0,199}$`)

// ValidThingID reports whether id can name a Thing: 1-200 characters of letters, digits
// and . _ : ~ - (URNs fit; '/' does not, because the id is a URL path segment).
func ValidThingID(id string) error {
	if !thingID.MatchString(id) {
		return fmt.Errorf("thing id %q is invalid: use 1-200 letters, digits, '.', '_', ':', '~' or '-', starting with a letter or digit", id)
	}
	return nil
}

// DataHash computes H_DATA = SHA1(data ‖ time ‖ salt), where data is the reading's
// canonical JSON and time is the decimal unix-nanosecond string (Flowchain's rule).
func DataHash(canonicalData []byte, timeNs int64, salt []byte) Key {
	h := sha1.New()
	h.Write(canonicalData)
	h.Write([]byte(strconv.FormatInt(timeNs, 10)))
	h.Write(salt)
	var k Key
	copy(k[:], h.Sum(nil))
	return k
}

// TxID computes SHA256(SHA256(H_BLOCK ‖ H_DATA)) (Flowchain's rule).
func TxID(blockHash Hash, hData Key) Hash {
	inner := sha256.New()
	inner.Write(blockHash[:])
	inner.Write(hData[:])
	return sha256.Sum256(inner.Sum(nil))
}

// SignRecord fills in the record's context, type, signer and signature and returns its
// canonical bytes: exactly what is stored and served. r.Data must be canonical and
// r.Thing valid (Append checks both).
func SignRecord(r *Record, id *Identity) ([]byte, error) {
	r.Context = ContextPath
	r.Type = RecordType
	r.Signer = PubKey(id.Public)
	r.Signature = nil
	unsigned, err := encodeRecord(r)
	if err != nil {
		return nil, err
	}
	r.Signature = ed25519.Sign(id.Private, unsigned)
	return encodeRecord(r)
}

// encodeRecord writes a record's canonical JSON without a general JCS pass: keys are in
// canonical order by declaration, every string is hex, digits, a checked thing id or a
// constant (none needs escaping), and data is already canonical. HTML escaping is off
// because JCS does not escape <, > and &.
func encodeRecord(r *Record) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(512 + len(r.Data))
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ParseRecord decodes record bytes, rejecting unknown fields and trailing data.
func ParseRecord(raw []byte) (*Record, error) {
	var r Record
	if err := decodeStrict(raw, &r); err != nil {
		return nil, fmt.Errorf("record is not valid JSON: %w", err)
	}
	return &r, nil
}

// CheckSelf verifies everything a record proves on its own: it is in canonical form,
// its signature verifies, H_DATA recomputes from data, time and salt, its txID
// recomputes from its block hash and H_DATA, and the device signature it carries, if
// any, verifies over its Thing and data. Any client can run it offline.
func (r *Record) CheckSelf(raw []byte) error {
	if r.Context != ContextPath || r.Type != RecordType {
		return &Mismatch{What: "record @context and type", Expected: ContextPath + " " + RecordType, Actual: r.Context + " " + r.Type}
	}
	if err := ValidThingID(r.Thing); err != nil {
		return &Mismatch{What: "record thing", Expected: "a valid thing id", Actual: strconv.Quote(r.Thing)}
	}
	if data, err := CanonicalData(r.Data); err != nil || !bytes.Equal(data, r.Data) {
		return &Mismatch{What: "record data", Expected: "RFC 8785 canonical JSON", Actual: "data that is not"}
	}
	canon, err := encodeRecord(r)
	if err != nil {
		return err
	}
	if !bytes.Equal(canon, raw) {
		return &Mismatch{What: "record bytes", Expected: "RFC 8785 canonical JSON", Actual: "bytes that differ from their canonical form"}
	}
	if len(r.Signer) != ed25519.PublicKeySize || len(r.Signature) != ed25519.SignatureSize {
		return &Mismatch{What: "record signer and signature", Expected: "an ed25519 key and signature", Actual: "missing or malformed"}
	}
	if id := NodeID(ed25519.PublicKey(r.Signer)); id != r.Block.Branch {
		return &Mismatch{What: "record signer (owner of the branch)", Expected: r.Block.Branch.String(), Actual: id.String()}
	}
	// raw is r's exact bytes (checked above): if these bytes' signatures
	// verified before in this process, they verify now (sigcache.go).
	sum := sha256.Sum256(raw)
	seen := verified.has(sum)
	if !seen {
		sig := r.Signature
		r.Signature = nil
		unsigned, err := encodeRecord(r)
		r.Signature = sig
		if err != nil {
			return err
		}
		if !ed25519.Verify(ed25519.PublicKey(r.Signer), unsigned, sig) {
			return &Mismatch{What: "record signature", Expected: "a valid ed25519 signature by " + hex.EncodeToString(r.Signer), Actual: "a signature that does not verify"}
		}
	}
	if len(r.Salt) != SaltSize {
		return &Mismatch{What: "record salt length", Expected: strconv.Itoa(SaltSize), Actual: strconv.Itoa(len(r.Salt))}
	}
	if h := DataHash(r.Data, r.Time, r.Salt); h != r.HData {
		return &Mismatch{What: "record hData", Expected: h.String(), Actual: r.HData.String()}
	}
	if tx := TxID(r.Block.Hash, r.HData); tx != r.TxID {
		return &Mismatch{What: "record txID", Expected: tx.String(), Actual: r.TxID.String()}
	}
	if r.Device != nil {
		// The node's signature covers the device field, but a node could sign a
		// device signature that never verified: check it too, and that the
		// record is the one record of that signed reading (its stamp).
		if err := r.Device.checkStamp(r.Thing, r.Salt, r.Key); err != nil {
			return err
		}
		if !seen {
			if err := r.Device.check(r.Thing, r.Data); err != nil {
				return err
			}
		}
	}
	if !seen {
		verified.add(sum)
	}
	cp := *r
	parsed.add(sum, &cp)
	return nil
}
