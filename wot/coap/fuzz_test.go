package coap

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
)

// FuzzDatagram feeds arbitrary datagrams to the front, as any source on the
// network can: nothing may panic, and whatever it answers must decode.
func FuzzDatagram(f *testing.F) {
	c := &rawClient{t: f}
	seeds := []*message.Message{
		c.request(message.Confirmable, codes.POST, "/object/t/send", []byte(`{"a":1}`), jsonCF()),
		c.request(message.NonConfirmable, codes.POST, "/object/t/send", []byte(`[1,2]`), jsonCF(),
			uintOpt(message.Block1, block{num: 0, more: true, szx: 0}.value()), message.Option{ID: optRequestTag, Value: []byte{1}}),
		c.request(message.Confirmable, codes.GET, "/object/t/viewer", nil, uintOpt(message.Observe, 0)),
		c.request(message.Confirmable, codes.GET, "/.well-known/core", nil, uintOpt(message.Block2, block{num: 1, szx: 0}.value())),
		c.request(message.Confirmable, codes.GET, "/things/t/properties/v", nil, uintOpt(message.Accept, 50)),
	}
	for _, m := range seeds {
		b, err := encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x40, 0, 0, 1})
	f.Add([]byte{0x70, 0, 0, 1})
	dev := newFakeDevices()
	dev.tds["t"] = []byte(`{"title":"t"}`)
	srv, err := New(Config{Devices: dev, Workers: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(srv.Close)
	from := netip.MustParseAddrPort("192.0.2.1:5683")
	// Answers may come later, from the front's goroutines: they are checked
	// here, and reported by the next run.
	var bad atomic.Pointer[string]
	reply := func(b []byte) error {
		if _, err := decode(append([]byte(nil), b...)); err != nil {
			msg := fmt.Sprintf("the front sent an undecodable datagram %x: %v", b, err)
			bad.Store(&msg)
		}
		return nil
	}
	f.Fuzz(func(t *testing.T, dgram []byte) {
		srv.handle(datagram{b: append([]byte(nil), dgram...), from: Source{Addr: from}, reply: reply})
		if msg := bad.Load(); msg != nil {
			t.Fatal(*msg)
		}
	})
}
