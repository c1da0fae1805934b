package wot

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

// The registry keeps every Thing's TD on the ring, as ledger records: a
// change to a TD is a reading of the reserved Thing registryThing, put at
// key SHA-1(Thing id), so it lands on successor(SHA-1(id)), is replicated
// k-fold, handed off and repaired like every record, and is a signed
// transaction saying who changed what, when. A Thing's TD is the newest of
// the registry records at its key (record time, then txID); a delete record
// makes it absent. Nothing is ever rewritten: the history stays.
//
// Two nodes creating the same Thing at once (two devices' first readings)
// both write a create; the newer wins and both are the same derived TD, so
// it is harmless. Writes stamp their time after the version they replace,
// so a node with a slow clock cannot write a version older than the one it
// read.

// registryThing is the reserved Thing of the registry's records. Clients
// cannot write it: checkThingID refuses the urn:flownode: namespace.
const registryThing = "urn:flownode:things"

// Registry record operations.
const (
	opCreate = "create"
	opUpdate = "update"
	opDelete = "delete"
)

// regEntry is the data of one registry record.
type regEntry struct {
	ID string          `json:"id"`           // the Thing id
	Op string          `json:"op"`           // create, update or delete
	TD json.RawMessage `json:"td,omitempty"` // the TD as stored (absent for delete)
	By string          `json:"by"`           // the ID of the node the change entered through
}

const (
	// maxStoredTD bounds a stored TD: its record travels in one ring
	// message (64 KiB envelopes), and a listing answer carries at least one.
	maxStoredTD = 32 << 10
	// maxVersions bounds the records a Thing's key may hold: a read fetches
	// them all to find the newest; a change beyond it is refused.
	maxVersions = 256
	// maxProperties bounds a TD's properties: the forms a node adds make a
	// served TD about 1.5 KB per property.
	maxProperties = 256
)

var (
	errTDTooLarge      = errors.New("too large")
	errThingExists     = errors.New("exists already")
	errTooManyVersions = errors.New("too many versions")
)

// tdVersion is what a Thing's key says of its TD: the newest registry record.
type tdVersion struct {
	found   bool   // a registry record exists
	deleted bool   // the newest is a delete
	td      []byte // the stored TD, when present
	time    int64  // the record's time
	txID    ledger.Hash
	// deviceKey is the device key the TD declares (nil: none), read once
	// per version (withDeviceKey); deviceKeyErr says why it is unusable.
	deviceKey    ed25519.PublicKey
	deviceKeyErr error
}

func (v tdVersion) present() bool { return v.found && !v.deleted }

// older reports whether v is older than w: record time, then txID.
func (v tdVersion) older(w tdVersion) bool {
	if v.time != w.time {
		return v.time < w.time
	}
	return bytes.Compare(v.txID[:], w.txID[:]) < 0
}

type registry struct {
	t      *Things
	cache  *tdCache
	keys   *tdCache           // device keys of the TDs (no TD bytes): provenance.go
	flight singleflight.Group // one ring read/create per Thing at a time
	index  localIndex         // listing.go
	dirTD  []byte             // the directory's TD, made once
}

func (r *registry) init(t *Things) error {
	r.t = t
	if t.cfg.HTTPAddr == "" {
		// The forms then name the address the node advertises.
		t.cfg.HTTPAddr = t.node.Self().Addr
	}
	dir, err := marshalNoEscape(directoryTD("http://" + t.cfg.HTTPAddr))
	if err != nil {
		return err
	}
	r.dirTD = dir
	r.cache = newTDCache(tdCacheSize, tdKnownFor, time.Now)
	r.keys = newTDCache(deviceKeyCacheSize, tdKnownFor, time.Now)
	r.index.init(t.node)
	t.node.HandleOp(opThings, r.handleThings)
	return nil
}

func (r *registry) close() {}

// registryKey is the ring key of a Thing's TD records: SHA-1 of its id.
func registryKey(thing string) ledger.Key { return ledger.Key(sha1.Sum([]byte(thing))) }

// latest reads the newest version of thing's TD from its key's owner (a
// lookup and a get), and how many records the key holds.
func (r *registry) latest(ctx context.Context, thing string) (tdVersion, int, error) {
	key := registryKey(thing)
	recs, err := r.t.node.RecordsByKey(ctx, key, maxVersions+1)
	if err != nil {
		return tdVersion{}, 0, err
	}
	var v tdVersion
	for _, raw := range recs {
		w, ok := versionOf(raw, thing, key)
		if ok && (!v.found || v.older(w)) {
			v = w
		}
	}
	v = v.withDeviceKey()
	r.cache.put(thing, v)
	r.keys.put(thing, v.keyOnly())
	return v, len(recs), nil
}

