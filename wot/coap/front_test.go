package coap

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
)

func jsonCF() message.Option { return uintOpt(message.ContentFormat, uint32(cfJSON)) }

// TestRetransmittedPostStoredOnce: a CON POST sent again with its message
// ID (its ACK was lost) gets the same response and is not stored twice.
func TestRetransmittedPostStoredOnce(t *testing.T) {
	dev := newFakeDevices()
	srv, addr := startFront(t, dev)
	c := newRawClient(t, addr)
	req := c.request(message.Confirmable, codes.POST, "/object/t/send", []byte(`{"v":1}`), jsonCF())
	first := c.do(req)
	again := c.do(req)
	if first.Code != codes.Created || first.Type != message.Acknowledgement || first.MessageID != req.MessageID {
		t.Fatalf("first response %v", first)
	}
	if again.Code != codes.Created || !bytes.Equal(again.Payload, first.Payload) || again.MessageID != req.MessageID {
		t.Fatalf("the retransmission got %v, want the first response again", again)
	}
	if n := len(dev.readings("t")); n != 1 {
		t.Fatalf("stored %d readings, want 1", n)
	}
	if srv.Stats().Duplicates.Load() != 1 {
		t.Errorf("duplicates %d", srv.Stats().Duplicates.Load())
	}
	// A new message ID is a new request.
	c.do(c.request(message.Confirmable, codes.POST, "/object/t/send", []byte(`{"v":1}`), jsonCF()))
	if n := len(dev.readings("t")); n != 2 {
		t.Fatalf("stored %d readings, want 2", n)
	}
}

// TestNonConfirmable: a NON request gets a NON response with the token.
func TestNonConfirmable(t *testing.T) {
	dev := newFakeDevices()
	_, addr := startFront(t, dev)
	c := newRawClient(t, addr)
	req := c.request(message.NonConfirmable, codes.POST, "/object/t/send", []byte(`[1,2]`), jsonCF())
	resp := c.do(req)
	if resp.Type != message.NonConfirmable || resp.Code != codes.Created || !bytes.Equal(resp.Token, req.Token) {
		t.Fatalf("response %v", resp)
	}
	var receipts []json.RawMessage
	if err := json.Unmarshal(resp.Payload, &receipts); err != nil || len(receipts) != 2 {
		t.Fatalf("a batch of 2 got %s", resp.Payload)
	}
	if got := dev.readings("t"); len(got) != 2 || string(got[1]) != "2" {
		t.Fatalf("stored %q", got)
	}
}

// TestMalformedDatagrams: an unparsable CON gets an RST (RFC 7252 §4.2), an
// unparsable NON nothing, a ping (empty CON) an RST; the front serves on.
func TestMalformedDatagrams(t *testing.T) {
	dev := newFakeDevices()
	_, addr := startFront(t, dev)
	c := newRawClient(t, addr)
	c.writeRaw([]byte{0x49, 0x02, 0x12, 0x34}) // CON POST with a 9-byte token
	if r := c.read(5 * time.Second); r == nil || r.Type != message.Reset || r.MessageID != 0x1234 {
		t.Fatalf("malformed CON: got %v, want an RST", r)
	}
	c.writeRaw([]byte{0x50, 0x02, 0x12, 0x35, 0xdd}) // NON, truncated option
	c.writeRaw([]byte{0x40, 0x00, 0x12, 0x36})       // ping
	if r := c.read(5 * time.Second); r == nil || r.Type != message.Reset || r.MessageID != 0x1236 {
		t.Fatalf("ping: got %v, want an RST for 0x1236 (and nothing for the malformed NON)", r)
	}
	if r := c.do(c.request(message.Confirmable, codes.GET, "/.well-known/core", nil)); r.Code != codes.Content {
		t.Fatalf("after malformed datagrams: %v", r)
	}
}

