package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/access"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

// PutRequest is the body of POST /api/v1/records, or one element of the array a
// batch (?batch=1) sends. Thing and Data are required; Key, 40 hex characters,
// defaults to one derived from the reading. The answer is a node.Receipt (an
// array of them for a batch), status 201. Unknown fields are refused.
type PutRequest struct {
	Thing string          `json:"thing"`
	Data  json.RawMessage `json:"data"`
	Key   *string         `json:"key,omitempty"`
	// Wait is "owner" (the default: the receipt comes once the record is
	// durable on its owner) or "replicas" (and on its k-1 replicas).
	Wait string `json:"wait,omitempty"`
	// IdempotencyKey, 1 to 200 characters chosen by the device, makes a
	// re-sent reading (a lost acknowledgement) one record, whichever node
	// it is sent to: the answer is the first receipt. It wins over the
	// Idempotency-Key header for its reading.
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
	// Device is the device's own signature over the reading (flownode device
	// sign makes it): {"key": 64 hex, "sig": 128 hex}. A Thing whose TD
	// declares a device key takes only readings signed by that key, and its
	// records keep the signature. A signed reading is idempotent by its
	// signature: sent again, it is the same record; it takes no key or
	// idempotency key.
	Device *ledger.Device `json:"device,omitempty"`
}

// reservedThings starts the Thing ids flownode writes itself: the Web of
// Things' TD registry records are readings of urn:flownode:things (package
// wot), and a client's reading of that Thing would pass for one.
const reservedThings = "urn:flownode:"

// toReading checks what the ledger does not: presence of fields and the key's form.
func (p PutRequest) toReading() (ledger.Reading, error) {
	if p.Thing == "" {
		return ledger.Reading{}, errors.New(`field "thing" is required`)
	}
	if strings.HasPrefix(p.Thing, reservedThings) {
		return ledger.Reading{}, fmt.Errorf(`field "thing": ids starting %s are flownode's own (the Thing Description registry's records); choose another id`, reservedThings)
	}
	if len(p.Data) == 0 || string(p.Data) == "null" {
		return ledger.Reading{}, errors.New(`field "data" is required and must not be null`)
	}
	if p.Device != nil && (len(p.Device.Key) == 0 || len(p.Device.Sig) == 0) {
		return ledger.Reading{}, errors.New(`field "device": both "key" (64 hex) and "sig" (128 hex) are required`)
	}
	if p.Device != nil && p.IdempotencyKey != "" {
		return ledger.Reading{}, errors.New(`field "idempotencyKey": a device-signed reading is idempotent by its signature; leave the key out`)
	}
	r := ledger.Reading{Thing: p.Thing, Data: p.Data, Device: p.Device}
	if p.Key != nil {
		k, err := ledger.ParseKey(*p.Key)
		if err != nil {
			return ledger.Reading{}, fmt.Errorf(`field "key": %v`, err)
		}
		r.Key = &k
	}
	return r, nil
}

