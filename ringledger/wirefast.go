package ringledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/flownode/flownode/rpc"
)

// A replicate or pointers message carries signed records, whole, a few
// hundred bytes each and up to listPage of them. encoding/json would check
// and compact every one again when the body is encoded (a json.RawMessage
// is re-validated) and scan each one three times when it is decoded; these
// write and split the body in one pass each, with the same bytes on the wire.
// The rpc codec still checks the whole envelope once on each side.

// appendJSON appends b as encoding/json encodes it.
func (b replicateBody) appendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, '{')
	first := true
	field := func(name string) {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(append(append(dst, '"'), name...), `":`...)
	}
	if len(b.Records) > 0 {
		field("records")
		dst = append(dst, '[')
		for i, r := range b.Records {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendRaw(dst, r)
		}
		dst = append(dst, ']')
	}
	if len(b.Pointers) > 0 {
		field("pointers")
		ps, err := json.Marshal(b.Pointers)
		if err != nil {
			return nil, err
		}
		dst = append(dst, ps...)
	}
	if len(b.History) > 0 {
		field("history")
		dst = append(dst, '[')
		for i, h := range b.History {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"pos":"`...)
			dst = append(dst, h.Pos.String()...)
			dst = append(dst, `","record":`...)
			dst = appendRaw(dst, h.Record)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}'), nil
}

// appendRaw appends a raw JSON value, null when empty (as encoding/json does).
func appendRaw(dst []byte, v json.RawMessage) []byte {
	if len(v) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, v...)
}

// decodeReplicateBody decodes a replicate or pointers body as strictly as
// decodeStrict would (unknown fields refused; a repeated one too). The
// records and history records alias raw.
func decodeReplicateBody(raw []byte) (replicateBody, error) {
	var b replicateBody
	f, err := rpc.Fields(raw, "records", "pointers", "history")
	if err != nil {
		return b, err
	}
	if f[0] != nil {
		els, err := rpc.Elements(f[0])
		if err != nil {
			return b, fmt.Errorf("records: %w", err)
		}
		b.Records = make([]json.RawMessage, len(els))
		for i, e := range els {
			b.Records[i] = e
		}
	}
	if f[1] != nil {
		if err := decodeStrict(f[1], &b.Pointers); err != nil {
			return b, fmt.Errorf("pointers: %w", err)
		}
	}
	if f[2] != nil {
		els, err := rpc.Elements(f[2])
		if err != nil {
			return b, fmt.Errorf("history: %w", err)
		}
		b.History = make([]wireHistory, len(els))
		for i, e := range els {
			if b.History[i], err = decodeWireHistory(e); err != nil {
				return b, fmt.Errorf("history entry %d: %w", i, err)
			}
		}
	}
	return b, nil
}

func decodeWireHistory(raw []byte) (wireHistory, error) {
	var h wireHistory
	f, err := rpc.Fields(raw, "pos", "record")
	if err != nil {
		return h, err
	}
	pos := f[0]
	if len(pos) < 2 || pos[0] != '"' || bytes.IndexByte(pos, '\\') >= 0 {
		if pos == nil {
			return h, errors.New("pos: missing")
		}
		if err := json.Unmarshal(pos, &h.Pos); err != nil {
			return h, fmt.Errorf("pos: %w", err)
		}
	} else if err := h.Pos.UnmarshalText(pos[1 : len(pos)-1]); err != nil {
		return h, fmt.Errorf("pos: %w", err)
	}
	h.Record = f[1]
	return h, nil
}
