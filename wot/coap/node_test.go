package coap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
	"github.com/flownode/flownode/wot"
)

// nodeDevices is a Devices whose Send is the node's durable Put, for the
// tests and benchmarks that go through a real node: the rest of the Web of
// Things layer is not needed there.
type nodeDevices struct {
	n      *node.Node
	stored atomic.Int64 // readings Put returned receipts for: durable
}

func (d *nodeDevices) Send(ctx context.Context, thing string, values []json.RawMessage) ([]node.Receipt, error) {
	rs := make([]ledger.Reading, len(values))
	for i, v := range values {
		rs[i] = ledger.Reading{Thing: thing, Data: v}
	}
	receipts, err := d.n.Put(ctx, rs, node.PutOptions{})
	d.stored.Add(int64(len(receipts)))
	return receipts, err
}

func (*nodeDevices) Subscribe(string) (wot.Subscription, error) {
	return nil, errors.New("no subscriptions in this test")
}
func (*nodeDevices) Latest(context.Context, string) (wot.Update, error) {
	return wot.Update{}, wot.ErrNoValue
}
func (*nodeDevices) ThingTD(context.Context, string) ([]byte, error) { return nil, wot.ErrNoThing }
func (*nodeDevices) DirectoryTD() []byte                             { return []byte(`{}`) }
func (*nodeDevices) Present(string) func()                           { return func() {} }

// freeUDPPort returns a loopback UDP address that was free a moment ago.
func freeUDPPort(t testing.TB) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// startNode starts a one-node ring serving the front on its CoAP port
// (node.ServeDeviceCoAP) and returns the node, its Devices and that port.
func startNode(t testing.TB) (*node.Node, *nodeDevices, string) {
	t.Helper()
	coapAddr := freeUDPPort(t)
	ctx := context.Background()
	n, err := node.Start(ctx, node.Config{DataDir: t.TempDir(), Profile: node.LocalProfile(),
		Listen: "127.0.0.1:0", CoAPListen: coapAddr})
	if err != nil {
		t.Fatal(err)
	}
	dev := &nodeDevices{n: n}
	front, err := New(Config{Devices: dev})
	if err != nil {
		t.Fatal(err)
	}
	n.ServeDeviceCoAP(front.Datagram)
	t.Cleanup(func() {
		front.Close()
		stopCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = n.Stop(stopCtx)
	})
	return n, dev, coapAddr
}

// TestNodeServesDeviceCoAP: a started node hands the plain CoAP of its CoAP
// port to the front set with ServeDeviceCoAP; libcoap's block-wise reading
// becomes a durable record of the node.
func TestNodeServesDeviceCoAP(t *testing.T) {
	clientPath(t)
	n, _, addr := startNode(t)
	reading := fmt.Sprintf(`{"celsius":21.5,"pad":"%s"}`, strings.Repeat("x", 1970))
	out, errs := coapClient(t, "-m", "post", "-t", "50", "-b", "64", "-e", reading, "coap://"+addr+"/object/greenhouse/send")
	var receipt struct {
		TxID ledger.Hash `json:"txID"`
	}
	if err := json.Unmarshal([]byte(out), &receipt); err != nil {
		t.Fatalf("libcoap got %q %q", out, errs)
	}
	raw, err := n.Record(t.Context(), receipt.TxID)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := ledger.ParseRecord(raw)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Thing != "greenhouse" || string(rec.Data) != reading {
		t.Fatalf("record of %q with %d bytes of data, want the %d posted", rec.Thing, len(rec.Data), len(reading))
	}
}

// TestNodeRefusesBadReadings: a reading the node's ledger refuses (an invalid
// Thing id) gets 4.00 with the reason, and stores nothing.
func TestNodeRefusesBadReadings(t *testing.T) {
	_, dev, addr := startNode(t)
	c := newRawClient(t, addr)
	r := c.do(c.request(message.Confirmable, codes.POST, "/object/"+strings.Repeat("x", 201)+"/send", []byte("1"), jsonCF()))
	if r.Code != codes.BadRequest || len(r.Payload) == 0 {
		t.Fatalf("an invalid Thing id: %v %s", r.Code, r.Payload)
	}
	if dev.stored.Load() != 0 {
		t.Fatal("stored a refused reading")
	}
}
