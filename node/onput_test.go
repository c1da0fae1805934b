package node

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/flownode/flownode/ledger"
)

// TestOnPut: the entry hooks see each successful Put's receipts, in order,
// with the signed records, before Put returns; the records stay out of the
// receipts' JSON; a refused Put is not reported.
func TestOnPut(t *testing.T) {
	n, err := Open(Config{DataDir: t.TempDir(), Profile: LocalProfile(), Advertise: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	var seen [][]Receipt
	n.OnPut(func(rcs []Receipt) { seen = append(seen, rcs) })
	ctx := context.Background()
	rcs, err := n.Put(ctx, []ledger.Reading{{Thing: "t1", Data: []byte(`1`)}, {Thing: "t2", Data: []byte(`2`)}}, PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || len(seen[0]) != 2 {
		t.Fatalf("hook calls %v", seen)
	}
	for i, rc := range seen[0] {
		r, err := ledger.ParseRecord(rc.Record)
		if err != nil || r.TxID != rcs[i].TxID || r.CheckSelf(rc.Record) != nil {
			t.Fatalf("receipt %d: record %s: %v", i, rc.Record, err)
		}
	}
	b, _ := json.Marshal(rcs[0])
	var m map[string]any
	json.Unmarshal(b, &m)
	if _, ok := m["Record"]; ok || len(m) != 5 {
		t.Fatalf("receipt JSON %s", b)
	}
	if _, err := n.Put(ctx, []ledger.Reading{{Thing: "bad id", Data: []byte(`1`)}}, PutOptions{}); err == nil {
		t.Fatal("bad Thing ID stored")
	}
	if len(seen) != 1 {
		t.Fatalf("a refused put was reported: %d calls", len(seen))
	}
}