// versionOf reads one record of a Thing's key: a registry record of that
// Thing, or not (anyone may put a reading at any key: it is ignored).
func versionOf(raw []byte, thing string, key ledger.Key) (tdVersion, bool) {
	rec, err := ledger.ParseRecord(raw)
	if err != nil || rec.Thing != registryThing || rec.Key != key {
		return tdVersion{}, false
	}
	e, ok := entryOf(rec)
	if !ok || e.ID != thing {
		return tdVersion{}, false
	}
	return tdVersion{found: true, deleted: e.Op == opDelete, td: e.TD, time: rec.Time, txID: rec.TxID}, true
}

// entryOf decodes a registry record's data, strictly; a record whose data is
// not a well-formed entry is not one.
func entryOf(rec *ledger.Record) (regEntry, bool) {
	var e regEntry
	dec := json.NewDecoder(bytes.NewReader(rec.Data))
	dec.DisallowUnknownFields()
	if dec.Decode(&e) != nil {
		return e, false
	}
	switch e.Op {
	case opCreate, opUpdate:
		return e, len(e.TD) > 0 && e.TD[0] == '{'
	case opDelete:
		return e, len(e.TD) == 0
	}
	return e, false
}

// current returns thing's TD version: the cached one if fresh enough, else
// the ring's.
func (r *registry) current(ctx context.Context, thing string) (tdVersion, error) {
	if v, ok := r.cache.get(thing, tdFreshFor); ok {
		return v, nil
	}
	v, _, err := r.latest(ctx, thing)
	return v, err
}

// write records a change to thing's TD and returns the new version. prev is
// the version it replaces: the new one is stamped after it.
func (r *registry) write(ctx context.Context, thing, op string, td []byte, prev tdVersion) (tdVersion, error) {
	key := registryKey(thing)
	data, err := json.Marshal(regEntry{ID: thing, Op: op, TD: td, By: r.t.node.ID().Hex()})
	if err != nil {
		return tdVersion{}, err
	}
	salt := make([]byte, ledger.SaltSize)
	if _, err := rand.Read(salt); err != nil {
		return tdVersion{}, err
	}
	at := max(time.Now().UnixNano(), prev.time+1)
	rcs, err := r.t.node.Put(ctx, []ledger.Reading{{Thing: registryThing, Key: &key, Data: data, Time: at, Salt: salt}}, node.PutOptions{})
	var ie *ledger.InputError
	switch {
	case errors.As(err, &ie):
		return tdVersion{}, fmt.Errorf("%w: %v", ErrBadInput, ie.Err)
	case err != nil:
		return tdVersion{}, err
	}
	v := tdVersion{found: true, deleted: op == opDelete, td: td, time: at, txID: rcs[0].TxID}.withDeviceKey()
	r.cache.put(thing, v)
	r.keys.put(thing, v.keyOnly())
	return v, nil
}

// prepareTD makes the TD to store for thing from a client's: its id set (a
// given one must name the same Thing), our forms removed, and checked, with
// this node's forms added, against the TD schema. It returns the stored bytes.
func (t *Things) prepareTD(thing string, td map[string]any) ([]byte, error) {
	if given, ok := td["id"]; ok {
		s, _ := given.(string)
		if id, err := thingIDOf(s); err != nil || id != thing {
			return nil, fmt.Errorf("%w: the TD's id %v does not name Thing %q (use %q, or leave id out)", ErrBadInput, shortJSON(given), thing, tdIDOf(thing))
		}
	}
	if props, ok := td["properties"].(map[string]any); ok && len(props) > maxProperties {
		// Each property gets about 1.5 KB of forms when served.
		return nil, fmt.Errorf("%w: the TD has %d properties; the registry keeps TDs of at most %d", ErrBadInput, len(props), maxProperties)
	}
	td["id"] = tdIDOf(thing)
	if err := declareDeviceKey(td); err != nil {
		return nil, err
	}
	stripOurForms(thing, td)
	stored, err := marshalNoEscape(td)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	if len(stored) > maxStoredTD {
		return nil, fmt.Errorf("%w: the TD is %d bytes without this node's forms; the registry keeps TDs of at most %d bytes", errTDTooLarge, len(stored), maxStoredTD)
	}
	served, err := decodeTD(stored)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	t.addForms(thing, served)
	if err := validateTD(served); err != nil {
		return nil, err
	}
	return stored, nil
}

// jsonText shows a decoded JSON value in an error.
func shortJSON(v any) string {
	b, err := marshalNoEscape(v)
	if err != nil || len(b) > 80 {
		return "given"
	}
	return string(b)
}

