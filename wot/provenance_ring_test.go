package wot

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/flownode/flownode/api"
	"github.com/flownode/flownode/ledger"
)

// signedBody is the HTTP put body of a reading of thing signed by priv (what
// flownode device sign prints), or unsigned when priv is nil.
func signedBody(tb testing.TB, priv ed25519.PrivateKey, thing, data string) []byte {
	tb.Helper()
	body := map[string]any{"thing": thing, "data": json.RawMessage(data)}
	if priv != nil {
		d, err := ledger.SignDevice(priv, thing, []byte(data))
		if err != nil {
			tb.Fatal(err)
		}
		body["device"] = d
	}
	b, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// forwardedData returns a reading of thing, signed by priv, whose key (derived
// from the signature) is owned by another node than entry: the owner's check
// is the one that counts, not the entry node's.
func forwardedData(tb testing.TB, entry *tdNode, priv ed25519.PrivateKey, thing, format string) string {
	tb.Helper()
	for i := 0; i < 1000; i++ {
		data := fmt.Sprintf(format, i)
		d, err := ledger.SignDevice(priv, thing, []byte(data))
		if err != nil {
			tb.Fatal(err)
		}
		_, key := ledger.DeviceStamp(thing, d.Sig)
		owner, err := entry.n.Owner(context.Background(), key)
		if err != nil {
			tb.Fatal(err)
		}
		if owner.ID != entry.n.ID() {
			return data
		}
	}
	tb.Fatal("no reading owned by another node")
	return ""
}

// TestDeviceSignedReadingsOnRing: a Thing whose TD declares a device key takes
// only readings signed by that key, checked by the node that owns each
// reading's key (readings enter through another node); the record keeps the
// device signature, and a copy fetched from a third node verifies offline with
// the device's public key alone. A Thing that declares no key refuses signed
// readings. Refused readings store nothing.
func TestDeviceSignedReadingsOnRing(t *testing.T) {
	r := startTDRing(t, 3)
	a, b, c := r.nodes[0], r.nodes[1], r.nodes[2]
	for _, tn := range r.nodes {
		tn.n.Handle("/api/", api.NewServer(tn.n, nil, nil))
		tn.n.Handle("/object/", tn.things.Handler())
	}
	dev := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	pub := dev.Public().(ed25519.PublicKey)
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	const thing = "meter-signed"

	// A TD with a malformed key is refused; one with the key is stored, and
	// served with the flownode prefix in its @context.
	td := func(key string) []byte {
		return []byte(`{"@context": "https://www.w3.org/2022/wot/td/v1.1", "title": "Meter", "securityDefinitions": {"nosec": {"scheme": "nosec"}}, "security": "nosec", "flownode:deviceKey": "` + key + `"}`)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("zz", 32), strings.ToUpper(hex.EncodeToString(pub))} {
		msg := requireError(t, call(t, "PUT", a.base+"/things/"+thing, ctTD, td(bad)), 400)
		if !strings.Contains(msg, "flownode:deviceKey") {
			t.Errorf("bad key %q: %s", bad, msg)
		}
	}
	if got := call(t, "PUT", a.base+"/things/"+thing, ctTD, td(hex.EncodeToString(pub))); got.code != 201 {
		t.Fatalf("PUT TD: %d %s", got.code, got.body)
	}
	served := getTD(t, b, thing)
	if served["flownode:deviceKey"] != hex.EncodeToString(pub) || !strings.Contains(fmt.Sprint(served["@context"]), tdNamespace) {
		t.Fatalf("served TD: key %v, @context %v", served["flownode:deviceKey"], served["@context"])
	}

	post := func(tn *tdNode, body []byte) answer {
		return call(t, "POST", tn.base+"/api/v1/records?wait=replicas", "application/json", body)
	}
	// An unsigned reading, sent with a key another node owns.
	unsignedKey := func() string {
		for i := 0; ; i++ {
			k := ledger.Key{byte(i), 1, 2, 3}
			if o, err := b.n.Owner(context.Background(), k); err == nil && o.ID != b.n.ID() {
				return k.String()
			}
		}
	}()
	unsigned := []byte(`{"thing":"` + thing + `","data":{"kWh":1},"key":"` + unsignedKey + `"}`)
	// Every owner learns the TD within deviceKeyFreshFor of a lookup; the first
	// refusal may take that long.
	eventually(t, 30*time.Second, "an unsigned reading refused", func() bool { return post(b, unsigned).code == 400 })
	if msg := requireError(t, post(b, unsigned), 400); !strings.Contains(msg, "must be signed by that device") {
		t.Errorf("unsigned: %s", msg)
	}
	good := forwardedData(t, b, dev, thing, `{"kWh": 12.5, "n": %d}`)
	var wrong map[string]any
	json.Unmarshal(signedBody(t, dev, thing, good), &wrong)
	wrong["data"] = json.RawMessage(`{"kWh": 99, "n": 0}`) // the signature of other data
	wrongBody, _ := json.Marshal(wrong)
	if msg := requireError(t, post(b, wrongBody), 400); !strings.Contains(msg, "device signature does not check") {
		t.Errorf("wrong signature: %s", msg)
	}
	if msg := requireError(t, post(b, signedBody(t, other, thing, good)), 400); !strings.Contains(msg, "signed by device key "+hex.EncodeToString(other.Public().(ed25519.PublicKey))) {
		t.Errorf("other device: %s", msg)
	}

	// The good one is stored with the device signature.
	ans := post(b, signedBody(t, dev, thing, good))
	var rc struct {
		TxID  ledger.Hash `json:"txID"`
		Owner struct{ ID string }
	}
	if ans.code != 201 || json.Unmarshal(ans.body, &rc) != nil {
		t.Fatalf("good reading: %d %s", ans.code, ans.body)
	}
	if rc.Owner.ID == b.n.ID().String() {
		t.Fatalf("the good reading was signed by its entry node; the test wants another owner")
	}
	// Fetched over HTTP from a node that did not sign it.
	fetchFrom := c
	if rc.Owner.ID == c.n.ID().String() {
		fetchFrom = a
	}
	got := call(t, "GET", fetchFrom.base+"/api/v1/records/"+rc.TxID.String(), "", nil)
	if got.code != 200 {
		t.Fatalf("GET record: %d %s", got.code, got.body)
	}
	raw := bytes.TrimSpace(got.body)
	rec, err := ledger.VerifyDevice(raw, pub)
	if err != nil {
		t.Fatalf("offline check of %s: %v", raw, err)
	}
	if want, _ := ledger.CanonicalData([]byte(good)); !bytes.Equal(rec.Data, want) {
		t.Errorf("record data %s for reading %s", rec.Data, good)
	}
	// The same signed reading sent again, to another node: the same record.
	again := post(c, signedBody(t, dev, thing, good))
	var rc2 struct {
		TxID ledger.Hash `json:"txID"`
	}
	if again.code != 201 || json.Unmarshal(again.body, &rc2) != nil || rc2.TxID != rc.TxID {
		t.Fatalf("replayed reading: %d %s, want the receipt of %s", again.code, again.body, rc.TxID)
	}

	// A device's WebSocket sends envelopes: a good one is stored, an
	// unsigned value is refused with an error frame.
	ws := dial(t, "ws://"+strings.TrimPrefix(a.base, "http://")+"/object/"+thing+"/send")
	frame := func(msg []byte) map[string]any {
		t.Helper()
		if err := ws.WriteMessage(websocket.TextMessage, msg); err != nil {
			t.Fatal(err)
		}
		ws.SetReadDeadline(time.Now().Add(60 * time.Second))
		_, reply, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(reply, &m); err != nil {
			t.Fatalf("reply %s: %v", reply, err)
		}
		return m
	}
	if m := frame([]byte(`{"kWh": 3}`)); !strings.Contains(fmt.Sprint(m["error"]), "must be signed by that device") {
		t.Errorf("unsigned WebSocket reading: %v", m)
	}
	d, _ := ledger.SignDevice(dev, thing, []byte(`{"kWh": 4, "n": "ws"}`))
	env, _ := json.Marshal(map[string]any{"data": json.RawMessage(`{"kWh": 4, "n": "ws"}`), "device": d})
	m := frame(env)
	wsTx, _ := m["txID"].(string)
	if wsTx == "" {
		t.Fatalf("signed WebSocket reading: %v", m)
	}
	got = call(t, "GET", c.base+"/api/v1/records/"+wsTx, "", nil)
	if _, err := ledger.VerifyDevice(bytes.TrimSpace(got.body), pub); err != nil {
		t.Fatalf("WebSocket record %s: %v", got.body, err)
	}

	// Send, which the CoAP front calls for POST /object/{id}/send: the same
	// envelopes and refusals (ErrBadInput: 4.00).
	if _, err := c.things.Send(context.Background(), thing, []json.RawMessage{json.RawMessage(`{"kWh": 5}`)}); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "must be signed by that device") {
		t.Errorf("unsigned Send: %v", err)
	}
	d, _ = ledger.SignDevice(dev, thing, []byte(`{"kWh": 6, "n": "coap"}`))
	env, _ = json.Marshal(map[string]any{"data": json.RawMessage(`{"kWh": 6, "n": "coap"}`), "device": d})
	rcs, err := c.things.Send(context.Background(), thing, []json.RawMessage{env})
	if err != nil {
		t.Fatalf("signed Send: %v", err)
	}
	got = call(t, "GET", a.base+"/api/v1/records/"+rcs[0].TxID.String(), "", nil)
	if _, err := ledger.VerifyDevice(bytes.TrimSpace(got.body), pub); err != nil {
		t.Fatalf("Send's record %s: %v", got.body, err)
	}

	// Only the three good readings are the Thing's records.
	eventually(t, 30*time.Second, "the Thing's history holds the three signed records", func() bool {
		recs, err := a.n.RecordsByThing(context.Background(), thing, 0, 0, 100)
		if err != nil || len(recs) != 3 {
			return false
		}
		for _, raw := range recs {
			if _, err := ledger.VerifyDevice(raw, pub); err != nil {
				t.Fatalf("history record %s: %v", raw, err)
			}
		}
		return true
	})

	// A Thing that declares no key refuses a signed reading, and stores an
	// unsigned one.
	plain := "meter-plain"
	if msg := requireError(t, post(a, signedBody(t, dev, plain, `{"kWh": 5}`)), 400); !strings.Contains(msg, "declares no device key") {
		t.Errorf("signed reading of a Thing without a key: %s", msg)
	}
	if got := post(a, signedBody(t, nil, plain, `{"kWh": 5}`)); got.code != 201 {
		t.Fatalf("unsigned reading of a Thing without a key: %d %s", got.code, got.body)
	}
}
