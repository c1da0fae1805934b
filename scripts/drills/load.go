package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	// fnode: this package names its own node type "node".
	fnode "github.com/flownode/flownode/node"
)

// acked is a reading whose receipt (node.Receipt) reached the client: the ring must never
// lose it.
type acked struct {
	rc   fnode.Receipt
	data string // the canonical JSON sent, which the record must hold
	via  string // the node it was put through
	wait string // what the acknowledgement promised: "replicas" or "owner"

	mu  sync.Mutex
	sum []byte // SHA-256 of the record's bytes as first read
}

// load puts readings continuously through the nodes the drill says are
// reachable, in batches, each acknowledged only once every replica holds it
// (wait=replicas). It stops by itself at maxReadings.
type load struct {
	client      *http.Client
	tag         string // names the Things this load writes to
	batch       int
	wait        string
	rate        float64 // readings per second over all writers; 0: as fast as acknowledged
	maxReadings int64
	reachable   func() []*node

	mu   sync.Mutex
	acks []*acked

	sent, failedBatches atomic.Int64
	errMu               sync.Mutex
	errs                map[string]int // first words of each failure, counted
}

// run starts writers and returns a function that stops them and waits.
func (l *load) run(writers int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var every time.Duration
			if l.rate > 0 {
				every = time.Duration(float64(writers*l.batch) / l.rate * float64(time.Second))
			}
			next := time.Now()
			for seq := 0; ctx.Err() == nil && l.sent.Load() < l.maxReadings; seq++ {
				l.putBatch(ctx, w, seq)
				if next = next.Add(every); every > 0 {
					select {
					case <-ctx.Done():
					case <-time.After(time.Until(next)):
					}
				}
			}
		}()
	}
	return func() { cancel(); wg.Wait() }
}

// putBatch puts one batch through a random reachable node.
func (l *load) putBatch(ctx context.Context, w, seq int) {
	nodes := l.reachable()
	if len(nodes) == 0 {
		time.Sleep(100 * time.Millisecond)
		return
	}
	n := nodes[rand.IntN(len(nodes))]
	bodies := make([]string, l.batch)
	datas := make([]string, l.batch)
	for i := range bodies {
		// Canonical JSON (keys sorted, no spaces): the record holds it as is.
		datas[i] = fmt.Sprintf(`{"i":%d,"v":%d,"w":%d}`, seq*l.batch+i, rand.IntN(1000000), w)
		bodies[i] = fmt.Sprintf(`{"thing":"%s-%d","data":%s}`, l.tag, w, datas[i])
	}
	l.sent.Add(int64(l.batch))
	url := n.url + "/api/v1/records?batch=1"
	if l.wait != "" {
		url += "&wait=" + l.wait
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("["+strings.Join(bodies, ",")+"]"))
	if err != nil {
		l.fail(err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			l.fail(n.name + ": " + err.Error())
		}
		return
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusCreated {
		l.fail(fmt.Sprintf("%s: %d %s", n.name, resp.StatusCode, firstLine(body)))
		return
	}
	var rcs []fnode.Receipt
	if err := json.Unmarshal(body, &rcs); err != nil || len(rcs) != len(bodies) {
		l.fail(fmt.Sprintf("%s: %d receipts for %d readings: %v", n.name, len(rcs), len(bodies), err))
		return
	}
	as := make([]*acked, len(rcs))
	for i, rc := range rcs {
		as[i] = &acked{rc: rc, data: datas[i], via: n.name, wait: l.wait}
	}
	l.mu.Lock()
	l.acks = append(l.acks, as...)
	l.mu.Unlock()
}

func (l *load) fail(why string) {
	l.failedBatches.Add(1)
	if len(why) > 120 {
		why = why[:120] + "…"
	}
	l.errMu.Lock()
	if l.errs == nil {
		l.errs = map[string]int{}
	}
	l.errs[strings.TrimSpace(why)]++
	l.errMu.Unlock()
}

// acked returns the acknowledged readings so far.
func (l *load) acked() []*acked {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*acked(nil), l.acks...)
}

// takeErrors returns and clears the failure summary.
func (l *load) takeErrors() map[string]int {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	e := l.errs
	l.errs = nil
	return e
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	return trunc(b)
}
