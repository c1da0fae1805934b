package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
	"github.com/flownode/flownode/store"
)

func cmdVerify(args []string, stdout io.Writer) error {
	fs := newFlags("verify")
	nodeURL := fs.String("node", "", "URL of a running node to verify (default "+defaultNode+")")
	data := fs.String("data", "", "data directory of a stopped node to verify offline")
	profileName := fs.String("profile", "laptop", "memory profile for opening --data: gateway, laptop or local")
	merged := fs.String("merged", "", "an audit file (flownode audit) to re-check offline")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(rest, 0, "no arguments"); err != nil {
		return err
	}
	if *merged != "" {
		return verifyMerged(*merged, stdout)
	}
	if *nodeURL != "" && *data != "" {
		return usageErr("give --node or --data, not both")
	}
	var rep *ledger.Report
	if *data != "" {
		rep, err = verifyOffline(*data, *profileName)
	} else {
		if *nodeURL == "" {
			*nodeURL = defaultNode
		}
		rep, err = verifyLive(*nodeURL)
	}
	if err != nil {
		return err
	}
	return printReport(stdout, rep)
}

func verifyOffline(dir, profileName string) (*ledger.Report, error) {
	p, err := node.ProfileNamed(profileName)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	if !store.Exists(dir) {
		return nil, usageErr("%s holds no flownode store", dir)
	}
	st, err := store.Open(dir, p.Store, zap.NewNop())
	if err != nil {
		return nil, usageErr("%v (is a node still running on it? then use --node)", err)
	}
	defer st.Close()
	g, err := ledger.StoredGenesis(st)
	if err != nil {
		return nil, usageErr("could not verify %s: %v", dir, err)
	}
	var self ledger.Key // unknown node (no or unreadable node.key): every branch strict
	if id, err := ledger.LoadIdentity(dir); err == nil {
		self = id.ID
	}
	rep, err := ledger.Verify(context.Background(), st, g, node.ProofCheck(g), self)
	if err != nil {
		return nil, usageErr("could not verify %s: %v", dir, err)
	}
	return rep, nil
}

func verifyLive(nodeURL string) (*ledger.Report, error) {
	c, err := newClient(nodeURL, 30*time.Minute)
	if err != nil {
		return nil, err
	}
	out, err := c.do(http.MethodGet, "/api/v1/verify", nil)
	if err != nil {
		return nil, err
	}
	var rep ledger.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		return nil, usageErr("unexpected answer from the node: %v", err)
	}
	return &rep, nil
}

// printReport prints "valid" or "invalid: <where>" on the first line, as scripts expect.
func printReport(w io.Writer, rep *ledger.Report) error {
	if rep.Valid {
		fmt.Fprintf(w, "valid\n%d branch(es), %d block(s), %d record(s), %d not yet sealed\n", rep.Branches, rep.Blocks, rep.Records, rep.Unsealed)
		if rep.Partial > 0 {
			// Replicas hold only the records of other branches that fall in
			// their ranges: those seals cannot be recomputed here.
			fmt.Fprintf(w, "%d block(s) of other branches seal records held elsewhere\n", rep.Partial)
		}
		return nil
	}
	fmt.Fprintf(w, "invalid: %s\n", rep.Where)
	if rep.Expected != "" || rep.Actual != "" {
		fmt.Fprintf(w, "  expected %s\n  actual   %s\n", rep.Expected, rep.Actual)
	}
	return negative("")
}
