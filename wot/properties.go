package wot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flownode/flownode/access"
	"github.com/flownode/flownode/ledger"
)

// Properties over HTTP (the forms of the TDs):
//
//	GET  /things/{id}/properties/{name}             readproperty: 200, the bare JSON value
//	     of the newest record's member name (for a Thing whose readings are not JSON
//	     objects, property "value" is the whole reading); X-Flownode-TxID and ETag
//	     name the record. 404 {"error"} for no such Thing, no value, no such property.
//	PUT  /things/{id}/properties/{name}             writeproperty: the body (application/json)
//	     is the value; it becomes a reading {name: value} (the bare value for property
//	     "value" of a Thing whose readings are not objects), a ledger record: 201 with
//	     its receipt ({"txID": ..}, as POST /api/v1/records answers).
//	GET  /things/{id}/properties/{name}/observable  observeproperty: with Accept:
//	     text/event-stream, Server-Sent Events (each new value "id: txID", "data:
//	     value"; a comment every heartbeatEvery); else a long-poll: the next value
//	     within ?timeout seconds (default 30, at most 60), 200 with it, or 204.
//
// A Thing exists for these paths when it has a TD or a value.

// Bounds and timers of the property paths.
const (
	maxPropertyName = 200
	maxValueBody    = ledger.MaxDataBytes
	maxObservers    = 512 // SSE streams and long-polls of one node
	heartbeatEvery  = 15 * time.Second
	defaultPoll     = 30 * time.Second
	maxPoll         = 60 * time.Second
	lookupTimeout   = 10 * time.Second
)

// TxIDHeader names the record a property value comes from.
const TxIDHeader = "X-Flownode-TxID"

func (t *Things) propertyRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /things/{id}/properties/{name}", t.need(access.Read, true, t.readProperty))
	mux.HandleFunc("PUT /things/{id}/properties/{name}", t.need(access.Write, true, t.writeProperty))
	mux.HandleFunc("GET /things/{id}/properties/{name}/observable", t.need(access.Read, true, t.observeProperty))
}

// propertyPath checks the path's Thing ID and property name.
func propertyPath(w http.ResponseWriter, r *http.Request) (id, name string, ok bool) {
	id, name = r.PathValue("id"), r.PathValue("name")
	if err := ledger.ValidThingID(id); err != nil {
		liveHTTPError(w, http.StatusBadRequest, err.Error())
		return "", "", false
	}
	if name == "" || len(name) > maxPropertyName {
		liveHTTPError(w, http.StatusBadRequest, fmt.Sprintf("a property name is 1 to %d characters", maxPropertyName))
		return "", "", false
	}
	return id, name, true
}

// propertyOf returns the value of property name in a reading: its member
// name, or the whole reading for "value" of a reading that is not an object.
func propertyOf(value json.RawMessage, name string) (json.RawMessage, bool) {
	v := trimSpace(value)
	if len(v) == 0 || v[0] != '{' {
		return value, name == "value"
	}
	var members map[string]json.RawMessage
	if json.Unmarshal(v, &members) != nil {
		return nil, false
	}
	m, ok := members[name]
	return m, ok
}

// latestOrAbsent answers the newest value, or 404 saying which is missing:
// the Thing or a value of it. ok false: answered.
func (t *Things) latestOrAbsent(w http.ResponseWriter, r *http.Request, id string) (Update, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), lookupTimeout)
	defer cancel()
	u, err := t.Latest(ctx, id)
	switch {
	case err == nil:
		return u, true
	case errors.Is(err, ErrNoValue):
		if _, terr := t.ThingTD(ctx, id); terr != nil {
			liveHTTPError(w, http.StatusNotFound, fmt.Sprintf("no Thing %s", id))
		} else {
			liveHTTPError(w, http.StatusNotFound, fmt.Sprintf("Thing %s has no value yet", id))
		}
	default:
		liveHTTPError(w, http.StatusServiceUnavailable, "the node could not read the Thing's values; retry later")
	}
	return Update{}, false
}

func (t *Things) readProperty(w http.ResponseWriter, r *http.Request) {
	id, name, ok := propertyPath(w, r)
	if !ok {
		return
	}
	u, ok := t.latestOrAbsent(w, r, id)
	if !ok {
		return
	}
	v, ok := propertyOf(u.Value, name)
	if !ok {
		liveHTTPError(w, http.StatusNotFound, fmt.Sprintf("the newest value of Thing %s has no property %s", id, name))
		return
	}
	etag := `"` + u.TxID.String() + `"`
	w.Header().Set(TxIDHeader, u.TxID.String())
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(v)
}