func (s *Server) postRecords(w http.ResponseWriter, r *http.Request) {
	batch := r.URL.Query().Get("batch")
	if batch != "" && batch != "1" && batch != "true" {
		writeError(w, http.StatusBadRequest, `query "batch" must be 1 or absent`)
		return
	}
	var reqs []PutRequest
	if batch == "" {
		var one PutRequest
		if code, err := decodeBody(w, r, s.maxBody, &one); err != nil {
			writeError(w, code, err.Error())
			return
		}
		reqs = []PutRequest{one}
	} else {
		if code, err := decodeBody(w, r, s.maxBody, &reqs); err != nil {
			writeError(w, code, err.Error())
			return
		}
		if len(reqs) == 0 || len(reqs) > s.maxBatch {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("a batch must hold 1 to %d readings, not %d", s.maxBatch, len(reqs)))
			return
		}
	}
	var opt node.PutOptions
	switch r.URL.Query().Get("wait") {
	case "", "owner":
	case "replicas":
		opt.WaitReplicas = true
	default:
		writeError(w, http.StatusBadRequest, `query "wait" must be owner or replicas`)
		return
	}
	// The Idempotency-Key header names the request: reading i of a batch
	// takes "KEY#i".
	header := r.Header.Get("Idempotency-Key")
	now := time.Now()
	readings := make([]ledger.Reading, len(reqs))
	for i, p := range reqs {
		rd, err := p.toReading()
		// A device-signed reading is idempotent by its signature: the
		// header, which names the request, does not apply to it.
		if idem := p.IdempotencyKey; err == nil && (idem != "" || header != "") && rd.Device == nil {
			if idem == "" {
				idem = header
				if batch != "" {
					idem = fmt.Sprintf("%s#%d", header, i)
				}
			}
			err = ledger.StampIdempotent(&rd, idem, now)
		}
		if err == nil {
			switch p.Wait {
			case "", "owner":
			case "replicas":
				opt.WaitReplicas = true
			default:
				err = errors.New(`field "wait" must be owner or replicas`)
			}
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, itemError(batch != "", i, err))
			return
		}
		readings[i] = rd
	}
	// Every reading's Thing must be one the credential may write; a batch
	// is refused whole, before anything is stored.
	for _, rd := range readings {
		if !access.Check(s.auth, w, r, rd.Thing, access.Write) {
			return
		}
	}
	receipts, err := s.node.Put(r.Context(), readings, opt)
	var ie *ledger.InputError
	switch {
	case errors.As(err, &ie):
		writeError(w, http.StatusBadRequest, itemError(batch != "", ie.Index, ie.Err))
		return
	case err != nil && r.Context().Err() != nil:
		// The client went away; whatever was stored is not acknowledged.
		s.log.Info("put abandoned by its client: " + err.Error())
		return
	case err != nil:
		s.log.Error("put failed: " + err.Error())
		writeError(w, http.StatusServiceUnavailable, "the node could not store the reading durably; retry later")
		return
	}
	if batch == "" {
		writeJSON(w, http.StatusCreated, receipts[0])
		return
	}
	writeJSON(w, http.StatusCreated, receipts)
}

func itemError(batch bool, i int, err error) string {
	if batch {
		return fmt.Sprintf("reading %d: %v", i, err)
	}
	return err.Error()
}

func (s *Server) getRecord(w http.ResponseWriter, r *http.Request) {
	txID, err := ledger.ParseHash(r.PathValue("txID"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "a txID is 64 hex characters")
		return
	}
	var rec []byte
	switch r.URL.Query().Get("local") {
	case "":
		rec, err = s.node.Record(r.Context(), txID)
	case "1", "true":
		// Only this node's store: what it holds, as owner or replica.
		rec, err = s.node.LocalRecord(txID)
	default:
		writeError(w, http.StatusBadRequest, `query "local" must be 1 or absent`)
		return
	}
	var te *ledger.TamperedError
	switch {
	case errors.Is(err, node.ErrNotFound):
		writeError(w, http.StatusNotFound, "no record with txID "+txID.String())
	case errors.As(err, &te) && s.auth != nil && !access.Check(s.auth, w, r, te.Location.Thing, access.Read):
		// Where the damage is says whose record it is: only to who may read it.
	case err != nil:
		s.serverError(w, err)
	case s.auth != nil && !access.Check(s.auth, w, r, recordThing(rec), access.Read):
		// Refused once the record says whose it is. (A client without the
		// credential learns that the txID exists, not what it holds.)
	default:
		w.Header().Set("Content-Type", "application/ld+json")
		w.Write(rec)
	}
}

// recordThing is the Thing of a stored record ("" if it cannot be read,
// which only a credential for every Thing covers).
func recordThing(rec []byte) string {
	var r struct {
		Thing string `json:"thing"`
	}
	json.Unmarshal(rec, &r)
	return r.Thing
}

// RecordList is the answer to GET /api/v1/keys/{key} and
// GET /api/v1/things/{id}/records: {"records":[...]}, each record's stored
// bytes embedded verbatim (decode one with ledger.ParseRecord or into your own type).
type RecordList struct {
	Records []json.RawMessage `json:"records"`
}

