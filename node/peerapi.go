package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"

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
	opPut       = "put"       // readings for their owner to sign
	opReplicate = "replicate" // signed records and pointers for a replica
	opPointers  = "pointers"  // txID pointers for their owner
	opBlocks    = "blocks"    // a branch's blocks from a number on
	opDigest    = "digest"    // digests of ring ranges
	opList      = "list"      // the entries of a ring range
	opFetch     = "fetch"     // records by txID
	opGet       = "get"       // local reads: by txID, key or thing
)

// Refusal codes: the first word of an error reply.
const (
	codeMisrouted = "misrouted" // a key outside the node's range: look up again
	codeLeaving   = "leaving"   // the node is handing its range on: retry shortly
	codeReplicas  = "replicas"  // too few replicas for wait=replicas: retry shortly
	codeInput     = "input"     // a reading the ledger refuses; "input N: why"
	codeRefused   = "refused"   // bad data from a peer
)

type peerRequest struct {
	Op   string          `json:"op"`
	Body json.RawMessage `json:"body"`
}

// wireReading is a stamped reading on its way to its owner.
type wireReading struct {
	Thing string          `json:"thing"`
	Data  json.RawMessage `json:"data"`
	Key   *ledger.Key     `json:"key,omitempty"`
	Time  int64           `json:"time,string"`
	Salt  ledger.HexBytes `json:"salt"`
}

type putBody struct {
	Readings []wireReading `json:"readings"`
	Wait     bool          `json:"waitReplicas,omitempty"`
}

type putAnswer struct {
	Receipts []Receipt `json:"receipts"`
	Range    wireRange `json:"range"`
}

type wireRange struct {
	From ledger.Key `json:"from"`
	To   ledger.Key `json:"to"`
}

type wirePointer struct {
	TxID ledger.Hash `json:"t"`
	Key  ledger.Key  `json:"k"`
}

type replicateBody struct {
	Records  []json.RawMessage `json:"records,omitempty"`
	Pointers []wirePointer     `json:"pointers,omitempty"`
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
	Sum      ledger.Hash `json:"s"`
}

type listBody struct {
	Range    wireRange   `json:"range"`
	Pointers bool        `json:"pointers,omitempty"` // list pointers, not records
	After    *wireCursor `json:"after,omitempty"`
}

// wireCursor is the last entry of the previous page.
type wireCursor struct {
	Pos  ledger.Key  `json:"pos"`
	TxID ledger.Hash `json:"t"`
}

type listAnswer struct {
	Entries []wirePointer `json:"entries"` // (txID, key) of records or pointers
	More    bool          `json:"more,omitempty"`
}

type fetchBody struct {
	TxIDs []ledger.Hash `json:"txIDs"`
}

type getBody struct {
	TxID  *ledger.Hash `json:"txID,omitempty"`
	Key   *ledger.Key  `json:"key,omitempty"`
	Thing string       `json:"thing,omitempty"`
	From  int64        `json:"from,string,omitempty"`
	To    int64        `json:"to,string,omitempty"`
	Limit int          `json:"limit,omitempty"`
	Skip  int          `json:"skip,omitempty"`
}

type getAnswer struct {
	Records []json.RawMessage `json:"records"`
	Pointer *ledger.Key       `json:"pointer,omitempty"` // for a txID: the data key, when only the pointer is here
	More    bool              `json:"more,omitempty"`
}

// refusal builds an error reply with a code.
func refusal(code, format string, args ...any) error {
	return fmt.Errorf("%s: %s", code, fmt.Sprintf(format, args...))
}

