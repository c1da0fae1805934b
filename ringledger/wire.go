package ringledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/rpc"
	"github.com/flownode/flownode/store"
)

// The peer API: what nodes ask each other in application MESSAGEs. The data
// of each is {"op": NAME, "body": {...}}; the reply's data is the op's answer.
// Every body is decoded strictly (unknown fields refused) and checked before
// anything is stored; a refusal is an error reply whose text starts with one
// of the codes below, so the asking node knows whether to retry elsewhere.
const (
	opPut        = "put"        // readings for their owner to sign
	opReplicate  = "replicate"  // signed records and pointers for a replica
	opPointers   = "pointers"   // txID pointers and history entries for their owner
	opBlocks     = "blocks"     // a branch's blocks from a number on
	opDigest     = "digest"     // digests of ring ranges
	opList       = "list"       // the entries of a ring range
	opFetch      = "fetch"      // records by txID
	opGet        = "get"        // local reads: by txID, key or thing
	opHas        = "has"        // which of these entries the owner holds (before a copy is dropped)
	opMembership = "membership" // a node's membership (DER), to check a record it signed
)

type peerRequest struct {
	Op   string          `json:"op"`
	Body json.RawMessage `json:"body"`
}

// requestData is the data of a peer request, {"op":...,"body":...}, as
// encoding/json writes a peerRequest. The body is not copied or checked
// again: the rpc codec checks the whole envelope when it sends it.
func requestData(op string, body json.RawMessage) json.RawMessage {
	q, _ := json.Marshal(op) // a string always encodes
	b := make([]byte, 0, len(q)+len(body)+17)
	b = append(b, `{"op":`...)
	b = append(b, q...)
	if len(body) > 0 {
		b = append(b, `,"body":`...)
		b = append(b, body...)
	} else {
		b = append(b, `,"body":null`...)
	}
	return append(b, '}')
}

// SplitRequest returns the op and the body of a peer request's data, in one
// pass (rpc.Fields), as strictly as decoding it into a peerRequest with
// unknown fields disallowed (stricter: a repeated field is refused too).
func SplitRequest(data []byte) (op string, body json.RawMessage, err error) {
	f, err := rpc.Fields(data, "op", "body")
	if err != nil {
		return "", nil, err
	}
	if f[0] != nil {
		if err := json.Unmarshal(f[0], &op); err != nil {
			return "", nil, fmt.Errorf("op: %w", err)
		}
	}
	return op, f[1], nil
}

// wireReading is a stamped reading on its way to its owner.
type wireReading struct {
	Thing string          `json:"thing"`
	Data  json.RawMessage `json:"data"`
	Key   *ledger.Key     `json:"key,omitempty"`
	Time  int64           `json:"time,string"`
	Salt  ledger.HexBytes `json:"salt"`
	// Resend: the reading may be stored already (a retry, an idempotency
	// key); the owner answers with the stored record if so.
	Resend bool `json:"resend,omitempty"`
	// Device: the device's own signature over the reading, which the owner
	// checks (Config.Check, ledger.Append) and keeps in the record.
	Device *ledger.Device `json:"device,omitempty"`
}

type putBody struct {
	Readings []wireReading `json:"readings"`
	Wait     bool          `json:"waitReplicas,omitempty"`
}

// putAnswer carries the records the owner signed, in the readings' order:
// the entry node checks each and derives the client's receipt from it.
type putAnswer struct {
	Records  []json.RawMessage `json:"records"`
	Replicas []Peer            `json:"replicas"`
	Range    wireRange         `json:"range"`
}

type wireRange struct {
	From ledger.Key `json:"from"`
	To   ledger.Key `json:"to"`
}

// wirePointer is a txID pointer, and an entry of a list answer: a record
// (txID, data key), a pointer (txID, data key) or a history entry (txID,
// position, time).
type wirePointer struct {
	TxID ledger.Hash `json:"t"`
	Key  ledger.Key  `json:"k"`
	Time int64       `json:"n,string,omitempty"` // history entries: the record's time, their order at a position
}

// wireHistory is a history entry: a signed record kept at a position of the
// ring's per-Thing time index (history.go), which the receiver recomputes
// from the record.
type wireHistory struct {
	Pos    ledger.Key      `json:"pos"`
	Record json.RawMessage `json:"record"`
}

type replicateBody struct {
	Records  []json.RawMessage `json:"records,omitempty"`
	Pointers []wirePointer     `json:"pointers,omitempty"`
	History  []wireHistory     `json:"history,omitempty"`
}

type storedAnswer struct {
	Stored int       `json:"stored"`
	Range  wireRange `json:"range"`
}

type blocksBody struct {
	Branch ledger.Key `json:"branch"`
	From   uint64     `json:"from,string"`
	To     uint64     `json:"to,string"` // 0: up to the head
}

type rawList struct {
	Items []json.RawMessage `json:"items"`
	More  bool              `json:"more,omitempty"` // the answer was cut to fit a message
}

type digestBody struct {
	Ranges []wireRange `json:"ranges"`
}

type wireDigest struct {
	Records  int         `json:"r"`
	Pointers int         `json:"p"`
	History  int         `json:"i"`
	Sum      ledger.Hash `json:"s"`
}