func list(recs [][]byte) RecordList {
	out := RecordList{Records: make([]json.RawMessage, len(recs))}
	for i, b := range recs {
		out.Records[i] = b
	}
	return out
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request) {
	key, err := ledger.ParseKey(r.PathValue("key"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "a key is 40 hex characters")
		return
	}
	limit, err := queryLimit(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	recs, err := s.node.RecordsByKey(r.Context(), key, limit)
	if err != nil {
		s.serverError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list(recs))
}

func (s *Server) getThingRecords(w http.ResponseWriter, r *http.Request) {
	thing := r.PathValue("id")
	if err := ledger.ValidThingID(thing); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	q := r.URL.Query()
	from, err := queryTime(q.Get("from"), "from")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	to, err := queryTime(q.Get("to"), "to")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if to != 0 && to <= from {
		writeError(w, http.StatusBadRequest, `query "to" must be after "from"`)
		return
	}
	limit, err := queryLimit(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	query := s.node.RecordsByThing
	switch q.Get("order") {
	case "", "asc":
	case "desc":
		query = s.node.RecordsByThingNewestFirst
	default:
		writeError(w, http.StatusBadRequest, `query "order" must be "asc" (oldest first, the default) or "desc" (newest first)`)
		return
	}
	recs, err := query(r.Context(), thing, from, to, limit)
	if errors.Is(err, node.ErrRangeTooLong) {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err != nil {
		s.serverError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list(recs))
}

// queryTime parses an RFC 3339 time; empty is 0 (no bound).
func queryTime(v, name string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, fmt.Errorf("query %q must be an RFC 3339 time such as 2026-01-02T15:04:05Z", name)
	}
	return t.UnixNano(), nil
}

const defaultLimit, maxLimit = 100, 10000

func queryLimit(r *http.Request) (int, error) {
	return queryInt(r, "limit", defaultLimit, 1, maxLimit)
}

func queryInt(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("query %q must be a whole number from %d to %d", name, lo, hi)
	}
	return n, nil
}

// BlockList is the answer to GET /api/v1/blocks: {"blocks":[...]}, blocks of one
// branch from this node's store, each block's stored bytes embedded verbatim.
type BlockList struct {
	Blocks []json.RawMessage `json:"blocks"`
}

func (s *Server) getBlocks(w http.ResponseWriter, r *http.Request) {
	branch := s.node.ID()
	if v := r.URL.Query().Get("branch"); v != "" {
		k, err := ledger.ParseKey(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, `query "branch": `+err.Error())
			return
		}
		branch = k
	}
	from := uint64(1)
	if v := r.URL.Query().Get("from"); v != "" {
		var err error
		from, err = strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, `query "from" must be a block number (0 or more)`)
			return
		}
	}
	limit, err := queryLimit(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	blocks, err := s.node.Blocks(branch, from, limit)
	if err != nil {
		s.serverError(w, err)
		return
	}
	out := BlockList{Blocks: make([]json.RawMessage, len(blocks))}
	for i, b := range blocks {
		out.Blocks[i] = b
	}
	writeJSON(w, http.StatusOK, out)
}

// getVerify runs behind the admin-scope check of its route (server.go). It resumes
// from the last verification that passed (what changed since is read); full=1 reads
// the whole store.
func (s *Server) getVerify(w http.ResponseWriter, r *http.Request) {
	full := false
	switch r.URL.Query().Get("full") {
	case "", "0", "false":
	case "1", "true":
		full = true
	default:
		writeError(w, http.StatusBadRequest, "full is 1 (read the whole store) or 0 (resume from the last verification that passed)")
		return
	}
	// A full verify reads the whole store: one at a time, so that it cannot be
	// used to starve the node's writers.
	select {
	case s.verifying <- struct{}{}:
		defer func() { <-s.verifying }()
	default:
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusTooManyRequests, "a verify is already running on this node; retry when it has finished")
		return
	}
	verify := s.node.Verify
	if full {
		verify = s.node.VerifyFull
	}
	rep, err := verify(r.Context())
	if err != nil && r.Context().Err() != nil {
		s.log.Info("verify abandoned by its client: " + err.Error())
		return
	}
	if err != nil {
		s.log.Error("verify could not run: " + err.Error())
		writeError(w, http.StatusServiceUnavailable, "verify could not read the store: "+err.Error())
		return
	}
	if !rep.Valid {
		s.log.Error("verify found the store invalid: "+rep.Where, zap.String("mode", rep.Mode))
	}
	writeJSON(w, http.StatusOK, rep)
}
