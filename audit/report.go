package audit

import (
	"errors"
	"fmt"

	"github.com/flownode/flownode/ledger"
)

// Report is the answer of an audit and of Check: valid or the first failure
// with its place, the merged head digest and what the ring could not supply.
type Report struct {
	Valid    bool
	Where    string // the place of the failure: a branch and block, or a line and field of a file
	Expected string
	Actual   string

	Head     ledger.Hash // the merged head digest
	Branches int
	Blocks   int
	Records  int       // sealed records supplied and checked
	Missing  []Missing // sealed records no node could supply
	Short    []Short   // seals covering records no node lists
	// Witnessed counts the branches that agree with a checkpoint their
	// witnesses cosigned (an audit only; the file does not carry them).
	Witnessed int
}

// Complete says whether every record a seal covers was supplied.
func (r *Report) Complete() bool { return len(r.Missing) == 0 && len(r.Short) == 0 }

// failure is a check that failed at a named place.
type failure struct {
	where string
	err   error
}

func (f *failure) Error() string { return f.where + ": " + f.err.Error() }

func fail(where string, err error) *failure { return &failure{where: where, err: err} }

func failf(where, what, expected, actual string) *failure {
	return fail(where, &ledger.Mismatch{What: what, Expected: expected, Actual: actual})
}

// invalid fills r from a failure, in the shape of ledger.Report: the place and
// what was checked in Where, the two values apart.
func (r *Report) invalid(f *failure) *Report {
	r.Valid = false
	r.Where = f.where
	var m *ledger.Mismatch
	if errors.As(f.err, &m) {
		r.Where = f.where + ": " + m.What
		r.Expected, r.Actual = m.Expected, m.Actual
	} else {
		r.Actual = f.err.Error()
	}
	return r
}

// blockPlace names a block in failures.
func blockPlace(branch ledger.Key, no uint64) string {
	return fmt.Sprintf("block %d of branch %s", no, branch)
}