// TestBlock1ByRequestTag: two uploads from one source to one path, with a
// new token per block, interleaved, told apart by Request-Tag; a block out
// of order gets 4.08 and an upload over MaxBody 4.13 with Size1.
func TestBlock1ByRequestTag(t *testing.T) {
	dev := newFakeDevices()
	_, addr := startFront(t, dev, func(c *Config) { c.MaxBody = 1000 })
	c := newRawClient(t, addr)
	a := []byte(`"` + strings.Repeat("a", 100) + `"`) // 102 bytes: 32+32+32+6
	b := []byte(`"` + strings.Repeat("b", 70) + `"`)  // 72 bytes: 32+32+8
	blockReq := func(body []byte, num int, tag string) *message.Message {
		size := 32
		start, end := num*size, min((num+1)*size, len(body))
		more := end < len(body)
		return c.request(message.Confirmable, codes.POST, "/object/t/send", body[start:end], jsonCF(),
			uintOpt(message.Block1, block{num: uint32(num), more: more, szx: 1}.value()),
			message.Option{ID: optRequestTag, Value: []byte(tag)})
	}
	steps := []struct {
		body []byte
		num  int
		tag  string
		code codes.Code
	}{
		{a, 0, "A", codes.Continue}, {b, 0, "B", codes.Continue}, {a, 1, "A", codes.Continue},
		{b, 1, "B", codes.Continue}, {b, 2, "B", codes.Created}, {a, 2, "A", codes.Continue}, {a, 3, "A", codes.Created},
	}
	for i, s := range steps {
		r := c.do(blockReq(s.body, s.num, s.tag))
		if r.Code != s.code {
			t.Fatalf("step %d: %v %s, want %v", i, r.Code, r.Payload, s.code)
		}
		if got, ok := uintOption(r, message.Block1); !ok || got>>4 != uint32(s.num) {
			t.Fatalf("step %d: Block1 %d not echoed", i, got)
		}
	}
	got := dev.readings("t")
	if len(got) != 2 || !bytes.Equal(got[0], b) || !bytes.Equal(got[1], a) {
		t.Fatalf("stored %q", got)
	}
	// Block 2 before block 1; block 1 with no upload begun.
	c.do(blockReq(a, 0, "C"))
	if r := c.do(blockReq(a, 2, "C")); r.Code != codes.RequestEntityIncomplete {
		t.Fatalf("a block out of order: %v", r.Code)
	}
	if r := c.do(blockReq(a, 1, "C")); r.Code != codes.RequestEntityIncomplete {
		t.Fatalf("a block of a dropped upload: %v", r.Code)
	}
	// Over MaxBody by accumulated size, without Size1.
	big := bytes.Repeat([]byte("z"), 1100)
	var r *message.Message
	for n := 0; n*32 < len(big); n++ {
		if r = c.do(blockReq(big, n, "D")); r.Code != codes.Continue {
			break
		}
	}
	if size1, _ := uintOption(r, message.Size1); r.Code != codes.RequestEntityTooLarge || size1 != 1000 {
		t.Fatalf("an upload over MaxBody: %v with Size1 %d", r.Code, size1)
	}
	if n := len(dev.readings("t")); n != 2 {
		t.Fatalf("bad uploads stored readings: %d", n)
	}
}

