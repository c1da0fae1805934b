package ledger

import (
	"bytes"
	"fmt"
)

// Mismatch is a failed check: what was checked, what it should be and what it is.
type Mismatch struct {
	What     string
	Expected string
	Actual   string
}

func (m *Mismatch) Error() string {
	return fmt.Sprintf("%s: expected %s, actual %s", m.What, m.Expected, m.Actual)
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
