package main

import (
	"fmt"
	"io"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

func cmdKeygen(args []string, stdout io.Writer) error {
	fs := newFlags("keygen")
	data := fs.String("data", "./data", "data directory to hold node.key")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(rest, 0, "no arguments"); err != nil {
		return err
	}
	id, created, err := ledger.LoadOrCreateIdentity(*data)
	if err != nil {
		return usageErr("%v", err)
	}
	state := "existing"
	if created {
		state = "new"
	}
	_, err = fmt.Fprintf(stdout, "%s (%s key in %s/%s)\n", id.ID, state, *data, ledger.KeyFile)
	return err
}

func cmdVersion(args []string, stdout io.Writer) error {
	if len(args) != 0 {
		return usageErr("version takes no arguments")
	}
	_, err := fmt.Fprintf(stdout, "flownode %s (ledger format %d)\n", node.Version, ledger.FormatVersion)
	return err
}
