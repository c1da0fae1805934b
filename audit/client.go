package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/flownode/flownode/api"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

// client reads a node's HTTP API: the few GETs an audit needs.
type client struct {
	http  *http.Client
	token string // bearer token; "" sends none
}

// errNotFound is a 404: a negative answer, not a failure to ask.
var errNotFound = errors.New("not found")

// maxAnswer bounds one answer: a page of 10 000 blocks or one block's records.
const maxAnswer = 512 << 20

func newClient(token string, timeout time.Duration) *client {
	return &client{token: token, http: &http.Client{Timeout: timeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}}}
}

// get decodes the JSON answer to GET base+path into out.
func (c *client) get(ctx context.Context, base, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s%s: %w", base, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("GET %s%s: %w", base, path, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("GET %s%s: %w", base, path, errNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		var e api.ErrorBody
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return fmt.Errorf("GET %s%s: %s", base, path, e.Error)
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = b
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("GET %s%s: unexpected answer: %w", base, path, err)
	}
	return nil
}

func (c *client) network(ctx context.Context, base string) (node.NetworkInfo, error) {
	var n node.NetworkInfo
	return n, c.get(ctx, base, "/api/v1/network", &n)
}

func (c *client) ring(ctx context.Context, base string) (api.RingWalk, error) {
	var r api.RingWalk
	return r, c.get(ctx, base, "/api/v1/ring", &r)
}

// blocks reads every block of branch the node at base stores, from number 1.
func (c *client) blocks(ctx context.Context, base string, branch ledger.Key) ([][]byte, error) {
	const page = 10000
	var out [][]byte
	for from := uint64(1); ; from += page {
		var l api.BlockList
		if err := c.get(ctx, base, fmt.Sprintf("/api/v1/blocks?branch=%s&from=%d&limit=%d", branch, from, page), &l); err != nil {
			return nil, err
		}
		for _, b := range l.Blocks {
			out = append(out, b)
		}
		if len(l.Blocks) < page {
			return out, nil
		}
	}
}

func (c *client) blockRecords(ctx context.Context, base string, branch ledger.Key, no uint64) ([]api.BlockRecord, error) {
	var l api.BlockRecordList
	return l.Records, c.get(ctx, base, fmt.Sprintf("/api/v1/blocks/%s/%d/records", branch, no), &l)
}

// record reads a record by txID through the node at base, which asks the ring.
func (c *client) record(ctx context.Context, base string, txID ledger.Hash) ([]byte, error) {
	var b []byte
	return b, c.get(ctx, base, "/api/v1/records/"+txID.String(), &b)
}

// httpBase turns a node's URL as the ring names it (its RPC address) or as a
// user gives it into the base URL of its HTTP API: a ws:// peer serves HTTP on
// the same port. A coap:// peer's HTTP port is not known: "".
func httpBase(addr string) string {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return ""
	}
	switch u.Scheme {
	case "http", "ws":
		return "http://" + u.Host
	case "https", "wss":
		return "https://" + u.Host
	}
	return ""
}
