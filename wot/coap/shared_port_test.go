package coap

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
	"github.com/flownode/flownode/rpc"
)

// peerAuth admits a new member to a test network and returns its ID (hex)
// and its rpc.Auth.
func peerAuth(t *testing.T, a *network.Authority) (string, *rpc.Auth) {
	t.Helper()
	id, err := ledger.GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := a.Admit(id.Public, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := network.NewMembers(a.Description, mem, "")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ms.Certificate(id)
	if err != nil {
		t.Fatal(err)
	}
	return id.ID.Hex(), &rpc.Auth{Certificate: cert, Verify: ms.Verify}
}

// TestSharedPortWithDTLSPeers: the node's real CoAP transport, which speaks
// DTLS to its peers, hands the devices' plain CoAP to the front on the same
// UDP port: libcoap posts a block-wise reading and lists the resources
// while a peer calls over DTLS on that port.
func TestSharedPortWithDTLSPeers(t *testing.T) {
	clientPath(t)
	authority, err := network.NewAuthority("coap-front-test", ledger.MiningParams{Rate: 20, MeanBlockTime: time.Second, Variance: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	idA, authA := peerAuth(t, authority)
	idB, authB := peerAuth(t, authority)
	dev := newFakeDevices()
	front, err := New(Config{Devices: dev})
	if err != nil {
		t.Fatal(err)
	}
	defer front.Close()
	echo := func(ctx context.Context, env *rpc.Envelope) *rpc.Envelope {
		return &rpc.Envelope{Type: rpc.TypeFoundSuccessor, Payload: env.Payload}
	}
	a, err := rpc.NewCoAP(rpc.CoAPConfig{Self: rpc.Peer{ID: idA}, Listen: "127.0.0.1:0", Auth: authA, Handler: echo, Plain: front.Datagram})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := rpc.NewCoAP(rpc.CoAPConfig{Self: rpc.Peer{ID: idB}, Listen: "127.0.0.1:0", Auth: authB, Handler: echo})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	port := strings.TrimPrefix(a.Addr(), rpc.SchemeCoAPS+"://")

	// A peer over DTLS.
	call := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		env := &rpc.Envelope{Type: rpc.TypeFindSuccessor, ID: 7, From: rpc.Peer{ID: idB, Addr: b.Addr()},
			To: rpc.Peer{ID: idA, Addr: a.Addr()}, Key: strings.Repeat("0", 40), Payload: json.RawMessage(`"over dtls"`)}
		reply, err := b.Call(ctx, a.Addr(), env)
		if err != nil || string(reply.Payload) != `"over dtls"` {
			t.Fatalf("peer call over DTLS: %v %v", reply, err)
		}
	}
	call()
	// A device over plain CoAP, on the same port.
	reading := `{"pad":"` + strings.Repeat("x", 1990) + `"}`
	out, errs := coapClient(t, "-m", "post", "-t", "50", "-b", "64", "-e", reading, "coap://"+port+"/object/dev/send")
	if !strings.Contains(out, `"txID"`) {
		t.Fatalf("libcoap POST on the shared port: %q %q", out, errs)
	}
	if got := dev.readings("dev"); len(got) != 1 || string(got[0]) != reading {
		t.Fatalf("stored %d readings, want the one posted whole", len(got))
	}
	out, _ = coapClient(t, "-m", "get", "coap://"+port+"/.well-known/core")
	if !strings.Contains(out, "</object/dev/viewer>") {
		t.Fatalf("/.well-known/core on the shared port: %q", out)
	}
	call()
}
