package ringledger

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/store"
)

// TestTamperedCopyIsNotServed: a holder whose stored copy of a record was altered
// answers neither its clients nor its peers with it — a *ledger.TamperedError naming
// the record instead, counted — while the other holders still serve the record
// byte for byte.
func TestTamperedCopyIsNotServed(t *testing.T) {
	r := newStaticRing(t, 3) // k = 3: every node holds the record
	ctx := context.Background()
	rcs, err := r.nodes[r.ids[0]].Put(ctx, []ledger.Reading{{Thing: "meter", Data: []byte(`{"v":1}`)}}, PutOptions{WaitReplicas: true})
	if err != nil {
		t.Fatal(err)
	}
	rc := rcs[0]
	bad, good := r.nodes[r.ids[1]], r.nodes[r.ids[2]]
	altered := bytes.Replace(rc.Record, []byte(`"v":1`), []byte(`"v":2`), 1)
	if err := bad.store.Raw().Update(func(txn *badger.Txn) error { return txn.Set(store.RecordKey(rc.TxID), altered) }); err != nil {
		t.Fatal(err)
	}
	wantTampered := func(what string, err error) {
		t.Helper()
		var te *ledger.TamperedError
		if !errors.As(err, &te) || te.Location.Record != rc.TxID.String() || te.Location.Thing != "meter" || te.Location.Key != rc.Key.String() {
			t.Fatalf("%s: %v, want a TamperedError naming the record", what, err)
		}
	}
	_, err = bad.LocalRecord(rc.TxID)
	wantTampered("LocalRecord", err)
	_, err = bad.Record(ctx, rc.TxID)
	wantTampered("Record", err)
	_, err = bad.handleGet(getBody{TxID: &rc.TxID})
	wantTampered("a peer's get by txID", err)
	_, err = bad.handleGet(getBody{Key: &rc.Key})
	wantTampered("a peer's get by key", err)
	_, err = bad.handleFetch(fetchBody{TxIDs: []ledger.Hash{rc.TxID}})
	wantTampered("a peer's fetch", err)
	if n := bad.Stats().Tampered; n < 5 {
		t.Fatalf("Tampered = %d, want a count for each refused read", n)
	}
	raw, err := good.Record(ctx, rc.TxID)
	if err != nil || !bytes.Equal(raw, rc.Record) {
		t.Fatalf("the untouched holder: %v, %s", err, raw)
	}
	if good.Stats().Tampered != 0 {
		t.Fatal("the untouched holder counted tampering")
	}
}
