package main

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/flownode/flownode/api"
	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/chord/chordtest"
	"github.com/flownode/flownode/ledger"
)

// get fetches a URL and returns the status and body.
func get(c *http.Client, url string) (int, []byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, body, err
}

func info(c *http.Client, n *node) (api.NodeInfo, error) {
	var in api.NodeInfo
	code, body, err := get(c, n.url+"/api/v1/node")
	if err != nil {
		return in, fmt.Errorf("%s: %v", n.name, err)
	}
	if code != http.StatusOK {
		return in, fmt.Errorf("%s: GET /api/v1/node answered %d", n.name, code)
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return in, fmt.Errorf("%s: /api/v1/node: %v", n.name, err)
	}
	return in, nil
}

// idealErr says why the live nodes, each asked for its own state, do not
// form the Ideal ring (docs/chord.md; chordtest.IdealErr, r not known): every
// one a member, its predecessor the true previous node and its successor
// list the true next nodes. "" when they do.
func idealErr(c *http.Client, live []*node) string {
	views := make([]chordtest.View, len(live))
	names := make(map[chord.ID]string, len(live))
	for i, n := range live {
		in, err := info(c, n)
		if err != nil {
			return err.Error()
		}
		if in.ID.String() != n.id {
			return fmt.Sprintf("%s now has id %.8s, was %.8s", n.name, in.ID, n.id)
		}
		views[i] = view(in)
		names[views[i].Self] = n.name
	}
	name := func(id chord.ID) string {
		if s, ok := names[id]; ok {
			return s
		}
		return chordtest.ShortName(id)
	}
	if err := chordtest.IdealErr(views, name); err != nil {
		return err.Error()
	}
	return ""
}

// view is the node as chordtest's ring checks see it (r not shown: 0).
func view(in api.NodeInfo) chordtest.View {
	v := chordtest.View{Self: in.ID, Status: in.Status}
	if in.Predecessor != nil {
		v.Pred = in.Predecessor.ID
	}
	for _, s := range in.Successors {
		v.Succs = append(v.Succs, s.ID)
	}
	return v
}

// waitIdeal polls until the live nodes form the Ideal ring and returns how
// long that took.
func waitIdeal(c *http.Client, live []*node, since time.Time, timeout time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	for {
		why := idealErr(c, live)
		if why == "" {
			return time.Since(since), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the ring of %s is not Ideal after %v: %s", names(live), timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// verifyAll asks every live node to verify its ledger, all at once.
func verifyAll(c *http.Client, live []*node) error {
	errs := make([]error, len(live))
	var wg sync.WaitGroup
	for i, n := range live {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body, err := get(c, n.url+"/api/v1/verify")
			var v struct {
				Valid bool `json:"valid"`
			}
			switch {
			case err != nil:
				errs[i] = fmt.Errorf("verify on %s: %v", n.name, err)
			case code != http.StatusOK || json.Unmarshal(body, &v) != nil || !v.Valid:
				errs[i] = fmt.Errorf("verify on %s: %d %s", n.name, code, trunc(body))
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// readAll reads every acknowledged reading back through randomly chosen live
// nodes and checks it: the record parses and its signature, H_DATA and txID
// check; it carries the receipt's key, block and data; its signer is the
// receipt's owner; and its bytes are the bytes first read (records never
// change). A reading that no node serves is lost; one that comes back wrong
// is corrupt. Transport errors are retried through other nodes.
func readAll(c *http.Client, acks []*acked, live []*node) (lost, corrupt []string) {
	var mu sync.Mutex
	note := func(list *[]string, s string) {
		mu.Lock()
		*list = append(*list, s)
		mu.Unlock()
	}
	next := make(chan *acked)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range next {
				switch kind, why := readOne(c, a, live); kind {
				case readLost:
					note(&lost, why)
				case readCorrupt:
					note(&corrupt, why)
				}
			}
		}()
	}
	for _, a := range acks {
		next <- a
	}
	close(next)
	wg.Wait()
	return lost, corrupt
}

type readResult int

const (
	readOK readResult = iota
	readLost
	readCorrupt
)

// readOne reads one reading, trying up to four nodes when a node cannot
// answer (a transport error or a 5xx); two 404s from different nodes make
// it lost.
func readOne(c *http.Client, a *acked, live []*node) (readResult, string) {
	var whys []string
	notFound := 0
	for try := 0; try < 4; try++ {
		n := live[rand.IntN(len(live))]
		code, body, err := get(c, n.url+"/api/v1/records/"+a.rc.TxID.String())
		switch {
		case err != nil:
			whys = append(whys, fmt.Sprintf("%s: %v", n.name, err))
		case code == http.StatusNotFound:
			whys = append(whys, n.name+": 404")
			if notFound++; notFound == 2 {
				return readLost, fmt.Sprintf("[%s] %s (put through %s, owner %.8s): %s", a.wait, a.rc.TxID, a.via, a.rc.Owner.ID, strings.Join(whys, "; "))
			}
		case code != http.StatusOK:
			whys = append(whys, fmt.Sprintf("%s: %d %s", n.name, code, trunc(body)))
		default:
			if err := checkRecord(a, body); err != nil {
				return readCorrupt, fmt.Sprintf("%s from %s: %v", a.rc.TxID, n.name, err)
			}
			return readOK, ""
		}
		time.Sleep(time.Duration(try+1) * 200 * time.Millisecond)
	}
	return readLost, fmt.Sprintf("[%s] %s: no node served it: %s", a.wait, a.rc.TxID, strings.Join(whys, "; "))
}

// checkRecord checks a served record against its receipt and the data sent.
func checkRecord(a *acked, raw []byte) error {
	r, err := ledger.ParseRecord(raw)
	if err != nil {
		return err
	}
	if err := r.CheckSelf(raw); err != nil {
		return fmt.Errorf("does not check: %v", err)
	}
	if r.TxID != a.rc.TxID || r.Key != a.rc.Key || r.Block.No != a.rc.Block.No {
		return fmt.Errorf("record %s/%s block %d, receipt %s/%s block %d", r.TxID, r.Key, r.Block.No, a.rc.TxID, a.rc.Key, a.rc.Block.No)
	}
	if s := sha1.Sum(r.Signer); hex.EncodeToString(s[:]) != a.rc.Owner.ID.String() {
		return fmt.Errorf("signed by %x, receipt owner %s", s, a.rc.Owner.ID)
	}
	if !bytes.Contains(raw, []byte(a.data)) {
		return fmt.Errorf("does not hold the data sent %s: %s", a.data, trunc(raw))
	}
	sum := sha256.Sum256(raw)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sum == nil {
		a.sum = sum[:]
	} else if !bytes.Equal(a.sum, sum[:]) {
		return fmt.Errorf("bytes differ from the first read: %s", trunc(raw))
	}
	return nil
}

func trunc(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

func names(ns []*node) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.name
	}
	return strings.Join(s, ",")
}
