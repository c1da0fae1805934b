package wot

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flownode/flownode/node"
)

func send(t *testing.T, tn *testNode, thing, value string) node.Receipt {
	t.Helper()
	rcs, err := tn.t.Send(context.Background(), thing, []json.RawMessage{json.RawMessage(value)})
	if err != nil {
		t.Fatal(err)
	}
	return rcs[0]
}

// settled waits until tn has published every update of thing it queued
// (a publication is answered once forwarded): nothing of it is in flight.
func settled(t *testing.T, tn *testNode, thing string) {
	t.Helper()
	eventuallyNil(t, 30*time.Second, func() error {
		tn.t.live.pub.mu.Lock()
		defer tn.t.live.pub.mu.Unlock()
		if tn.t.live.pub.queues[thing] != nil {
			return fmt.Errorf("updates of %s still queued", thing)
		}
		return nil
	})
}

func putProperty(t *testing.T, tn *testNode, thing, name, ctype, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, tn.http("/things/"+thing+"/properties/"+name), strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	bufio.NewReader(resp.Body).WriteTo(&sb)
	return resp.StatusCode, sb.String()
}

// TestReadPropertyAfterWritesElsewhere: values written on node A are read
// on nodes B and C, the newest each time, with its txID.
func TestReadPropertyAfterWritesElsewhere(t *testing.T) {
	nodes := startRing(t, 3)
	a, b, c := nodes[0], nodes[1], nodes[2]
	send(t, a, "greenhouse-1", `{"celsius":20.5,"humidity":40}`)
	for i, tn := range []*testNode{b, c} {
		rc := send(t, a, "greenhouse-1", fmt.Sprintf(`{"celsius":%d.5,"humidity":41}`, 21+i))
		want := fmt.Sprintf("%d.5", 21+i)
		eventuallyNil(t, 30*time.Second, func() error {
			code, body, hdr := getBody(t, tn.http("/things/greenhouse-1/properties/celsius"), nil)
			if code != 200 || body != want || hdr.Get(TxIDHeader) != rc.TxID.String() || hdr.Get("ETag") != `"`+rc.TxID.String()+`"` {
				return fmt.Errorf("node %d: %d %s %s, want %s %s", i+1, code, body, hdr.Get(TxIDHeader), want, rc.TxID)
			}
			return nil
		})
	}
	// A Thing whose readings are bare values has one property, "value".
	// Read on another node: the Thing's newest value is found through its
	// history entries, which its owner writes just after the receipt.
	rc := send(t, a, "counter-1", `42`)
	eventuallyNil(t, 30*time.Second, func() error {
		code, body, hdr := getBody(t, b.http("/things/counter-1/properties/value"), nil)
		if code != 200 || body != "42" || hdr.Get(TxIDHeader) != rc.TxID.String() {
			return fmt.Errorf("bare value: %d %s", code, body)
		}
		return nil
	})
	// Written over HTTP on B, read on C.
	code, body := putProperty(t, b, "greenhouse-1", "celsius", "application/json", "25.25")
	var wrc node.Receipt
	if code != 201 || json.Unmarshal([]byte(body), &wrc) != nil || wrc.TxID.IsZero() {
		t.Fatalf("PUT: %d %s", code, body)
	}
	eventuallyNil(t, 30*time.Second, func() error {
		code, body, hdr := getBody(t, c.http("/things/greenhouse-1/properties/celsius"), nil)
		if code != 200 || body != "25.25" || hdr.Get(TxIDHeader) != wrc.TxID.String() {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	// The write was the reading {"celsius": 25.25}: humidity is not in it.
	if code, _, _ := getBody(t, c.http("/things/greenhouse-1/properties/humidity"), nil); code != 404 {
		t.Fatalf("humidity after a celsius write: %d, want 404", code)
	}
}

// TestPropertyBadInput: every bad request gets a clear error and changes
// nothing.
func TestPropertyBadInput(t *testing.T) {
	nodes := startRing(t, 1)
	a := nodes[0]
	rc := send(t, a, "pump-1", `{"rpm":1200}`)
	cases := []struct {
		method, path, ctype, body string
		code                      int
	}{
		{"GET", "/things/nobody/properties/rpm", "", "", 404},
		{"GET", "/things/pump-1/properties/nope", "", "", 404},
		{"GET", "/things/bad%20id/properties/rpm", "", "", 400},
		{"GET", "/things/nobody/properties/rpm/observable?timeout=1", "", "", 404},
		{"GET", "/things/pump-1/properties/rpm/observable?timeout=abc", "", "", 400},
		{"GET", "/things/pump-1/properties/rpm/observable?timeout=600", "", "", 400},
		{"PUT", "/things/pump-1/properties/rpm", "text/plain", "1300", 415},
		{"PUT", "/things/pump-1/properties/rpm", "application/json", "{bad", 400},
		{"PUT", "/things/pump-1/properties/rpm", "application/json", "null", 400},
		{"PUT", "/things/pump-1/properties/rpm", "application/json", "", 400},
		{"PUT", "/things/nobody/properties/rpm", "application/json", "1", 404},
		{"PUT", "/things/pump-1/properties/rpm", "application/json", `"` + strings.Repeat("x", maxValueBody) + `"`, 413},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, a.http(c.path), strings.NewReader(c.body))
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != c.code || e.Error == "" {
			t.Errorf("%s %s: %d %q, want %d with an error", c.method, c.path, resp.StatusCode, e.Error, c.code)
		}
	}
	code, body, hdr := getBody(t, a.http("/things/pump-1/properties/rpm"), nil)
	if code != 200 || body != "1200" || hdr.Get(TxIDHeader) != rc.TxID.String() {
		t.Fatalf("after bad input: %d %s", code, body)
	}
	if n := len(recordsOf(t, a, "pump-1")); n != 1 {
		t.Fatalf("%d records after bad input, want 1", n)
	}
}

// TestObservePropertySSE: a plain net/http client on node B follows a
// property over Server-Sent Events while node A writes it.
func TestObservePropertySSE(t *testing.T) {
	nodes := startRing(t, 3)
	a, b := nodes[0], nodes[1]
	send(t, a, "fan-1", `{"rpm":0}`)
	settled(t, a, "fan-1")
	req, _ := http.NewRequest(http.MethodGet, b.http("/things/fan-1/properties/rpm/observable"), nil)
	req.Header.Set("Accept", "text/event-stream")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := bufio.NewScanner(resp.Body)
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), ":") {
		t.Fatalf("first line %q, want a comment", lines.Text())
	}
	var txIDs []string
	for i := 1; i <= 5; i++ {
		// A reading without rpm is not an event of the property.
		send(t, a, "fan-1", `{"other":1}`)
		txIDs = append(txIDs, send(t, a, "fan-1", fmt.Sprintf(`{"rpm":%d}`, i*100)).TxID.String())
	}
	var id string
	for got := 0; got < 5 && lines.Scan(); {
		line := lines.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case line == "data: 0":
			// The first value, written before the stream opened, may
			// still have been on its way: a node cannot tell.
		case strings.HasPrefix(line, "data: "):
			want := fmt.Sprint((got + 1) * 100)
			if v := strings.TrimPrefix(line, "data: "); v != want || id != txIDs[got] {
				t.Fatalf("event %d: id %s data %s, want %s %s", got, id, v, txIDs[got], want)
			}
			got++
		}
	}
	if err := lines.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestObservePropertyLongPoll: no write within the timeout is 204; a write
