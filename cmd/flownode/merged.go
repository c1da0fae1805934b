package main

import (
	"io"
	"os"

	"github.com/flownode/flownode/audit"
)

// verifyMerged re-checks an audit file offline (flownode verify --merged FILE):
// "valid", "incomplete: ..." (the ring could not supply what the file lists as
// missing) or "invalid: line N (block B of branch X): field".
func verifyMerged(file string, stdout io.Writer) error {
	f, err := os.Open(file)
	if err != nil {
		return usageErr("%v", err)
	}
	defer f.Close()
	rep, err := audit.Check(f)
	if err != nil {
		return usageErr("read %s: %v", file, err)
	}
	return printAudit(stdout, rep, file)
}