// TestSeparateResponse: a Send slower than SeparateAfter gets an empty ACK
// at once, then the response as a CON of its own, retransmitted until the
// client acknowledges it; a retransmitted request meanwhile gets the empty
// ACK again and is not stored twice.
func TestSeparateResponse(t *testing.T) {
	dev := newFakeDevices()
	dev.sendDelay = 1500 * time.Millisecond
	_, addr := startFront(t, dev, func(c *Config) { c.SeparateAfter = 50 * time.Millisecond; c.AckTimeout = 200 * time.Millisecond })
	c := newRawClient(t, addr)
	req := c.request(message.Confirmable, codes.POST, "/object/t/send", []byte(`{"slow":true}`), jsonCF())
	ack := c.do(req)
	if ack.Type != message.Acknowledgement || ack.Code != codes.Empty || ack.MessageID != req.MessageID {
		t.Fatalf("want an empty ACK first, got %v", ack)
	}
	again := c.do(req)
	if again.Type != message.Acknowledgement || again.Code != codes.Empty {
		t.Fatalf("the retransmitted request: %v", again)
	}
	resp := c.read(10 * time.Second)
	if resp == nil || resp.Type != message.Confirmable || resp.Code != codes.Created || !bytes.Equal(resp.Token, req.Token) {
		t.Fatalf("separate response %v", resp)
	}
	// Not acknowledged yet: it comes again.
	resend := c.read(10 * time.Second)
	if resend == nil || resend.MessageID != resp.MessageID {
		t.Fatalf("want the separate response retransmitted, got %v", resend)
	}
	b, _ := encode(&message.Message{Type: message.Acknowledgement, Code: codes.Empty, MessageID: resp.MessageID})
	c.writeRaw(b)
	if extra := c.read(time.Second); extra != nil && extra.MessageID == resp.MessageID && extra.Type == message.Confirmable {
		// One more may have crossed the ACK on the wire; after it, none.
		if extra = c.read(2 * time.Second); extra != nil {
			t.Fatalf("retransmitted after its ACK: %v", extra)
		}
	}
	if n := len(dev.readings("t")); n != 1 {
		t.Fatalf("stored %d readings, want 1", n)
	}
}

// TestObserveRaw: notifications carry increasing Observe numbers, every
// conEvery-th is confirmable, an RST to one ends the observation, and a
// deregistration (Observe 1) ends another.
func TestObserveRaw(t *testing.T) {
	dev := newFakeDevices()
	_, addr := startFront(t, dev)
	c := newRawClient(t, addr)
	reg := c.request(message.Confirmable, codes.GET, "/object/t/viewer", nil, uintOpt(message.Observe, 0))
	first := c.do(reg)
	if _, ok := uintOption(first, message.Observe); !ok || first.Code != codes.Content {
		t.Fatalf("registration: %v", first)
	}
	eventually(t, "the subscription", func() bool { return dev.subscribers("t") == 1 })
	last := uint32(0)
	cons := 0
	for i := 1; i <= conEvery+2; i++ {
		if _, err := dev.Send(t.Context(), "t", []json.RawMessage{json.RawMessage(`{"i":` + strconv.Itoa(i) + `}`)}); err != nil {
			t.Fatal(err)
		}
		n := c.read(10 * time.Second)
		if n == nil {
			t.Fatalf("notification %d missing", i)
		}
		seq, _ := uintOption(n, message.Observe)
		if seq <= last || !bytes.Equal(n.Token, reg.Token) || !strings.Contains(string(n.Payload), `"i":`+strconv.Itoa(i)+`}`) {
			t.Fatalf("notification %d: seq %d after %d, %s", i, seq, last, n.Payload)
		}
		last = seq
		if n.Type == message.Confirmable {
			cons++
			b, _ := encode(&message.Message{Type: message.Acknowledgement, Code: codes.Empty, MessageID: n.MessageID})
			c.writeRaw(b)
		}
	}
	if cons != 1 {
		t.Errorf("%d confirmable notifications in %d, want 1", cons, conEvery+2)
	}
	// An RST to a notification ends the observation.
	dev.Send(t.Context(), "t", []json.RawMessage{json.RawMessage(`{"i":0}`)})
	n := c.read(10 * time.Second)
	b, _ := encode(&message.Message{Type: message.Reset, Code: codes.Empty, MessageID: n.MessageID})
	c.writeRaw(b)
	eventually(t, "the observation to end on RST", func() bool { return dev.subscribers("t") == 0 })

	// Register again, then deregister with Observe 1.
	reg = c.request(message.Confirmable, codes.GET, "/object/t/viewer", nil, uintOpt(message.Observe, 0))
	c.do(reg)
	eventually(t, "the second subscription", func() bool { return dev.subscribers("t") == 1 })
	dereg := c.request(message.Confirmable, codes.GET, "/object/t/viewer", nil, uintOpt(message.Observe, 1))
	dereg.Token = reg.Token
	if r := c.do(dereg); r.Code != codes.Content || r.Options.HasOption(message.Observe) {
		t.Fatalf("deregistration answered %v", r)
	}
	eventually(t, "the observation to end on deregistration", func() bool { return dev.subscribers("t") == 0 })
}

