package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
)

// ErrorBody is every error answer (4xx and 5xx): one clear sentence.
type ErrorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "could not encode the answer")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(ErrorBody{Error: msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// decodeBody reads one JSON value of type T from a size-limited body, rejecting unknown
// fields and trailing data. It returns the HTTP status and a sentence on failure.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) (int, error) {
	// Only JSON: a form or text/plain body is what a foreign page can make a
	// browser send without asking (CSRF). The node's httpguard refuses them
	// before this (httpguard.IsJSON is the same rule; this package imports
	// only node and ledger); the check is here too for the API served on
	// its own.
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		if ct == "" {
			ct = "none"
		}
		return http.StatusUnsupportedMediaType, fmt.Errorf("content type %q is not supported; send application/json", ct)
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeStatus(err, limit)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return http.StatusRequestEntityTooLarge, fmt.Errorf("request body is larger than %d bytes", limit)
		}
		return http.StatusBadRequest, errors.New("request body must hold a single JSON value")
	}
	return 0, nil
}

// isJSON says whether a Content-Type is application/json or
// application/*+json, with any parameters.
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")))
}

func decodeStatus(err error, limit int64) (int, error) {
	var mbe *http.MaxBytesError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, fmt.Errorf("request body is larger than %d bytes", limit)
	case errors.Is(err, io.EOF):
		return http.StatusBadRequest, errors.New("request body is empty; send a JSON object")
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
		return http.StatusBadRequest, fmt.Errorf("request body is not valid JSON: %v", err)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return http.StatusBadRequest, fmt.Errorf("field %q must be %s, not %s", field, friendlyType(typ.Type), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return http.StatusBadRequest, fmt.Errorf("request body has an %s", strings.TrimPrefix(err.Error(), "json: "))
	default:
		return http.StatusBadRequest, fmt.Errorf("request body is invalid: %v", err)
	}
}

// friendlyType names a Go type as the JSON a client should send. It goes by the
// type's kind, not its name, so it does not depend on this package's name.
func friendlyType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	default:
		return t.String()
	}
}
