package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/flownode/flownode/checkpoint"
	"github.com/flownode/flownode/network"
)

// cmdVerifyRecord checks a record's proof (flownode get --proof, or GET
// /api/v1/records/{txID}/proof) offline, with nothing but the network's public
// description: no node is asked anything.
func cmdVerifyRecord(args []string, stdout io.Writer) error {
	fs := newFlags("verify-record")
	netPath := fs.String("network", "./data", "the network's description: network.json, or a directory holding it (a node's data dir does)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(rest, 1, "one FILE (- for standard input)"); err != nil {
		return err
	}
	desc, err := loadDescription(*netPath)
	if err != nil {
		return usageErr("%v", err)
	}
	var in io.Reader = os.Stdin
	if rest[0] != "-" {
		f, err := os.Open(rest[0])
		if err != nil {
			return usageErr("%v", err)
		}
		defer f.Close()
		in = f
	}
	b, err := io.ReadAll(io.LimitReader(in, checkpoint.MaxProofSize+1))
	if err != nil {
		return usageErr("read %s: %v", rest[0], err)
	}
	if len(b) > checkpoint.MaxProofSize {
		return negativeLine(stdout, "proof", fmt.Errorf("the file is larger than a proof can be (%d bytes)", checkpoint.MaxProofSize))
	}
	var p checkpoint.Proof
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return negativeLine(stdout, "file", fmt.Errorf("not a record proof: %v", err))
	}
	v, err := p.Verify(desc)
	if err != nil {
		var pe *checkpoint.ProofError
		if errors.As(err, &pe) {
			return negativeLine(stdout, pe.Where, pe.Err)
		}
		return negativeLine(stdout, "proof", err)
	}
	c := v.Checkpoint
	fmt.Fprintf(stdout, "valid\nrecord %s of thing %s, signed by branch %s\nsealed by block %d (%s), in the branch's checkpoint of %d blocks\n",
		v.Record.TxID, v.Record.Thing, v.Record.Block.Branch, v.Block.No, v.Block.Hash, c.Size)
	if len(c.Cosigners) == 0 {
		fmt.Fprintln(stdout, "the checkpoint is signed by the branch's owner and not cosigned by a witness yet")
	} else {
		fmt.Fprintf(stdout, "cosigned by %d witness(es):", len(c.Cosigners))
		for _, id := range c.Cosigners {
			fmt.Fprintf(stdout, " %s", id)
		}
		fmt.Fprintln(stdout)
	}
	return nil
}

func negativeLine(w io.Writer, where string, err error) error {
	fmt.Fprintf(w, "invalid: %s: %v\n", where, err)
	return negative("")
}

// loadDescription reads network.json from a file or a directory.
func loadDescription(path string) (*network.Description, error) {
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		dir := filepath.Dir(path)
		if filepath.Base(path) != network.DescriptionFile {
			return nil, fmt.Errorf("--network %s: want a directory holding %s, or that file", path, network.DescriptionFile)
		}
		path = dir
	}
	return network.LoadDescription(path)
}
