package wot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"

	"github.com/flownode/flownode/access"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

// Flowchain's device paths over WebSocket, on the HTTP port:
//
//	/object/{id}/send    each JSON text frame is a reading (a JSON array: a batch of
//	                     readings); a device that reads gets one reply frame per frame,
//	                     in order: {"txID": ..} (an array of them for a batch frame)
//	                     or {"error": ..} for a frame that changed nothing
//	/object/{id}/viewer  each new record of the Thing (the signed JSON-LD record), in order
//	/object/{id}/status  {"isAlive": true|false} now and on every change
//
// Credentials (package access, Config.Authorize): send needs a write token for the
// Thing, viewer and status a read token unless reads are open; a device that cannot
// set the Authorization header on its handshake sends ?token=TOKEN.

// Bounds of the device paths.
const (
	maxDeviceConns = 1024 // WebSocket connections of one node, all three paths
	// frameLimit bounds one frame, a reading or a batch: larger closes the
	// connection with 1009.
	frameLimit       = ledger.MaxDataBytes + 4<<10
	maxFrameReadings = 256 // readings in one batch frame
	frameQueue       = 64  // frames read and not yet stored, per connection
	// frameBudget bounds the bytes of the frames read and not yet stored,
	// all connections together: past it readers wait (the devices' TCP
	// windows close), so that many devices sending at once cannot fill a
	// gateway's memory.
	frameBudget   = 16 << 20
	groupReadings = 128 // readings (and frames) one put of a connection carries at most
	// replyQueue bounds the replies not yet written (about 100 bytes each);
	// past it they are dropped. It holds the replies of a few puts, so that
	// a device reading its replies does not lose any.
	replyQueue   = 3 * groupReadings
	controlLimit = 4096 // what a viewer or status watcher may send us (ignored)
	writeWait    = 10 * time.Second
	pongWait     = 60 * time.Second // silence after which a connection is dead
	pingEvery    = 25 * time.Second
	storeTimeout = 30 * time.Second // one put of a connection's frames
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	// A connection holds a write buffer only while it writes: a gateway
	// keeps hundreds of mostly idle device and viewer connections.
	WriteBufferPool: &sync.Pool{},
	CheckOrigin:     func(*http.Request) bool { return true },
}

func (t *Things) deviceRoutes(mux *http.ServeMux) {
	// A device that cannot set headers on its WebSocket handshake sends its
	// token as ?token= (package access).
	mux.HandleFunc("GET /object/{id}/send", t.need(access.Write, true, t.serveSend))
	mux.HandleFunc("GET /object/{id}/viewer", t.need(access.Read, true, t.serveViewer))
	mux.HandleFunc("GET /object/{id}/status", t.need(access.Read, true, t.serveStatus))
}

// upgrade checks the Thing ID and the connection cap, then upgrades. On
// failure it has answered the client.
func (t *Things) upgrade(w http.ResponseWriter, r *http.Request) (string, *websocket.Conn, bool) {
	id := r.PathValue("id")
	if err := ledger.ValidThingID(id); err != nil {
		liveHTTPError(w, http.StatusBadRequest, err.Error())
		return "", nil, false
	}
	if !t.live.conns.reserve(maxDeviceConns) {
		liveHTTPError(w, http.StatusServiceUnavailable, "this node serves too many device connections; retry later")
		return "", nil, false
	}
	conn, err := upgrader.Upgrade(w, r, nil) // answers the client itself on failure
	if err != nil {
		t.live.conns.release(nil)
		return "", nil, false
	}
	if !t.live.conns.add(conn.NetConn()) {
		conn.Close()
		t.live.conns.release(nil)
		return "", nil, false
	}
	return id, conn, true
}

// ---- /object/{id}/send ----

// deviceConn is one /send connection: a reader, a putter that stores the
// frames in order (taking all the frames that arrived meanwhile into one put),
// and a writer of replies that never makes the other two wait.
type deviceConn struct {
	t       *Things
	thing   string
	conn    *websocket.Conn
	frames  chan frame
	replies chan []byte
	dropped atomic.Uint64 // replies dropped: the device does not read them
}

// frame is one text frame: its readings, or why it was refused, and the
// bytes of frameBudget it holds until stored.
type frame struct {
	values []ledger.Reading // the readings of the frame's values (readingOf)
	batch  bool
	err    error
	size   int64
}

func (t *Things) serveSend(w http.ResponseWriter, r *http.Request) {
	thing, conn, ok := t.upgrade(w, r)
	if !ok {
		return
	}
	defer t.live.conns.release(conn.NetConn())
	defer conn.Close()
	release := t.Present(thing)
	defer release()
	dc := &deviceConn{t: t, thing: thing, conn: conn, frames: make(chan frame, frameQueue), replies: make(chan []byte, replyQueue)}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); dc.putLoop() }()
	go func() { defer wg.Done(); dc.writeLoop() }()
	dc.readLoop()
	wg.Wait()
	if n := dc.dropped.Load(); n > 0 {
		t.log.Debug("device did not read its replies", zap.String("thing", thing), zap.Uint64("dropped", n))
	}
}