// TestProperty reads a property of the latest reading, observes it, and
// gets 4.04 for a property the reading lacks and a Thing with no value.
func TestProperty(t *testing.T) {
	dev := newFakeDevices()
	_, addr := startFront(t, dev)
	c := newRawClient(t, addr)
	if r := c.do(c.request(message.Confirmable, codes.GET, "/things/t/properties/temp", nil)); r.Code != codes.NotFound {
		t.Fatalf("before any value: %v", r.Code)
	}
	dev.Send(t.Context(), "t", []json.RawMessage{json.RawMessage(`{"temp":21.5,"hum":40}`)})
	r := c.do(c.request(message.Confirmable, codes.GET, "/things/t/properties/temp", nil))
	if r.Code != codes.Content || string(r.Payload) != "21.5" {
		t.Fatalf("temp: %v %s", r.Code, r.Payload)
	}
	if r := c.do(c.request(message.Confirmable, codes.GET, "/things/t/properties/wind", nil)); r.Code != codes.NotFound {
		t.Fatalf("absent property: %v", r.Code)
	}
	reg := c.request(message.Confirmable, codes.GET, "/things/t/properties/hum", nil, uintOpt(message.Observe, 0))
	if r := c.do(reg); string(r.Payload) != "40" {
		t.Fatalf("observe hum: %s", r.Payload)
	}
	eventually(t, "the subscription", func() bool { return dev.subscribers("t") == 1 })
	dev.Send(t.Context(), "t", []json.RawMessage{json.RawMessage(`{"temp":1}`), json.RawMessage(`{"hum":41}`)})
	n := c.read(10 * time.Second)
	if n == nil || string(n.Payload) != "41" {
		t.Fatalf("want a notification of hum 41 only, got %v", n)
	}
}

// TestBadRequests: unknown critical options, wrong methods and paths,
// proxying, and Devices' own refusals get their codes, and store nothing.
func TestBadRequests(t *testing.T) {
	dev := newFakeDevices()
	_, addr := startFront(t, dev)
	c := newRawClient(t, addr)
	cases := []struct {
		name string
		req  *message.Message
		code codes.Code
	}{
		{"If-Match", c.request(message.Confirmable, codes.POST, "/object/t/send", []byte("1"), jsonCF(), message.Option{ID: message.IfMatch}), codes.BadOption},
		{"critical 9", c.request(message.Confirmable, codes.POST, "/object/t/send", []byte("1"), jsonCF(), message.Option{ID: 9, Value: []byte("x")}), codes.BadOption},
		{"Proxy-Uri", c.request(message.Confirmable, codes.GET, "/x", nil, message.Option{ID: message.ProxyURI, Value: []byte("coap://a/b")}), codes.ProxyingNotSupported},
		{"PUT", c.request(message.Confirmable, codes.PUT, "/object/t/send", []byte("1"), jsonCF()), codes.MethodNotAllowed},
		{"DELETE viewer", c.request(message.Confirmable, codes.DELETE, "/object/t/viewer", nil), codes.MethodNotAllowed},
		{"empty id", c.request(message.Confirmable, codes.POST, "/object//send", []byte("1"), jsonCF()), codes.NotFound},
		{"unknown path", c.request(message.NonConfirmable, codes.GET, "/api/v1/records", nil), codes.NotFound},
		{"no Thing", c.request(message.Confirmable, codes.GET, "/things/none", nil), codes.NotFound},
		{"refused id", c.request(message.Confirmable, codes.POST, "/object/bad/send", []byte("1"), jsonCF()), codes.BadRequest},
		{"empty body", c.request(message.Confirmable, codes.POST, "/object/t/send", nil, jsonCF()), codes.BadRequest},
		{"empty batch", c.request(message.Confirmable, codes.POST, "/object/t/send", []byte(" [] "), jsonCF()), codes.BadRequest},
		{"Block1 of 4 bytes", c.request(message.Confirmable, codes.POST, "/object/t/send", []byte("1"), jsonCF(), message.Option{ID: message.Block1, Value: []byte{0, 0, 0, 8}}), codes.BadOption},
		{"Uri-Path of 256 bytes", c.request(message.Confirmable, codes.GET, "/things/"+strings.Repeat("x", 256), nil), codes.BadOption},
		{"block past the end", c.request(message.Confirmable, codes.GET, "/.well-known/core", nil, uintOpt(message.Block2, block{num: 50, szx: 0}.value())), codes.BadOption},
		{"BERT", c.request(message.Confirmable, codes.POST, "/object/t/send", []byte("1"), jsonCF(), uintOpt(message.Block1, 7)), codes.BadOption},
	}
	for _, tc := range cases {
		r := c.do(tc.req)
		if r.Code != tc.code {
			t.Errorf("%s: %v %s, want %v", tc.name, r.Code, r.Payload, tc.code)
		}
		if tc.req.Type == message.NonConfirmable && r.Type != message.NonConfirmable {
			t.Errorf("%s: a NON request answered with %v", tc.name, r.Type)
		}
	}
	if n := len(dev.readings("t")) + len(dev.readings("bad")); n != 0 {
		t.Fatalf("bad requests stored %d readings", n)
	}
	// Elective options it does not know, or of an illegal length, are ignored.
	r := c.do(c.request(message.Confirmable, codes.POST, "/object/t/send", []byte("1"), jsonCF(), message.Option{ID: 65000, Value: []byte("x")},
		message.Option{ID: message.Size1, Value: []byte{1, 2, 3, 4, 5}}))
	if r.Code != codes.Created {
		t.Fatalf("an unknown elective option: %v", r.Code)
	}
}

