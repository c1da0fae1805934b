package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/flownode/flownode/api"
)

const defaultNode = "http://127.0.0.1:8000"

// nodeFlag adds --node to a flag set.
func nodeFlag(fs *flag.FlagSet) *string {
	return fs.String("node", defaultNode, "URL of the node to ask")
}

// apiClient talks to a node's HTTP API and turns failures into exit codes.
type apiClient struct {
	base  string
	http  *http.Client
	token string // a bearer token (flownode token create) from FLOWNODE_TOKEN; "" sends none
}

// tokenEnv holds the bearer token the client commands send: a node asks
// for one for writes from other machines, and for verify.
const tokenEnv = "FLOWNODE_TOKEN"

func newClient(node string, timeout time.Duration) (*apiClient, error) {
	if !strings.Contains(node, "://") {
		node = "http://" + node
	}
	u, err := url.Parse(node)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, usageErr("--node %q is not an http:// URL", node)
	}
	return &apiClient{base: strings.TrimRight(u.String(), "/"), http: &http.Client{Timeout: timeout},
		token: os.Getenv(tokenEnv)}, nil
}

// do sends a request and returns the body of a 2xx answer. A 404 is a negative answer
// (exit 1); other failures are exit 2 with the server's one-sentence error.
func (c *apiClient) do(method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, usageErr("%v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, usageErr("cannot reach %s: %v", c.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, usageErr("reading the answer from %s: %v", c.base, err)
	}
	if resp.StatusCode/100 == 2 {
		return b, nil
	}
	msg := serverMessage(b, resp.Status)
	if resp.StatusCode == http.StatusNotFound {
		return nil, negative("%s", msg)
	}
	return nil, usageErr("%s", msg)
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func serverMessage(b []byte, status string) string {
	var e api.ErrorBody
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return e.Error
	}
	return "the node answered " + status
}

// clientFor parses a command's arguments with fs (whose --node is node), wants
// n positional arguments (what names them in the error), and returns them with
// a client of the node that gives up after timeout.
func clientFor(fs *flag.FlagSet, node *string, args []string, n int, what string, timeout time.Duration) ([]string, *apiClient, error) {
	rest, err := parseFlags(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if err := wantArgs(rest, n, what); err != nil {
		return nil, nil, err
	}
	c, err := newClient(*node, timeout)
	return rest, c, err
}

func cmdPut(args []string, stdout io.Writer) error {
	fs := newFlags("put")
	node := nodeFlag(fs)
	thing := fs.String("thing", "", "ID of the Thing the reading belongs to (required)")
	key := fs.String("key", "", "optional 40-hex ring key to store the reading under")
	wait := fs.String("wait", "owner", "owner: answer once durable on the owner; replicas: on the replicas too")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(rest, 1, "one JSON reading"); err != nil {
		return err
	}
	if *thing == "" {
		return usageErr("--thing is required")
	}
	if *wait != "owner" && *wait != "replicas" {
		return usageErr("--wait %q: use owner or replicas", *wait)
	}
	if !json.Valid([]byte(rest[0])) {
		return usageErr("the reading %q is not valid JSON", rest[0])
	}
	body := map[string]any{"thing": *thing, "data": json.RawMessage(rest[0])}
	if *key != "" {
		body["key"] = *key
	}
	if *wait != "owner" {
		body["wait"] = *wait
	}
	raw, _ := json.Marshal(body)
	c, err := newClient(*node, 30*time.Second)
	if err != nil {
		return err
	}
	out, err := c.do(http.MethodPost, "/api/v1/records", raw)
	if err != nil {
		return err
	}
	return writeIndented(stdout, out)
}

func cmdGet(args []string, stdout io.Writer) error {
	fs := newFlags("get")
	node := nodeFlag(fs)
	proof := fs.Bool("proof", false, "print the record's inclusion proof instead (save it for flownode verify-record)")
	rest, c, err := clientFor(fs, node, args, 1, "one TXID", 30*time.Second)
	if err != nil {
		return err
	}
	path := "/api/v1/records/" + url.PathEscape(rest[0])
	if *proof {
		path += "/proof"
	}
	out, err := c.do(http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	// The record is printed exactly as stored, so it can be verified byte for byte.
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}

func cmdStatus(args []string, stdout io.Writer) error {
	fs := newFlags("status")
	node := nodeFlag(fs)
	asJSON := fs.Bool("json", false, "print the raw JSON answer")
	_, c, err := clientFor(fs, node, args, 0, "no arguments", 30*time.Second)
	if err != nil {
		return err
	}
	out, err := c.do(http.MethodGet, "/api/v1/node", nil)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeIndented(stdout, out)
	}
	var n api.NodeInfo
	if err := json.Unmarshal(out, &n); err != nil {
		return usageErr("unexpected answer from the node: %v", err)
	}
	fmt.Fprintf(stdout, "id           %s\naddr         %s\nprofile      %s (%s)\nnetwork      %s (authority %s)\nmembership   expires %s\n",
		n.ID, n.Addr, n.Profile, n.Version, n.Network, n.Authority, n.MembershipExpires.Format(time.RFC3339))
	if n.RPC != "" {
		fmt.Fprintf(stdout, "rpc          %s\n", n.RPC)
	}
	fmt.Fprintf(stdout, "ring         %s\n", n.Status)
	if n.Predecessor != nil {
		fmt.Fprintf(stdout, "predecessor  %s %s\n", n.Predecessor.ID, n.Predecessor.Addr)
	} else {
		fmt.Fprintln(stdout, "predecessor  none")
	}
	for i, s := range n.Successors {
		fmt.Fprintf(stdout, "successor %-2d %s %s\n", i, s.ID, s.Addr)
	}
	for i, f := range n.Fingers {
		fmt.Fprintf(stdout, "finger %-5d %s %s\n", i, f.ID, f.Addr)
	}
	fmt.Fprintf(stdout, "branch head  %d %s\nrecords      %d (%d not yet sealed)\n", n.Branch.No, n.Branch.Hash, n.Stats.Records, n.Stats.Unsealed)
	return nil
}

func cmdRing(args []string, stdout io.Writer) error {
	fs := newFlags("ring")
	node := nodeFlag(fs)
	_, c, err := clientFor(fs, node, args, 0, "no arguments", 30*time.Second)
	if err != nil {
		return err
	}
	out, err := c.do(http.MethodGet, "/api/v1/ring", nil)
	if err != nil {
		return err
	}
	var ring api.RingWalk
	if err := json.Unmarshal(out, &ring); err != nil {
		return usageErr("unexpected answer from the node: %v", err)
	}
	for i, p := range ring.Nodes {
		fmt.Fprintf(stdout, "%3d  %s  %s\n", i, p.ID, p.Addr)
	}
	if ring.Error != "" {
		return negative("the walk stopped after %d node(s): %s", len(ring.Nodes), ring.Error)
	}
	return nil
}

func cmdHealthcheck(args []string, stdout io.Writer) error {
	fs := newFlags("healthcheck")
	node := nodeFlag(fs)
	_, c, err := clientFor(fs, node, args, 0, "no arguments", 5*time.Second)
	if err != nil {
		return err
	}
	if _, err := c.do(http.MethodGet, "/healthz", nil); err != nil {
		return negative("unhealthy: %v", err)
	}
	return nil
}

func writeIndented(w io.Writer, b []byte) error {
	var buf bytes.Buffer
	if json.Indent(&buf, b, "", "  ") != nil {
		buf.Reset()
		buf.Write(b)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}
