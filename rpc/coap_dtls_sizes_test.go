package rpc

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestCoAPSSendEverySize sends one-way messages of every size around the
// datagram and block limits over a DTLS session: each must arrive. (Bodies of
// 1,070-1,270 bytes once went as non-confirmable block-wise uploads and were
// lost without a trace; a 16-node coaps ring then never converged.)
func TestCoAPSSendEverySize(t *testing.T) {
	net := newTestNetwork(t, "test")
	ma, mb := net.admit(t), net.admit(t)
	var ra, rb recorder
	a := startCoAPS(t, ma, ra.handle)
	b := startCoAPS(t, mb, rb.handle)
	sizes := []int{10}
	for s := 600; s <= 1700; s += 25 {
		sizes = append(sizes, s)
	}
	sizes = append(sizes, 4000)
	for i, size := range sizes {
		env := &Envelope{Type: TypeNotifyStabilize, ID: uint64(i + 1), From: a.self, To: b.self,
			Payload: json.RawMessage(`"` + strings.Repeat("y", size) + `"`)}
		if err := a.Send(ctxTimeout(t, 10*time.Second), b.Addr(), env); err != nil {
			t.Fatalf("payload %d: %v", size, err)
		}
		if !eventually(func() (ok bool) { _, ok = rb.onewayFrom(env.ID); return ok }) {
			t.Errorf("payload %d: the one-way message never arrived", size)
		}
	}
}