// TestPresence: a device that posts is present until PresenceIdle passes.
func TestPresence(t *testing.T) {
	dev := newFakeDevices()
	_, addr := startFront(t, dev, func(c *Config) { c.PresenceIdle = 3 * time.Second })
	c := newRawClient(t, addr)
	for range 3 {
		c.do(c.request(message.Confirmable, codes.POST, "/object/p/send", []byte("1"), jsonCF()))
	}
	if n := dev.presentCount("p"); n != 1 {
		t.Fatalf("present %d times, want once", n)
	}
	eventually(t, "presence to be released", func() bool { return dev.presentCount("p") == 0 })
}

// TestBusy: beyond MaxInflight requests waiting on Devices, 5.03 with
// Max-Age.
func TestBusy(t *testing.T) {
	dev := newFakeDevices()
	dev.sendDelay = 2 * time.Second
	_, addr := startFront(t, dev, func(c *Config) { c.MaxInflight = 1 })
	c := newRawClient(t, addr)
	c.write(c.request(message.NonConfirmable, codes.POST, "/object/t/send", []byte("1"), jsonCF()))
	eventually(t, "the first Send to start", func() bool { return dev.started.Load() == 1 })
	r := c.do(c.request(message.Confirmable, codes.POST, "/object/t/send", []byte("2"), jsonCF()))
	if age, _ := uintOption(r, message.MaxAge); r.Code != codes.ServiceUnavailable || age == 0 {
		t.Fatalf("over MaxInflight: %v, Max-Age %d", r.Code, age)
	}
}