// refusalCode returns the code of a peer's error reply, or "".
func refusalCode(err error) string {
	var re *rpc.RemoteError
	if !errors.As(err, &re) {
		return ""
	}
	code, _, _ := strings.Cut(re.Msg, ":")
	return code
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

// HandleMessage answers a peer's application MESSAGE (the driver's
// Config.Messages). Bad input is refused with a logged reason and changes
// nothing.
func (n *Node) HandleMessage(ctx context.Context, from chord.Peer, data json.RawMessage) (json.RawMessage, error) {
	out, err := n.handle(ctx, from, data)
	if err != nil {
		if strings.HasPrefix(err.Error(), codeRefused+":") {
			n.dist.stats.rejected.Add(1)
			n.dist.log.Warn("refused a peer's message", zap.String("from", from.Addr), zap.Error(err))
		}
		return nil, err
	}
	return json.Marshal(out)
}

func (n *Node) handle(ctx context.Context, from chord.Peer, data json.RawMessage) (any, error) {
	var req peerRequest
	if err := decodeStrict(data, &req); err != nil {
		return nil, refusal(codeRefused, "malformed message: %v", err)
	}
	body := func(v any) error {
		if err := decodeStrict(req.Body, v); err != nil {
			return refusal(codeRefused, "malformed %s body: %v", req.Op, err)
		}
		return nil
	}
	switch req.Op {
	case opPut:
		var b putBody
		if err := body(&b); err != nil {
			return nil, err
		}
		return n.dist.ownerPut(ctx, b)
	case opReplicate:
		var b replicateBody
		if err := body(&b); err != nil {
			return nil, err
		}
		stored, err := n.dist.acceptReplicas(ctx, from, b, false)
		return storedAnswer{Stored: stored}, err
	case opPointers:
		var b replicateBody
		if err := body(&b); err != nil {
			return nil, err
		}
		return n.dist.ownerPointers(ctx, b.Pointers)
	case opBlocks:
		var b blocksBody
		if err := body(&b); err != nil {
			return nil, err
		}
		return n.dist.localBlocks(b)
	case opDigest:
		var b digestBody
		if err := body(&b); err != nil {
			return nil, err
		}
		return n.dist.localDigests(b)
	case opList:
		var b listBody
		if err := body(&b); err != nil {
			return nil, err
		}
		return n.dist.localList(b)
	case opFetch:
		var b fetchBody
		if err := body(&b); err != nil {
			return nil, err
		}
		return n.dist.localFetch(b)
	case opGet:
		var b getBody
		if err := body(&b); err != nil {
			return nil, err
		}
		return n.dist.localGet(b)
	}
	return nil, refusal(codeRefused, "unknown op %q", clip(req.Op))
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}

// call sends op to p and decodes its answer into out.
func (d *dist) call(ctx context.Context, p chord.Peer, op string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	data, err := json.Marshal(peerRequest{Op: op, Body: b})
	if err != nil {
		return err
	}
	reply, err := d.n.ring.Call(ctx, p, data)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(reply, out); err != nil {
		return fmt.Errorf("%s answer from %s: %w", op, p.Addr, err)
	}
	return nil
}

// localBlocks answers opBlocks from the store, as many as fit one message.
func (d *dist) localBlocks(b blocksBody) (rawList, error) {
	if b.From == 0 {
		return rawList{}, refusal(codeRefused, "blocks are numbered from 1")
	}
	const page = 64
	raws, err := d.n.store.Blocks(b.Branch, b.From, page)
	if err != nil {
		return rawList{}, err
	}
	out := rawList{Items: []json.RawMessage{}}
	size := 0
	for i, raw := range raws {
		no := b.From + uint64(i)
		if b.To != 0 && no > b.To {
			break
		}
		if size+len(raw) > maxPayload && len(out.Items) > 0 {
			out.More = true
			break
		}
		size += len(raw)
		out.Items = append(out.Items, raw)
	}
	if len(raws) == page && !out.More && (b.To == 0 || b.From+page-1 < b.To) {
		out.More = true
	}
	return out, nil
}

// localDigests answers opDigest.
func (d *dist) localDigests(b digestBody) ([]wireDigest, error) {
	if len(b.Ranges) > 256 {
		return nil, refusal(codeRefused, "%d ranges in one digest request; at most 256", len(b.Ranges))
	}
	out := make([]wireDigest, len(b.Ranges))
	for i, r := range b.Ranges {
		dg, err := d.n.store.RangeDigest(r.From, r.To)
		if err != nil {
			return nil, err
		}
		out[i] = wireDigest{Records: dg.Records, Pointers: dg.Pointers, Sum: dg.Sum}
	}
	return out, nil
}

// listPage is how many entries one list answer carries (~110 bytes each).
const listPage = 300

// localList answers opList: a page of the range's records or pointers, in
// ring order after the cursor.
func (d *dist) localList(b listBody) (listAnswer, error) {
	out := listAnswer{Entries: []wirePointer{}}
	from := b.Range.From
	var skipUntil *wireCursor
	if b.After != nil {
		if !inRange(b.Range.From, b.After.Pos, b.Range.To) {
			return out, refusal(codeRefused, "list cursor outside the range")
		}
		// Resume at the cursor's position; entries at that same position up
		// to the cursor's txID were on the previous page.
		from = prevKey(b.After.Pos)
		skipUntil = b.After
	}
	stop := errors.New("page full")
	add := func(pos ledger.Key, txID ledger.Hash, key ledger.Key) error {
		if skipUntil != nil && pos == skipUntil.Pos {
			if bytes.Compare(txID[:], skipUntil.TxID[:]) <= 0 {
				return nil
			}
		}
		if len(out.Entries) == listPage {
			out.More = true
			return stop
		}
		out.Entries = append(out.Entries, wirePointer{TxID: txID, Key: key})
		return nil
	}
	var err error
	if b.Pointers {
		err = d.n.store.EachPointerInRange(from, b.Range.To, func(txID [32]byte, key [20]byte) error {
			return add(keyOf(txID), txID, key)
		})
	} else {
		err = d.n.store.EachKeyInRange(from, b.Range.To, func(key [20]byte, txID [32]byte) error {
			return add(key, txID, key)
		})
	}
	if err != nil && !errors.Is(err, stop) {
		return out, err
	}
	return out, nil
}

// prevKey is k-1 on the ring, so that (prevKey(k), to] starts at k.
func prevKey(k ledger.Key) ledger.Key {
	for i := len(k) - 1; i >= 0; i-- {
		k[i]--
		if k[i] != 0xff {
			break
		}
	}
	return k
}

// localFetch answers opFetch: the records this node holds, as many as fit.
func (d *dist) localFetch(b fetchBody) (rawList, error) {
	var raws [][]byte
	size := 0
	for _, id := range b.TxIDs {
		raw, err := d.n.store.Record(id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return rawList{}, err
		}
		raws = append(raws, raw)
		if size += len(raw); size > maxPayload {
			break // fitPayload cuts here and says there is more
		}
	}
	items, more := fitPayload(raws)
	return rawList{Items: items, More: more}, nil
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