// readLoop reads frames until the device closes or fails, and hands them
// to the putter in order; a full queue makes it wait (the device's TCP
// window then slows it), never a reply.
func (dc *deviceConn) readLoop() {
	defer close(dc.frames)
	c := dc.conn
	c.SetReadLimit(frameLimit)
	alive := func() { c.SetReadDeadline(time.Now().Add(pongWait)) }
	alive()
	c.SetPongHandler(func(string) error { alive(); return nil })
	for {
		mt, data, err := c.ReadMessage()
		if err != nil {
			return // closed, oversize (gorilla closed it with 1009), or silent too long
		}
		alive()
		f := frame{size: int64(len(data))}
		if dc.t.live.frameBytes.Acquire(dc.t.live.ctx, f.size) != nil {
			return
		}
		if mt != websocket.TextMessage {
			f.err = errors.New("a binary frame is not a reading: send each reading as a JSON text frame")
		} else {
			f.values, f.batch, f.err = dc.parseReadings(data)
		}
		select {
		case dc.frames <- f:
		case <-dc.t.live.ctx.Done():
			dc.t.live.frameBytes.Release(f.size)
			return
		}
	}
}

// parseReadings reads a text frame's readings: parseFrame, then each value
// as a reading or a device's signed reading (readingOf).
func (dc *deviceConn) parseReadings(data []byte) ([]ledger.Reading, bool, error) {
	values, batch, err := parseFrame(data)
	if err != nil {
		return nil, batch, err
	}
	rs := make([]ledger.Reading, len(values))
	for i, v := range values {
		if rs[i], err = readingOf(dc.thing, v); err != nil {
			if batch {
				err = fmt.Errorf("reading %d: %w", i, err)
			}
			return nil, batch, err
		}
	}
	return rs, batch, nil
}

// parseFrame reads a text frame: one JSON value is a reading, a JSON array
// a batch of readings. Each is checked as the ledger will check it.
func parseFrame(data []byte) ([]json.RawMessage, bool, error) {
	data = trimSpace(data)
	if !json.Valid(data) {
		return nil, false, errors.New("the frame is not JSON: send one reading (a JSON value) or a JSON array of readings")
	}
	if len(data) > 0 && data[0] == '[' {
		var values []json.RawMessage
		if err := json.Unmarshal(data, &values); err != nil {
			return nil, true, err
		}
		if len(values) == 0 || len(values) > maxFrameReadings {
			return nil, true, fmt.Errorf("a batch frame holds 1 to %d readings, not %d", maxFrameReadings, len(values))
		}
		for i, v := range values {
			if err := checkValue(v); err != nil {
				return nil, true, fmt.Errorf("reading %d: %v", i, err)
			}
		}
		return values, true, nil
	}
	if err := checkValue(data); err != nil {
		return nil, false, err
	}
	return []json.RawMessage{data}, false, nil
}

// putLoop stores the frames in order: each put takes every frame queued
// meanwhile (up to groupReadings readings), so that a device sending fast
// gets few large puts instead of many small ones, and replies in order.
func (dc *deviceConn) putLoop() {
	defer close(dc.replies)
	for f := range dc.frames {
		group, n := []frame{f}, len(f.values)
	more:
		for n < groupReadings && len(group) < groupReadings {
			select {
			case g, ok := <-dc.frames:
				if !ok {
					break more
				}
				group = append(group, g)
				n += len(g.values)
			default:
				break more
			}
		}
		dc.store(group)
		for _, g := range group {
			dc.t.live.frameBytes.Release(g.size)
		}
	}
}

// store puts the readings of a group of frames and queues one reply per
// frame, in order. The put runs under the layer's context, not the
// connection's: a device that sends and hangs up still has its readings
// stored.
func (dc *deviceConn) store(group []frame) {
	var readings []ledger.Reading
	for _, f := range group {
		readings = append(readings, f.values...)
	}
	var rcs []node.Receipt
	var err error
	if len(readings) > 0 {
		ctx, cancel := context.WithTimeout(dc.t.live.ctx, storeTimeout)
		defer cancel()
		if err = dc.t.ensureThing(ctx, dc.thing, readings[0].Data); err == nil {
			rcs, err = dc.t.put(ctx, readings)
		}
		if errors.Is(err, ErrBadInput) && len(group) > 1 {
			// One frame the checks let through was refused: store the
			// frames one by one so that only it fails. The readings are
			// stamped now; resent, those already stored are answered with
			// their records, not signed twice.
			dc.storeEach(ctx, group, readings)
			return
		}
	}
	i := 0
	for _, f := range group {
		switch {
		case f.err != nil:
			dc.reply(errorFrame(f.err.Error()))
		case err != nil:
			dc.reply(errorFrame(notStored(err)))
		default:
			dc.reply(receiptFrame(rcs[i:i+len(f.values)], f.batch))
		}
		i += len(f.values)
	}
}

