package httpguard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// freeBody is how much of a body is read before the request takes its share
// of BodyBytes: a client that trickles its first bytes holds no share, only
// its connection (which MaxConns bounds, at freeBody each).
const freeBody = 4 << 10

// readBody reads r's body in full, within the limits, and puts it back as
// an in-memory body; the handler then reads it at memory speed, and the
// connection is never held by a slow sender while a handler runs. It
// returns the release of the request's share of BodyBytes, or false once it
// has answered the client (408, 413, 503).
func (g *Guard) readBody(w http.ResponseWriter, r *http.Request, c *conn) (release func(), ok bool) {
	noop := func() {}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		if c != nil {
			c.t.set(c, phaseServing)
		}
		return noop, true
	}
	max := g.cfg.MaxBody
	rc := http.NewResponseController(w)
	// cut makes the connection's reads fail from now on, so that the server
	// does not wait for the rest of a refused body before it closes.
	cut := func() { _ = rc.SetReadDeadline(time.Now()) }
	if r.ContentLength > max {
		cut()
		w.Header().Set("Connection", "close")
		refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", max))
		return nil, false
	}
	if c != nil {
		c.t.set(c, phaseBody)
		defer c.t.set(c, phaseServing)
	}
	deadline := func(d time.Duration) {
		// A server without deadlines (a test's recorder) just reads.
		_ = rc.SetReadDeadline(time.Now().Add(d))
	}
	deadline(g.cfg.Limits.BodyTimeout)
	body := http.MaxBytesReader(w, r.Body, max)

	head := make([]byte, min(freeBody, max+1))
	if r.ContentLength > 0 {
		head = head[:min(int64(len(head)), r.ContentLength)]
	}
	n, err := io.ReadFull(body, head)
	chunked := r.ContentLength < 0
	var buf []byte
	var share int64
	switch {
	case err == nil && !chunked && int64(n) == r.ContentLength:
		buf = head[:n] // the whole body; the EOF is checked below
	case err == nil:
		// More to come: take the share of the whole body first.
		weight := r.ContentLength
		if chunked {
			weight = max
		}
		ctx, cancel := context.WithTimeout(r.Context(), g.cfg.Limits.BodyWait)
		share, err = g.bodies.acquire(ctx, weight)
		cancel()
		if err != nil {
			cut()
			g.busy.Add(1)
			if r.Context().Err() == nil {
				w.Header().Set("Retry-After", "1")
				w.Header().Set("Connection", "close")
				refuse(w, http.StatusServiceUnavailable, "this node is busy reading other requests; retry in a second")
			}
			return nil, false
		}
		deadline(g.cfg.Limits.BodyTimeout)
		if chunked {
			bb := bytes.NewBuffer(make([]byte, 0, 4*freeBody))
			bb.Write(head)
			_, err = bb.ReadFrom(body)
			buf = bb.Bytes()
		} else {
			buf = make([]byte, r.ContentLength)
			copy(buf, head)
			_, err = io.ReadFull(body, buf[n:])
		}
	case chunked && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)):
		buf, err = head[:n], nil // a short chunked body
	}
	if err == nil {
		// Read to the EOF: it tells the server the body is done (it then
		// watches the connection for the client going away).
		var one [1]byte
		if _, e := body.Read(one[:]); e != io.EOF {
			err = e
			if e == nil {
				err = errors.New("body longer than its Content-Length")
			}
		}
	}
	release = func() { g.bodies.release(share) }
	if err != nil {
		cut()
		release()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			g.timedOut.Add(1)
		}
		bodyError(w, err, max)
		return nil, false
	}
	// A handler may run long (a put waiting for its replicas): no deadline
	// on the connection while it does.
	_ = rc.SetReadDeadline(time.Time{})
	r.Body = io.NopCloser(bytes.NewReader(buf))
	r.ContentLength = int64(len(buf))
	return release, true
}

// bodyError answers a body that could not be read.
func bodyError(w http.ResponseWriter, err error, max int64) {
	w.Header().Set("Connection", "close")
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", max))
	case errors.As(err, &ne) && ne.Timeout():
		refuse(w, http.StatusRequestTimeout, "the request body did not arrive in time; send it at once")
	default:
		refuse(w, http.StatusBadRequest, "the request body could not be read: "+err.Error())
	}
}