// TestBlock2OfPostResponse: a batch whose receipts exceed the client's
// Block2 size is answered block-wise, and its next blocks come from the
// cache (the POST is not run again).
func TestBlock2OfPostResponse(t *testing.T) {
	dev := newFakeDevices()
	_, addr := startFront(t, dev)
	c := newRawClient(t, addr)
	batch := []byte(`[1,2,3,4,5,6,7,8,9,10]`)
	r := c.do(c.request(message.Confirmable, codes.POST, "/object/t/send", batch, jsonCF(), uintOpt(message.Block2, block{szx: 4}.value())))
	var body []byte
	for num := uint32(1); ; num++ {
		if r.Code != codes.Created {
			t.Fatalf("block %d: %v %s", num-1, r.Code, r.Payload)
		}
		body = append(body, r.Payload...)
		v, _ := uintOption(r, message.Block2)
		if v&8 == 0 {
			break
		}
		r = c.do(c.request(message.Confirmable, codes.POST, "/object/t/send", nil, uintOpt(message.Block2, block{num: num, szx: 4}.value())))
	}
	var receipts []json.RawMessage
	if err := json.Unmarshal(body, &receipts); err != nil || len(receipts) != 10 {
		t.Fatalf("reassembled %d bytes: %v", len(body), err)
	}
	if n := len(dev.readings("t")); n != 10 {
		t.Fatalf("stored %d readings, want 10", n)
	}
}

// TestNoResponseAndAccept: No-Response (RFC 7967) suppresses the responses
// the client does not want (a CON still gets its empty ACK), and an Accept
// the resource cannot meet gets 4.06.
func TestNoResponseAndAccept(t *testing.T) {
	dev := newFakeDevices()
	_, addr := startFront(t, dev)
	c := newRawClient(t, addr)
	noSuccess := uintOpt(message.NoResponse, 2)
	c.write(c.request(message.NonConfirmable, codes.POST, "/object/t/send", []byte("1"), jsonCF(), noSuccess))
	eventually(t, "the reading", func() bool { return len(dev.readings("t")) == 1 })
	if r := c.read(300 * time.Millisecond); r != nil {
		t.Fatalf("a NON with No-Response 2 was answered: %v", r)
	}
	req := c.request(message.Confirmable, codes.POST, "/object/t/send", []byte("2"), jsonCF(), noSuccess)
	if r := c.do(req); r.Type != message.Acknowledgement || r.Code != codes.Empty {
		t.Fatalf("a CON with No-Response 2: %v, want an empty ACK", r)
	}
	// Errors still come unless suppressed too.
	if r := c.do(c.request(message.NonConfirmable, codes.POST, "/object/t/send", []byte("{"), jsonCF(), noSuccess)); r.Code != codes.BadRequest {
		t.Fatalf("an error with No-Response 2: %v", r.Code)
	}
	if r := c.do(c.request(message.Confirmable, codes.GET, "/.well-known/core", nil, uintOpt(message.Accept, uint32(cfJSON)))); r.Code != codes.NotAcceptable {
		t.Fatalf("Accept JSON for link-format: %v", r.Code)
	}
	if r := c.do(c.request(message.Confirmable, codes.GET, "/.well-known/core", nil, uintOpt(message.Accept, uint32(cfLinkFormat)))); r.Code != codes.Content {
		t.Fatalf("Accept link-format: %v", r.Code)
	}
}

// TestObserverGoneUnacked: an observer that never acknowledges a
// confirmable notification is dropped once its retransmissions run out.
func TestObserverGoneUnacked(t *testing.T) {
	dev := newFakeDevices()
	_, addr := startFront(t, dev, func(c *Config) { c.AckTimeout = 50 * time.Millisecond; c.MaxRetransmit = 1 })
	c := newRawClient(t, addr)
	c.do(c.request(message.NonConfirmable, codes.GET, "/object/t/viewer", nil, uintOpt(message.Observe, 0)))
	eventually(t, "the subscription", func() bool { return dev.subscribers("t") == 1 })
	for i := range conEvery {
		dev.Send(t.Context(), "t", []json.RawMessage{json.RawMessage(strconv.Itoa(i))})
	}
	eventually(t, "the observer to be dropped", func() bool { return dev.subscribers("t") == 0 })
}