// on another node answers a waiting poll with the value.
func TestObservePropertyLongPoll(t *testing.T) {
	nodes := startRing(t, 3)
	a, b := nodes[0], nodes[1]
	send(t, a, "valve-1", `{"open":false}`)
	settled(t, a, "valve-1")
	if code, _, _ := getBody(t, b.http("/things/valve-1/properties/open/observable?timeout=1"), nil); code != 204 {
		t.Fatalf("no write: %d, want 204", code)
	}
	type answer struct {
		code int
		body string
		txID string
	}
	done := make(chan answer, 1)
	go func() {
		code, body, hdr := getBody(t, b.http("/things/valve-1/properties/open/observable?timeout=60"), nil)
		done <- answer{code, body, hdr.Get(TxIDHeader)}
	}()
	eventuallyNil(t, 30*time.Second, func() error {
		if !b.t.live.hub.wants("valve-1") {
			return fmt.Errorf("poll not subscribed yet")
		}
		return nil
	})
	rc := send(t, a, "valve-1", `{"open":true}`)
	select {
	case ans := <-done:
		if ans.code != 200 || ans.body != "true" || ans.txID != rc.TxID.String() {
			t.Fatalf("poll: %+v, want 200 true %s", ans, rc.TxID)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("poll not answered")
	}
}