// putTD stores a client's TD for thing: a create when it has none, else
// (unless onlyNew) a replacement. created says which.
func (t *Things) putTD(ctx context.Context, thing string, td map[string]any, onlyNew bool) (created bool, err error) {
	stored, err := t.prepareTD(thing, td)
	if err != nil {
		return false, err
	}
	prev, versions, err := t.reg.latest(ctx, thing)
	if err != nil {
		return false, err
	}
	if err := checkVersions(thing, versions); err != nil {
		return false, err
	}
	op := opCreate
	if prev.present() {
		if onlyNew {
			return false, fmt.Errorf("%w: Thing %q has a TD; PUT /things/{id} replaces it", errThingExists, thing)
		}
		op = opUpdate
	}
	_, err = t.reg.write(ctx, thing, op, stored, prev)
	return op == opCreate, err
}

// patchTD applies a JSON Merge Patch (RFC 7396) to thing's TD; the result is
// checked like a PUT TD.
func (t *Things) patchTD(ctx context.Context, thing string, patch map[string]any) error {
	prev, versions, err := t.reg.latest(ctx, thing)
	if err != nil {
		return err
	}
	if !prev.present() {
		return ErrNoThing
	}
	if err := checkVersions(thing, versions); err != nil {
		return err
	}
	td, err := decodeTD(prev.td)
	if err != nil {
		return fmt.Errorf("stored TD of %q: %w", thing, err)
	}
	if id, ok := patch["id"]; ok && !sameString(id, td["id"]) {
		return fmt.Errorf("%w: a patch cannot change a TD's id", ErrBadInput)
	}
	merged, ok := mergePatch(td, patch).(map[string]any)
	if !ok {
		return fmt.Errorf("%w: the patch leaves no TD", ErrBadInput)
	}
	stored, err := t.prepareTD(thing, merged)
	if err != nil {
		return err
	}
	_, err = t.reg.write(ctx, thing, opUpdate, stored, prev)
	return err
}

func sameString(a, b any) bool {
	s, ok := a.(string)
	t, ok2 := b.(string)
	return ok && ok2 && s == t
}

// deleteTD deletes thing's TD (a delete record: its history stays).
func (t *Things) deleteTD(ctx context.Context, thing string) error {
	prev, _, err := t.reg.latest(ctx, thing)
	if err != nil {
		return err
	}
	if !prev.present() {
		return ErrNoThing
	}
	// A delete is always allowed, even past maxVersions: it ends the Thing.
	_, err = t.reg.write(ctx, thing, opDelete, nil, prev)
	return err
}

func checkVersions(thing string, versions int) error {
	if versions >= maxVersions {
		return fmt.Errorf("%w: the TD of %q has had %d versions, the most the registry keeps for one Thing", errTooManyVersions, thing, maxVersions)
	}
	return nil
}

// ensureThing creates the Thing with a TD derived from value's shape if it
// has none yet; it is cheap when the Thing exists (a cache hit: one ring read
// per Thing per tdKnownFor at most). Concurrent calls for one Thing on this
// node share one ring read (and create).
func (t *Things) ensureThing(ctx context.Context, id string, value json.RawMessage) error {
	if err := checkThingID(id); err != nil {
		return err
	}
	if v, ok := t.reg.cache.get(id, tdKnownFor); ok && v.present() {
		return nil
	}
	_, err, _ := t.reg.flight.Do(id, func() (any, error) {
		// Shared by every caller waiting for this Thing: the first one's
		// leaving must not fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), dirTimeout)
		defer cancel()
		prev, versions, err := t.reg.latest(ctx, id)
		if err != nil || prev.present() {
			return nil, err
		}
		if err := checkVersions(id, versions); err != nil {
			return nil, err
		}
		td, err := deriveTD(id, value)
		if err != nil {
			return nil, err
		}
		stored, err := t.prepareTD(id, td)
		if err != nil {
			return nil, err
		}
		_, err = t.reg.write(ctx, id, opCreate, stored, prev)
		return nil, err
	})
	return err
}

// ThingTD returns the Thing's TD as this node serves it (application/td+json),
// with forms for this node (ErrNoThing if it has none). id is a Thing id or
// its TD id.
func (t *Things) ThingTD(ctx context.Context, id string) ([]byte, error) {
	thing, err := thingIDOf(id)
	if err != nil {
		return nil, err
	}
	v, err := t.reg.current(ctx, thing)
	if err != nil {
		return nil, err
	}
	if !v.present() {
		return nil, ErrNoThing
	}
	return t.servedTD(thing, v.td)
}

// servedTD adds this node's forms to a stored TD.
func (t *Things) servedTD(thing string, stored []byte) ([]byte, error) {
	td, err := decodeTD(stored)
	if err != nil {
		return nil, fmt.Errorf("stored TD of %q: %w", thing, err)
	}
	t.addForms(thing, td)
	return marshalNoEscape(td)
}

// DirectoryTD returns the directory's own TD (/.well-known/wot).
func (t *Things) DirectoryTD() []byte { return t.reg.dirTD }