// TestBounds: a source gets at most observersPerSource observations (the
// next registration is answered without Observe) and uploadsPerSource
// uploads at once (the next gets 5.03); a new source beyond MaxSources
// makes the longest silent one without observers forgotten.
func TestBounds(t *testing.T) {
	dev := newFakeDevices()
	srv, addr := startFront(t, dev, func(c *Config) { c.MaxSources = 2 })
	c := newRawClient(t, addr)
	for i := 0; i <= observersPerSource; i++ {
		r := c.do(c.request(message.Confirmable, codes.GET, "/object/t/viewer", nil, uintOpt(message.Observe, 0)))
		if _, obs := uintOption(r, message.Observe); obs != (i < observersPerSource) || r.Code != codes.Content {
			t.Fatalf("registration %d: %v, Observe %v", i, r.Code, obs)
		}
	}
	for i := 0; i <= uploadsPerSource; i++ {
		r := c.do(c.request(message.Confirmable, codes.POST, "/object/t/send", bytes.Repeat([]byte("1"), 16), jsonCF(),
			uintOpt(message.Block1, block{more: true}.value()), message.Option{ID: optRequestTag, Value: []byte{byte(i)}}))
		want := codes.Continue
		if i == uploadsPerSource {
			want = codes.ServiceUnavailable
		}
		if r.Code != want {
			t.Fatalf("upload %d: %v, want %v", i, r.Code, want)
		}
	}
	// Two more sources: the second evicts the first of them (the observer's
	// source stays).
	for range 2 {
		o := newRawClient(t, addr)
		o.do(o.request(message.Confirmable, codes.GET, "/.well-known/core", nil))
	}
	srv.mu.Lock()
	n, kept := len(srv.sources), srv.sources[Source{Addr: netip.MustParseAddrPort(c.c.LocalAddr().String())}] != nil
	srv.mu.Unlock()
	if n != 2 || !kept {
		t.Fatalf("%d sources kept (the observer's: %v), want 2 with it", n, kept)
	}
}

// TestQuietObserverChecked: an observer of a quiet Thing gets its last value
// again, confirmable, after ObserveCheck; acknowledged, it stays; never
// acknowledged, it is dropped.
func TestQuietObserverChecked(t *testing.T) {
	dev := newFakeDevices()
	_, addr := startFront(t, dev, func(c *Config) {
		c.ObserveCheck = 300 * time.Millisecond
		c.AckTimeout = 100 * time.Millisecond
		c.MaxRetransmit = 1
	})
	dev.Send(t.Context(), "q", []json.RawMessage{json.RawMessage(`{"v":7}`)})
	c := newRawClient(t, addr)
	c.do(c.request(message.Confirmable, codes.GET, "/object/q/viewer", nil, uintOpt(message.Observe, 0)))
	check := c.read(10 * time.Second)
	if check == nil || check.Type != message.Confirmable || !strings.Contains(string(check.Payload), `"v":7`) {
		t.Fatalf("want a confirmable check with the last value, got %v", check)
	}
	b, _ := encode(&message.Message{Type: message.Acknowledgement, Code: codes.Empty, MessageID: check.MessageID})
	c.writeRaw(b)
	if dev.subscribers("q") != 1 {
		t.Fatal("an acknowledged check dropped the observer")
	}
	// The next check goes unanswered.
	eventually(t, "the silent observer to be dropped", func() bool { return dev.subscribers("q") == 0 })
}

// TestNonPostsStoredInOrder: a device that sends readings without waiting
// for their responses (NON) has them stored in the order it sent them, even
// when the first takes longer to store.
func TestNonPostsStoredInOrder(t *testing.T) {
	dev := newFakeDevices()
	_, addr := startFront(t, dev)
	c := newRawClient(t, addr)
	sent := []string{`"slow 1"`, `"2"`, `"3"`, `"slow 4"`, `"5"`}
	for _, v := range sent {
		c.write(c.request(message.NonConfirmable, codes.POST, "/object/t/send", []byte(v), jsonCF()))
	}
	eventually(t, "the readings", func() bool { return len(dev.readings("t")) == len(sent) })
	for i, got := range dev.readings("t") {
		if string(got) != sent[i] {
			t.Fatalf("reading %d stored is %s, want %s (all: %q)", i, got, sent[i], dev.readings("t"))
		}
	}
}