// storeEach stores a group's frames one put each (see store).
func (dc *deviceConn) storeEach(ctx context.Context, group []frame, readings []ledger.Reading) {
	i := 0
	for _, f := range group {
		if f.err != nil {
			dc.reply(errorFrame(f.err.Error()))
			continue
		}
		rs := readings[i : i+len(f.values)]
		i += len(f.values)
		for j := range rs {
			rs[j].Resend = rs[j].Time != 0
		}
		rcs, err := dc.t.put(ctx, rs)
		if err != nil {
			dc.reply(errorFrame(notStored(err)))
		} else {
			dc.reply(receiptFrame(rcs, f.batch))
		}
	}
}

// notStored is the error reply of a frame whose put failed.
func notStored(err error) string {
	if errors.Is(err, ErrBadInput) {
		return err.Error()
	}
	return "not stored: the node could not store the reading durably (" + err.Error() + "); send it again"
}

// reply queues a frame for the device without ever waiting: a device that
// does not read (a legacy device) loses its replies, not its readings.
func (dc *deviceConn) reply(b []byte) {
	select {
	case dc.replies <- b:
	default:
		dc.dropped.Add(1)
	}
}

// writeLoop writes the replies and pings. A write that fails (the device
// does not read and its buffers are full) ends the writing, not the
// connection: the reader goes on.
func (dc *deviceConn) writeLoop() {
	c := dc.conn
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	broken := false
	for {
		select {
		case b, ok := <-dc.replies:
			if !ok {
				if !broken {
					c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
				}
				return
			}
			if broken {
				dc.dropped.Add(1)
				continue
			}
			c.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.WriteMessage(websocket.TextMessage, b); err != nil {
				broken = true
			}
		case <-ping.C:
			if !broken && c.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)) != nil {
				broken = true
			}
		}
	}
}

// ---- /object/{id}/viewer ----

// serveViewer sends each new record of the Thing, in order. A viewer of a
// Thing that has no record yet waits for its first (Things are created by
// their first reading); only a malformed ID is refused.
func (t *Things) serveViewer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := ledger.ValidThingID(id); err != nil {
		liveHTTPError(w, http.StatusBadRequest, err.Error())
		return
	}
	// Subscribed before the upgrade: every record written after the
	// client's handshake completes reaches it.
	sub, err := t.Subscribe(id)
	if err != nil {
		liveHTTPError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	defer sub.Close()
	_, conn, ok := t.upgrade(w, r)
	if !ok {
		return
	}
	defer t.live.conns.release(conn.NetConn())
	defer conn.Close()
	gone := discardReads(conn)
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		select {
		case u, ok := <-sub.Updates():
			if !ok {
				closeConn(conn, websocket.CloseGoingAway)
				return
			}
			conn.SetWriteDeadline(time.Now().Add(writeWait))
			if conn.WriteMessage(websocket.TextMessage, u.Record) != nil {
				return
			}
		case <-ping.C:
			if conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)) != nil {
				return
			}
		case <-gone:
			return
		}
	}
}

// discardReads reads (and ignores) what a viewer or status watcher sends,
// which also answers pings and sees the close; the channel closes when the
// client is gone or silent for pongWait.
func discardReads(c *websocket.Conn) <-chan struct{} {
	gone := make(chan struct{})
	c.SetReadLimit(controlLimit)
	alive := func() { c.SetReadDeadline(time.Now().Add(pongWait)) }
	alive()
	c.SetPongHandler(func(string) error { alive(); return nil })
	go func() {
		defer close(gone)
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
			alive()
		}
	}()
	return gone
}

func closeConn(c *websocket.Conn, code int) {
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, ""), time.Now().Add(time.Second))
}

// ---- /object/{id}/status ----

// serveStatus sends {"isAlive": bool} now and on every change of the
// Thing's presence on this node (devices connected to other nodes are not
// seen). Any valid Thing ID is answered: false until a device connects.
func (t *Things) serveStatus(w http.ResponseWriter, r *http.Request) {
	thing, conn, ok := t.upgrade(w, r)
	if !ok {
		return
	}
	defer t.live.conns.release(conn.NetConn())
	defer conn.Close()
	changes, alive, stop := t.live.pres.watch(thing)
	defer stop()
	gone := discardReads(conn)
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		conn.SetWriteDeadline(time.Now().Add(writeWait))
		if conn.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"isAlive":%t}`, alive))) != nil {
			return
		}
	wait:
		for {
			select {
			case a := <-changes:
				if a != alive {
					alive = a
					break wait
				}
			case <-ping.C:
				if conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)) != nil {
					return
				}
			case <-gone:
				return
			case <-t.live.ctx.Done():
				closeConn(conn, websocket.CloseGoingAway)
				return
			}
		}
	}
}

// deviceReceipt is the reply to a stored reading: its txID (the whole
// receipt, and the record, are GET /api/v1/records/{txID} away). Replies
// are kept this small because a connection may hold replyQueue of them.
type deviceReceipt struct {
	TxID ledger.Hash `json:"txID"`
}

// receiptFrame is the reply to a stored frame: one receipt, or an array
// for a batch frame.
func receiptFrame(rcs []node.Receipt, batch bool) []byte {
	out := make([]deviceReceipt, len(rcs))
	for i, rc := range rcs {
		out[i] = deviceReceipt{TxID: rc.TxID}
	}
	if !batch {
		return mustJSON(out[0])
	}
	return mustJSON(out)
}
