package wot

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/access"
)

// The WoT Discovery directory API (Thing Description Directory, WoT
// Discovery 1.0 §7.3.2) over the whole ring:
//
//	GET    /.well-known/wot   the directory's TD
//	GET    /things            every TD, ?offset=N&limit=N, Link rel="next"
//	POST   /things            create (a TD without id gets urn:uuid:...): 201, Location
//	GET    /things/{id}       a TD with this node's forms
//	PUT    /things/{id}       create (201) or replace (204)
//	PATCH  /things/{id}       JSON Merge Patch (application/merge-patch+json): 204
//	DELETE /things/{id}       204
//
// {id} is a Thing id or its TD id (urn:flownode:thing:<id>), URL-escaped.
// Errors answer {"error": "..."} with one sentence, like the API.

const (
	// maxTDBody bounds a request body; the stored TD is bounded again
	// (maxStoredTD) once our forms are removed.
	maxTDBody = 64 << 10
	// dirTimeout bounds a directory request's ring work.
	dirTimeout = 30 * time.Second

	defaultListLimit = 100
	maxListLimit     = 1000
	maxListOffset    = 100_000
)

func (t *Things) directoryRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /.well-known/wot", t.getDirectoryTD)
	// The listing spans every Thing, and POST /things picks a new id: both
	// need a credential for every Thing (when reads are not open, for the
	// listing).
	mux.HandleFunc("GET /things", t.need(access.Read, false, t.listThings))
	mux.HandleFunc("POST /things", t.need(access.Write, false, t.postThing))
	mux.HandleFunc("GET /things/{id}", t.need(access.Read, true, t.getThing))
	mux.HandleFunc("PUT /things/{id}", t.need(access.Write, true, t.putThing))
	mux.HandleFunc("PATCH /things/{id}", t.need(access.Write, true, t.patchThing))
	mux.HandleFunc("DELETE /things/{id}", t.need(access.Write, true, t.deleteThing))
	// Other methods get the directory's JSON error, not the mux's text.
	for pattern, allow := range map[string]string{
		"/.well-known/wot": "GET, HEAD",
		"/things":          "GET, HEAD, POST",
		"/things/{id}":     "GET, HEAD, PUT, PATCH, DELETE",
	} {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeDirError(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed here; use "+allow)
		})
	}
}

func (t *Things) getDirectoryTD(w http.ResponseWriter, r *http.Request) {
	writeDirBody(w, http.StatusOK, ctTD, t.DirectoryTD())
}

func (t *Things) getThing(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), dirTimeout)
	defer cancel()
	td, err := t.ThingTD(ctx, r.PathValue("id"))
	if err != nil {
		t.writeFailure(w, r, err)
		return
	}
	writeDirBody(w, http.StatusOK, ctTD, td)
}

