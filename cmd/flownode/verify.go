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
	full := fs.Bool("full", false, "with --node: read the whole store instead of resuming from the last verification that passed (--data always reads it whole)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(rest, 0, "no arguments"); err != nil {
		return err
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
		rep, err = verifyLive(*nodeURL, *full)
	}
	if err != nil {
		return err
	}
	return printReport(stdout, rep)
}

// verifyOffline verifies a stopped node's data dir in full. It does not resume from
// the verification the node remembered: that memory is in the very store being
// audited, and an offline verify is how one checks a data dir one does not trust (a
// copy, a disk taken from a device); nor does it write to the dir.
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

func verifyLive(nodeURL string, full bool) (*ledger.Report, error) {
	c, err := newClient(nodeURL, 30*time.Minute)
	if err != nil {
		return nil, err
	}
	path := "/api/v1/verify"
	if full {
		path += "?full=1"
	}
	out, err := c.do(http.MethodGet, path, nil)
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
		printMode(w, rep)
		return nil
	}
	fmt.Fprintf(w, "invalid: %s\n", rep.Where)
	if rep.Expected != "" || rep.Actual != "" {
		fmt.Fprintf(w, "  expected %s\n  actual   %s\n", rep.Expected, rep.Actual)
	}
	if l := rep.Location; l != nil && l.Entry != "" {
		fmt.Fprintf(w, "  store entry %s", l.Entry)
		if l.File != "" {
			fmt.Fprintf(w, " in %s", l.File)
		}
		fmt.Fprintln(w)
	}
	printMode(w, rep)
	return negative("")
}

// printMode says what the verification read: everything, or what changed since the
// last one that passed.
func printMode(w io.Writer, rep *ledger.Report) {
	switch rep.Mode {
	case ledger.ModeIncremental:
		fmt.Fprintf(w, "incremental: %d block(s) and %d record(s) written since store version %d checked (flownode verify --full reads everything)\n",
			rep.CheckedBlocks, rep.CheckedRecords, rep.Since)
	case ledger.ModeFull:
		if rep.Fallback != "" {
			fmt.Fprintf(w, "full: %s\n", rep.Fallback)
		} else {
			fmt.Fprintln(w, "full")
		}
	}
}