func (t *Things) writeProperty(w http.ResponseWriter, r *http.Request) {
	id, name, ok := propertyPath(w, r)
	if !ok {
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			liveHTTPError(w, http.StatusUnsupportedMediaType, "a property value is sent as application/json")
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxValueBody+1))
	if err != nil || len(body) > maxValueBody {
		liveHTTPError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("a property value is at most %d bytes", maxValueBody))
		return
	}
	body = trimSpace(body)
	if err := checkValue(body); err != nil {
		liveHTTPError(w, http.StatusBadRequest, "the body is not a property value: "+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	reading, ok := t.propertyReading(w, ctx, id, name, body)
	if !ok {
		return
	}
	rcs, err := t.Send(ctx, id, []json.RawMessage{reading})
	switch {
	case errors.Is(err, ErrBadInput):
		liveHTTPError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		liveHTTPError(w, http.StatusServiceUnavailable, "the node could not store the value durably; retry later")
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(TxIDHeader, rcs[0].TxID.String())
		w.WriteHeader(http.StatusCreated)
		w.Write(mustJSON(rcs[0]))
	}
}

// propertyReading makes the reading a property write stores, once the
// Thing is known to exist (a TD or a value) and, when its TD lists
// properties, to have this one. ok false: answered.
func (t *Things) propertyReading(w http.ResponseWriter, ctx context.Context, id, name string, value json.RawMessage) (json.RawMessage, bool) {
	td, tdErr := t.ThingTD(ctx, id)
	u, valErr := t.Latest(ctx, id)
	if tdErr != nil && valErr != nil {
		if errors.Is(valErr, ErrNoValue) {
			liveHTTPError(w, http.StatusNotFound, fmt.Sprintf("no Thing %s", id))
		} else {
			liveHTTPError(w, http.StatusServiceUnavailable, "the node could not read the Thing; retry later")
		}
		return nil, false
	}
	if tdErr == nil && !tdListsProperty(td, name) {
		liveHTTPError(w, http.StatusNotFound, fmt.Sprintf("Thing %s has no property %s", id, name))
		return nil, false
	}
	if valErr == nil && name == "value" {
		if v := trimSpace(u.Value); len(v) > 0 && v[0] != '{' {
			return value, true // the Thing's readings are bare values
		}
	}
	return mustJSON(map[string]json.RawMessage{name: value}), true
}

// tdListsProperty reports whether a TD lists the property, or lists none
// (a TD without properties does not restrict writes).
func tdListsProperty(td []byte, name string) bool {
	var doc struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if json.Unmarshal(td, &doc) != nil || len(doc.Properties) == 0 {
		return true
	}
	_, ok := doc.Properties[name]
	return ok
}

func (t *Things) observeProperty(w http.ResponseWriter, r *http.Request) {
	id, name, ok := propertyPath(w, r)
	if !ok {
		return
	}
	sse := acceptsEventStream(r.Header.Get("Accept"))
	wait := defaultPoll
	if !sse {
		if q := r.URL.Query().Get("timeout"); q != "" {
			s, err := strconv.Atoi(q)
			if err != nil || s < 1 || time.Duration(s)*time.Second > maxPoll {
				liveHTTPError(w, http.StatusBadRequest, fmt.Sprintf(`query "timeout" is a number of seconds, 1 to %d`, int(maxPoll/time.Second)))
				return
			}
			wait = time.Duration(s) * time.Second
		}
	}
	if !t.thingExists(r.Context(), id) {
		liveHTTPError(w, http.StatusNotFound, fmt.Sprintf("no Thing %s", id))
		return
	}
	if t.live.observers.Add(1) > maxObservers {
		t.live.observers.Add(-1)
		liveHTTPError(w, http.StatusServiceUnavailable, "this node serves too many observers; retry later")
		return
	}
	defer t.live.observers.Add(-1)
	sub, err := t.Subscribe(id)
	if err != nil {
		liveHTTPError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	defer sub.Close()
	if sse {
		t.streamProperty(w, r, sub, name)
	} else {
		t.pollProperty(w, r, sub, name, wait)
	}
}

// thingExists says whether a Thing has a TD or a value.
func (t *Things) thingExists(ctx context.Context, id string) bool {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	if _, err := t.ThingTD(ctx, id); err == nil {
		return true
	}
	_, err := t.Latest(ctx, id)
	return err == nil
}

// acceptsEventStream reports whether an Accept header asks for text/event-stream.
func acceptsEventStream(accept string) bool {
	for len(accept) > 0 {
		var part string
		part, accept, _ = strings.Cut(accept, ",")
		if mt, _, err := mime.ParseMediaType(part); err == nil && mt == "text/event-stream" {
			return true
		}
	}
	return false
}

// streamProperty sends each new value of the property as an event, with a
// heartbeat comment when there is none, until the client goes, the
// subscription ends or the layer closes.
func (t *Things) streamProperty(w http.ResponseWriter, r *http.Request, sub Subscription, name string) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(b []byte) bool {
		rc.SetWriteDeadline(time.Now().Add(writeWait))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send([]byte(": observing\n\n")) {
		return
	}
	beat := time.NewTicker(heartbeatEvery)
	defer beat.Stop()
	for {
		select {
		case u, ok := <-sub.Updates():
			if !ok {
				return
			}
			v, ok := propertyOf(u.Value, name)
			if !ok {
				continue
			}
			// Values are canonical JSON (no newline), so one data line.
			if !send([]byte("id: " + u.TxID.String() + "\ndata: " + string(v) + "\n\n")) {
				return
			}
		case <-beat.C:
			if !send([]byte(": heartbeat\n\n")) {
				return
			}
		case <-r.Context().Done():
			return
		case <-t.live.ctx.Done():
			return
		}
	}
}

// pollProperty answers the property's next value, or 204 after wait.
func (t *Things) pollProperty(w http.ResponseWriter, r *http.Request, sub Subscription, name string, wait time.Duration) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case u, ok := <-sub.Updates():
			if !ok {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			v, ok := propertyOf(u.Value, name)
			if !ok {
				continue
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set(TxIDHeader, u.TxID.String())
			w.Header().Set("ETag", `"`+u.TxID.String()+`"`)
			w.WriteHeader(http.StatusOK)
			w.Write(v)
			return
		case <-timer.C:
			w.WriteHeader(http.StatusNoContent)
			return
		case <-r.Context().Done():
			return
		case <-t.live.ctx.Done():
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
}