func (t *Things) putThing(w http.ResponseWriter, r *http.Request) {
	thing, err := thingIDOf(r.PathValue("id"))
	if err != nil {
		t.writeFailure(w, r, err)
		return
	}
	td, err := readTD(w, r, ctTD, ctJSON, ctLD)
	if err != nil {
		t.writeFailure(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), dirTimeout)
	defer cancel()
	created, err := t.putTD(ctx, thing, td, false)
	if err != nil {
		t.writeFailure(w, r, err)
		return
	}
	if created {
		w.Header().Set("Location", tdPath(thing))
		w.WriteHeader(http.StatusCreated)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (t *Things) postThing(w http.ResponseWriter, r *http.Request) {
	td, err := readTD(w, r, ctTD, ctJSON, ctLD)
	if err != nil {
		t.writeFailure(w, r, err)
		return
	}
	var thing string
	if id, ok := td["id"]; ok {
		s, _ := id.(string)
		if thing, err = thingIDOf(s); err != nil {
			t.writeFailure(w, r, fmt.Errorf("the TD's id: %w", err))
			return
		}
	} else if thing, err = anonymousID(); err != nil {
		t.writeFailure(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), dirTimeout)
	defer cancel()
	if _, err := t.putTD(ctx, thing, td, true); err != nil {
		t.writeFailure(w, r, err)
		return
	}
	w.Header().Set("Location", tdPath(thing))
	w.WriteHeader(http.StatusCreated)
}

func (t *Things) patchThing(w http.ResponseWriter, r *http.Request) {
	thing, err := thingIDOf(r.PathValue("id"))
	if err != nil {
		t.writeFailure(w, r, err)
		return
	}
	patch, err := readTD(w, r, ctMergePatch)
	if err != nil {
		t.writeFailure(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), dirTimeout)
	defer cancel()
	if err := t.patchTD(ctx, thing, patch); err != nil {
		t.writeFailure(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (t *Things) deleteThing(w http.ResponseWriter, r *http.Request) {
	thing, err := thingIDOf(r.PathValue("id"))
	if err != nil {
		t.writeFailure(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), dirTimeout)
	defer cancel()
	if err := t.deleteTD(ctx, thing); err != nil {
		t.writeFailure(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listThings answers GET /things: a JSON array of TDs (application/ld+json),
// id order, a page at a time, with Link rel="next" when more may follow.
func (t *Things) listThings(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	offset, err := listQueryInt(q, "offset", 0, 0, maxListOffset)
	if err != nil {
		t.writeFailure(w, r, err)
		return
	}
	limit, err := listQueryInt(q, "limit", defaultListLimit, 1, maxListLimit)
	if err != nil {
		t.writeFailure(w, r, err)
		return
	}
	if f := q.Get("format"); f != "" && f != "array" {
		t.writeFailure(w, r, fmt.Errorf(`%w: query "format" must be array (the only format served)`, ErrBadInput))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), dirTimeout)
	defer cancel()
	page, more, err := t.reg.list(ctx, offset, limit)
	if err != nil {
		t.writeFailure(w, r, err)
		return
	}
	var buf bytes.Buffer
	buf.WriteByte('[')
	served := 0
	for _, e := range page {
		if buf.Len() > maxPageBytes {
			more = true // a page ends early rather than grow without bound
			break
		}
		td, err := t.servedTD(e.ID, e.TD)
		if err != nil {
			t.writeFailure(w, r, err)
			return
		}
		if served > 0 {
			buf.WriteByte(',')
		}
		buf.Write(td)
		served++
	}
	buf.WriteString("]\n")
	if more {
		next := url.Values{"offset": {strconv.Itoa(offset + served)}, "limit": {strconv.Itoa(limit)}}
		w.Header().Set("Link", fmt.Sprintf(`</things?%s>; rel="next"`, next.Encode()))
	}
	writeDirBody(w, http.StatusOK, ctLD, buf.Bytes())
}

func listQueryInt(q url.Values, name string, def, lo, hi int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: query %q must be a whole number from %d to %d", ErrBadInput, name, lo, hi)
	}
	return n, nil
}

// thingPath is the directory path of a Thing's TD.
func tdPath(thing string) string { return "/things/" + url.PathEscape(thing) }

// anonymousID makes the id of a TD created without one: urn:uuid:<v4>.
func anonymousID() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", err
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]), nil
}

// Request errors the HTTP side maps to their own codes.
var (
	errTDMediaType = errors.New("unsupported media type")
)

// readTD reads a request body of one of the media types: one JSON object of
// at most maxTDBody bytes.
func readTD(w http.ResponseWriter, r *http.Request, types ...string) (map[string]any, error) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !slices.Contains(types, mt) {
		return nil, fmt.Errorf("%w: content type %q; send %s", errTDMediaType, ct, strings.Join(types, " or "))
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTDBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, fmt.Errorf("%w: the request body is larger than %d bytes", errTDTooLarge, maxTDBody)
	case err != nil:
		return nil, fmt.Errorf("%w: the request body could not be read: %v", ErrBadInput, err)
	case len(bytes.TrimSpace(body)) == 0:
		return nil, fmt.Errorf("%w: the request body is empty; send a JSON object", ErrBadInput)
	}
	td, err := decodeTD(body)
	if err != nil {
		return nil, fmt.Errorf("%w: the request body is not one JSON object: %v", ErrBadInput, err)
	}
	return td, nil
}

// writeFailure answers an error with its status and sentence; a failure of
// the ring is logged and answered 503 without its details.
func (t *Things) writeFailure(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusServiceUnavailable
	switch {
	case errors.Is(err, ErrNoThing):
		writeDirError(w, http.StatusNotFound, "no Thing "+strconv.Quote(r.PathValue("id"))+" in the directory")
		return
	case errors.Is(err, errTDMediaType):
		code = http.StatusUnsupportedMediaType
	case errors.Is(err, errTDTooLarge):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, errThingExists), errors.Is(err, errTooManyVersions):
		code = http.StatusConflict
	case errors.Is(err, ErrBadInput):
		code = http.StatusBadRequest
	case r.Context().Err() != nil:
		t.log.Info("directory request abandoned by its client", zap.String("path", r.URL.Path), zap.Error(err))
		return
	default:
		t.log.Warn("directory request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
		writeDirError(w, code, "the ring could not answer; retry later")
		return
	}
	writeDirError(w, code, dirErrorSentence(err))
}

// sentence turns a wrapped error into the client's sentence: without the
// sentinel's own words in front.
func dirErrorSentence(err error) string {
	s := err.Error()
	for _, prefix := range []string{ErrBadInput.Error() + ": ", errTDMediaType.Error() + ": ", errTDTooLarge.Error() + ": ", errThingExists.Error() + ": ", errTooManyVersions.Error() + ": "} {
		s = strings.Replace(s, prefix, "", 1)
	}
	return s
}

func writeDirError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("X-Content-Type-Options", "nosniff")
	writeDirBody(w, code, ctJSON, append(b, '\n'))
}

func writeDirBody(w http.ResponseWriter, code int, mediaType string, body []byte) {
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(code)
	w.Write(body)
}
