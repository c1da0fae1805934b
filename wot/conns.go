package wot

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
)

// Connections of the device and property paths, and the error answers
// they share.

// connSet counts a node's WebSocket connections (reserve/release) and
// holds them (add) so that closing the layer closes them and waits for
// their handlers.
type connSet struct {
	mu       sync.Mutex
	n        int
	open     map[io.Closer]struct{}
	closed   bool
	handlers sync.WaitGroup // one per reserved place
}

func (cs *connSet) reserve(limit int) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed || cs.n >= limit {
		return false
	}
	cs.n++
	cs.handlers.Add(1)
	return true
}

// add holds c until release; false when the set is closed.
func (cs *connSet) add(c io.Closer) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return false
	}
	if cs.open == nil {
		cs.open = map[io.Closer]struct{}{}
	}
	cs.open[c] = struct{}{}
	return true
}

// release frees a reserved place and forgets c (nil: none was added).
func (cs *connSet) release(c io.Closer) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.n--
	if c != nil {
		delete(cs.open, c)
	}
	cs.handlers.Done()
}

func (cs *connSet) closeAll() {
	cs.mu.Lock()
	cs.closed = true
	all := make([]io.Closer, 0, len(cs.open))
	for c := range cs.open {
		all = append(all, c)
	}
	cs.mu.Unlock()
	for _, c := range all {
		c.Close()
	}
	cs.handlers.Wait()
}

// errorFrame is the reply to a frame that changed nothing.
func errorFrame(msg string) []byte { return mustJSON(map[string]string{"error": msg}) }

// mustJSON encodes values that always encode (receipts, string maps).
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return errorFrame("internal error: " + err.Error())
	}
	return b
}

// liveHTTPError answers an HTTP request with {"error": msg}.
func liveHTTPError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	var buf bytes.Buffer
	json.NewEncoder(&buf).Encode(map[string]string{"error": msg})
	w.Write(buf.Bytes())
}
