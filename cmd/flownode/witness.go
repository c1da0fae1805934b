package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/access"
	"github.com/flownode/flownode/api"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
	"github.com/flownode/flownode/witness"
)

// serveWitness starts the node's witnessing (its branch's checkpoints, its
// cosignatures of its predecessors', record proofs) and mounts its routes and
// metrics on the API.
func serveWitness(n *node.Node, srv *api.Server, log *zap.Logger, guard *access.Guard, edges []string) (stop func(), err error) {
	w, err := witness.New(n, witness.Config{Log: log.Named("witness"), Authorize: guard, Edges: edges})
	if err != nil {
		return func() {}, err
	}
	for pattern, h := range w.Routes() {
		srv.Handle(pattern, h)
	}
	if err := srv.Register(w.Collectors()...); err != nil {
		w.Close()
		return func() {}, err
	}
	return w.Close, nil
}

// splitList reads a comma-separated flag, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// cmdCheckpoints exports the checkpoints a node holds (its own branch's and those
// it witnesses, with their cosignatures, and any equivocation evidence) for an
// auditor outside the ring: GET /api/v1/checkpoints, to a file or stdout.
func cmdCheckpoints(args []string, stdout io.Writer) error {
	fs := newFlags("checkpoints")
	nodeURL := nodeFlag(fs)
	out := fs.String("out", "", "write to FILE instead of standard output")
	_, c, err := clientFor(fs, nodeURL, args, 0, "no arguments", 30*time.Second)
	if err != nil {
		return err
	}
	body, err := c.do(http.MethodGet, "/api/v1/checkpoints", nil)
	if err != nil {
		return err
	}
	var list witness.CheckpointList
	if err := json.Unmarshal(body, &list); err != nil {
		return usageErr("unexpected answer from the node: %v", err)
	}
	if *out == "" {
		return writeIndented(stdout, body)
	}
	if err := ledger.WriteFileSynced(*out, append(body, '\n'), 0o644); err != nil {
		return usageErr("%v", err)
	}
	fmt.Fprintf(stdout, "%d checkpoint(s), %d equivocation(s) written to %s\n", len(list.Checkpoints), len(list.Equivocations), *out)
	return nil
}
