package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flownode/flownode/audit"
)

// cmdAudit writes the merged, verified branch of the whole ring (package audit,
// docs/merged.md).
func cmdAudit(args []string, stdout io.Writer) error {
	fs := newFlags("audit")
	nodeURL := nodeFlag(fs)
	from := fs.String("from", "", "first block time to include (RFC 3339); default: from genesis")
	to := fs.String("to", "", "block time to stop before (RFC 3339); default: each owner's head now (then two runs differ while mining goes on)")
	out := fs.String("out", "", "the audit file to write (JSON lines)")
	netDir := fs.String("network", "", "the network's description to pin: network.json, or a directory holding it (default: the node's word for it)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(rest, 0, "no arguments"); err != nil {
		return err
	}
	if *out == "" {
		return usageErr("--out FILE is required")
	}
	cfg := audit.Config{Node: *nodeURL, Token: os.Getenv(tokenEnv)}
	if cfg.From, err = flagTime("--from", *from); err != nil {
		return err
	}
	if cfg.To, err = flagTime("--to", *to); err != nil {
		return err
	}
	if !cfg.From.IsZero() && !cfg.To.IsZero() && !cfg.To.After(cfg.From) {
		return usageErr("--to must be after --from")
	}
	if *netDir != "" {
		d, err := loadDescription(*netDir)
		if err != nil {
			return usageErr("%v", err)
		}
		cfg.Network = d
	}
	// Written beside the target and renamed once whole: an audit that fails
	// leaves no file that looks like one.
	tmp, err := os.CreateTemp(filepath.Dir(*out), filepath.Base(*out)+".*.tmp")
	if err != nil {
		return usageErr("%v", err)
	}
	defer os.Remove(tmp.Name())
	cfg.Out = tmp
	rep, err := audit.Run(context.Background(), cfg)
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return usageErr("%v", err)
	}
	if rep.Valid {
		if err := os.Rename(tmp.Name(), *out); err != nil {
			return usageErr("%v", err)
		}
	}
	return printAudit(stdout, rep, *out)
}

func flagTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, usageErr("%s %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", name, v)
	}
	return t, nil
}

// printAudit prints an audit's or a merged file's report: "valid",
// "incomplete: ..." or "invalid: <where>" on the first line, as printReport
// does for verify; incomplete and invalid exit 1.
func printAudit(w io.Writer, rep *audit.Report, file string) error {
	if !rep.Valid {
		fmt.Fprintf(w, "invalid: %s\n", rep.Where)
		if rep.Expected != "" || rep.Actual != "" {
			fmt.Fprintf(w, "  expected %s\n  actual   %s\n", rep.Expected, rep.Actual)
		}
		return negative("")
	}
	first := "valid"
	if !rep.Complete() {
		first = fmt.Sprintf("incomplete: %d sealed record(s) missing, %d seal(s) covering records no node lists", len(rep.Missing), len(rep.Short))
	}
	fmt.Fprintf(w, "%s\nmerged head %s\n%d branch(es), %d block(s), %d sealed record(s) checked; %s\n",
		first, rep.Head, rep.Branches, rep.Blocks, rep.Records, file)
	if rep.Witnessed > 0 {
		fmt.Fprintf(w, "%d branch(es) agree with the checkpoints their witnesses cosigned\n", rep.Witnessed)
	}
	for _, m := range rep.Missing {
		key, holders := "unknown", "unknown (its txID pointer is gone too)"
		if m.Key != nil {
			key = m.Key.String()
		}
		if len(m.Holders) > 0 {
			var hs []string
			for _, h := range m.Holders {
				hs = append(hs, h.ID.String()+" ("+h.Addr+")")
			}
			holders = strings.Join(hs, ", ")
		}
		fmt.Fprintf(w, "missing %s: position %d of block %d of branch %s, key %s, should be on %s\n", m.TxID, m.Seq, m.Block, m.Branch, key, holders)
	}
	for _, s := range rep.Short {
		fmt.Fprintf(w, "short: block %d of branch %s seals %d record(s), the ring lists %d\n", s.Block, s.Branch, s.Sealed, s.Listed)
	}
	if !rep.Complete() {
		return negative("")
	}
	return nil
}
