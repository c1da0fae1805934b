package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
	"github.com/flownode/flownode/store"
)

func httpGet(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// flipData rewrites raw Badger entries as an attacker with the disk would: one byte of
// the reading's data changes in every entry under prefix that holds the record.
func flipData(t *testing.T, db *badger.DB, prefix byte, rec []byte) int {
	t.Helper()
	at := bytes.Index(rec, []byte(`"data":{"v":`)) + len(`"data":{"v":`)
	changed := append([]byte(nil), rec...)
	changed[at] = '9'
	n := 0
	err := db.Update(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefix}, PrefetchValues: true})
		var keys [][]byte
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				it.Close()
				return err
			}
			if bytes.Equal(v, rec) {
				keys = append(keys, it.Item().KeyCopy(nil))
			}
		}
		it.Close()
		for _, k := range keys {
			if err := txn.Set(k, changed); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("tamper %c entries: %d changed, %v", prefix, n, err)
	}
	return n
}

// TestTamperedRecordIsNeverServed: a running node whose stored record was altered
// answers 500 naming the record, its key, Thing, block and store entry on every path
// that reads it — by txID, by key, by Thing — counts it and never serves the altered
// bytes; an untouched record still comes back byte-identical. verify names it too.
func TestTamperedRecordIsNeverServed(t *testing.T) {
	n, err := node.Open(node.Config{DataDir: t.TempDir(), Profile: node.LocalProfile()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	srv := httptest.NewServer(NewServer(n, nil, nil))
	defer srv.Close()
	rcs, err := n.Put(context.Background(), []ledger.Reading{
		{Thing: "meter-1", Data: []byte(`{"v":1}`)},
		{Thing: "meter-2", Data: []byte(`{"v":2}`)},
	}, node.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bad, good := rcs[0], rcs[1]
	if rep, err := n.Verify(context.Background()); err != nil || !rep.Valid {
		t.Fatalf("before: %+v %v", rep, err)
	}
	db := n.Ledger().Store().Raw()
	flipData(t, db, store.PrefixRecord, bad.Record)

	wantTampered := func(what, url string) {
		t.Helper()
		code, body := httpGet(t, url)
		var e ErrorBody
		if code != http.StatusInternalServerError || json.Unmarshal(body, &e) != nil {
			t.Fatalf("%s: %d %s, want 500", what, code, body)
		}
		want := fmt.Sprintf("record %s (key %s, thing meter-1, block %s/%d) in the store no longer verifies: ", bad.TxID, bad.Key, bad.Block.Branch, bad.Block.No)
		if !strings.HasPrefix(e.Error, want) || !strings.Contains(e.Error, "signature") || !strings.Contains(e.Error, "store entry ") {
			t.Fatalf("%s: error %q, want it to start %q and name the signature and store entry", what, e.Error, want)
		}
		if bytes.Contains(body, []byte(`"v":9`)) {
			t.Fatalf("%s: the altered bytes were served: %s", what, body)
		}
		t.Logf("%s: %s", what, e.Error)
	}
	wantTampered("by txID", srv.URL+"/api/v1/records/"+bad.TxID.String())
	wantTampered("by txID, local", srv.URL+"/api/v1/records/"+bad.TxID.String()+"?local=1")
	wantTampered("by key", srv.URL+"/api/v1/keys/"+bad.Key.String())
	wantTampered("by block", fmt.Sprintf("%s/api/v1/blocks/%s/%d/records", srv.URL, bad.Block.Branch, bad.Block.No))
	if _, err := n.LocalRecordsByThing("meter-1", 0, 0, 0); err == nil {
		t.Fatal("LocalRecordsByThing served the altered record")
	}

	// The Thing's history serves copies kept under other entries: untouched, they
	// still verify; altered too, they are refused the same way.
	if code, body := httpGet(t, srv.URL+"/api/v1/things/meter-1/records"); code != 200 || !bytes.Contains(body, bad.Record) {
		t.Fatalf("history with untouched copies: %d %s", code, body)
	}
	flipData(t, db, store.PrefixHistory, bad.Record)
	wantTampered("by Thing", srv.URL+"/api/v1/things/meter-1/records")

	// The untouched record comes back byte-identical.
	if code, body := httpGet(t, srv.URL+"/api/v1/records/"+good.TxID.String()); code != 200 || !bytes.Equal(body, good.Record) {
		t.Fatalf("untouched record: %d %s, want its stored bytes", code, body)
	}
	if code, body := httpGet(t, srv.URL+"/api/v1/things/meter-2/records"); code != 200 || !bytes.Contains(body, good.Record) {
		t.Fatalf("untouched Thing: %d %s", code, body)
	}

	_, metrics := httpGet(t, srv.URL+"/metrics")
	m := regexp.MustCompile(`(?m)^flownode_tampered_records_total (\d+)$`).FindSubmatch(metrics)
	if m == nil || string(m[1]) == "0" {
		t.Fatalf("flownode_tampered_records_total: %q", m)
	}

	code, body := httpGet(t, srv.URL+"/api/v1/verify")
	var rep ledger.Report
	if code != 200 || json.Unmarshal(body, &rep) != nil || rep.Valid || rep.Mode != ledger.ModeIncremental ||
		rep.Location == nil || rep.Location.Record != bad.TxID.String() || rep.Location.Thing != "meter-1" || rep.Location.File == "" {
		t.Fatalf("verify: %d %s", code, body)
	}
}

// TestVerifyModes: the default resumes from the last verification that passed,
// full=1 reads everything, anything else is refused.
func TestVerifyModes(t *testing.T) {
	n, err := node.Open(node.Config{DataDir: t.TempDir(), Profile: node.LocalProfile()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	srv := httptest.NewServer(NewServer(n, nil, nil))
	defer srv.Close()
	put := func(thing string) {
		if _, err := n.Put(context.Background(), []ledger.Reading{{Thing: thing, Data: []byte(`1`)}}, node.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	verify := func(query string) ledger.Report {
		t.Helper()
		code, body := httpGet(t, srv.URL+"/api/v1/verify"+query)
		var rep ledger.Report
		if code != 200 || json.Unmarshal(body, &rep) != nil || !rep.Valid {
			t.Fatalf("verify%s: %d %s", query, code, body)
		}
		return rep
	}
	put("a")
	if rep := verify(""); rep.Mode != ledger.ModeFull || rep.Fallback == "" {
		t.Fatalf("first: %+v", rep)
	}
	put("b")
	put("c")
	rep := verify("")
	if rep.Mode != ledger.ModeIncremental || rep.CheckedRecords != 2 || rep.Records != 3 || rep.Since == 0 {
		t.Fatalf("second: %+v", rep)
	}
	if rep := verify("?full=1"); rep.Mode != ledger.ModeFull || rep.Fallback != "" || rep.Records != 3 {
		t.Fatalf("full: %+v", rep)
	}
	if code, body := httpGet(t, srv.URL+"/api/v1/verify?full=maybe"); code != http.StatusBadRequest {
		t.Fatalf("full=maybe: %d %s", code, body)
	}
}