type listBody struct {
	Range    wireRange   `json:"range"`
	Pointers bool        `json:"pointers,omitempty"` // list pointers, not records
	History  bool        `json:"history,omitempty"`  // list history entries, not records
	After    *wireCursor `json:"after,omitempty"`
}

// wireCursor is the last entry of the previous page, and names a history
// entry (position, time, txID) in fetch and has requests.
type wireCursor struct {
	Pos  ledger.Key  `json:"pos"`
	TxID ledger.Hash `json:"t"`
	Time int64       `json:"n,string,omitempty"`
}

type listAnswer struct {
	Entries []wirePointer `json:"entries"` // (txID, key) of records or pointers; (txID, pos, time) of history entries
	More    bool          `json:"more,omitempty"`
}

// fetchBody asks for records by txID, or for history entries; the answer's
// items are records, or wireHistory objects.
type fetchBody struct {
	TxIDs   []ledger.Hash `json:"txIDs,omitempty"`
	History []wireCursor  `json:"history,omitempty"`
}

type getBody struct {
	TxID  *ledger.Hash `json:"txID,omitempty"`
	Key   *ledger.Key  `json:"key,omitempty"`
	Thing string       `json:"thing,omitempty"`
	From  int64        `json:"from,string,omitempty"`
	To    int64        `json:"to,string,omitempty"`
	Limit int          `json:"limit,omitempty"`
	Skip  int          `json:"skip,omitempty"`
	// History asks for the history entries of Thing at this position (from
	// ≤ time < to), after the cursor After, newest first when Desc.
	History *ledger.Key `json:"history,omitempty"`
	After   *wireCursor `json:"after,omitempty"`
	Desc    bool        `json:"desc,omitempty"`
}

type getAnswer struct {
	Records []json.RawMessage `json:"records"`
	Pointer *ledger.Key       `json:"pointer,omitempty"` // for a txID: the data key, when only the pointer is here
	More    bool              `json:"more,omitempty"`
}

// decodeStrict decodes one JSON value, refusing unknown fields and trailing data.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

func wirePointers(ps []store.Pointer) []wirePointer {
	out := make([]wirePointer, len(ps))
	for i, p := range ps {
		out[i] = wirePointer{TxID: p.TxID, Key: p.Key}
	}
	return out
}

func storePointers(ws []wirePointer) []store.Pointer {
	out := make([]store.Pointer, len(ws))
	for i, w := range ws {
		out[i] = store.Pointer{TxID: w.TxID, Key: w.Key}
	}
	return out
}

// fitPayload takes raws from the start while they fit one message (at least
// one), and says whether it had to leave some out.
func fitPayload(raws [][]byte) (items []json.RawMessage, more bool) {
	items = []json.RawMessage{}
	size := 0
	for _, raw := range raws {
		if size+len(raw) > maxPayload && len(items) > 0 {
			return items, true
		}
		size += len(raw)
		items = append(items, raw)
	}
	return items, false
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

// listPage is how many entries one list answer carries (~110 bytes each).
const listPage = 300

// maxPutReadings bounds the readings of one put message.
const maxPutReadings = 64

// recordOverhead is what a record adds to its reading's data and Thing
// (hashes, signature, key, names: ~650 bytes): the entry node packs a put so
// that the records of its answer fit one message too.
const recordOverhead = 800

// call sends op to p and decodes its answer into out.
func (d *Ledger) call(ctx context.Context, p chord.Peer, op string, body, out any) error {
	var b []byte
	var err error
	if rb, ok := body.(replicateBody); ok {
		b, err = rb.appendJSON(nil)
	} else {
		b, err = json.Marshal(body)
	}
	if err != nil {
		return err
	}
	raw, err := d.ring.Call(ctx, p, requestData(op, b))
	if err != nil {
		return err
	}
	// One pass: the answer decodes straight into out (encoding/json fills
	// the value an interface field points to).
	rep := struct {
		Answer  any      `json:"answer"`
		Refusal *Refusal `json:"refusal"`
	}{Answer: out}
	if out == nil {
		rep.Answer = &json.RawMessage{}
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("%s answer from %s: %w", op, p.Addr, err)
	}
	if rep.Refusal != nil {
		return fmt.Errorf("%s refused %s: %w", p.Addr, op, rep.Refusal)
	}
	return nil
}

// reply is the data of every answer to a peer request: the op's answer, or a
// refusal saying why not.
type reply struct {
	Answer  any      `json:"answer,omitempty"`
	Refusal *Refusal `json:"refusal,omitempty"`
}

// hasBody asks an entry's owner which of these records (or pointers, or
// history entries) it holds.
type hasBody struct {
	TxIDs    []ledger.Hash `json:"txIDs,omitempty"`
	Pointers bool          `json:"pointers,omitempty"`
	History  []wireCursor  `json:"history,omitempty"`
}

// hasAnswer says what the owner holds, the range it owns, the replicas it
// copies that range to, and how long ago its last complete repair round
// (every replica reconciled) ended.
type hasAnswer struct {
	Held       []bool       `json:"held"`
	Range      wireRange    `json:"range"`
	Replicas   []ledger.Key `json:"replicas"`
	RepairedMs int64        `json:"repairedMs,string"`
}
