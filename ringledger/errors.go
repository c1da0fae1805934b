package ringledger

import (
	"errors"
	"fmt"
)

// Code says why a node refused a peer's message, and so what the asking node
// does next.
type Code string

// The refusal codes.
const (
	CodeMisrouted   Code = "misrouted"   // an entry outside the node's range: look the owner up again
	CodeLeaving     Code = "leaving"     // the node is starting or handing its range on: retry shortly
	CodeReplicas    Code = "replicas"    // too few replicas for wait=replicas: retry shortly
	CodeInput       Code = "input"       // a reading the ledger refuses: final, the client's error
	CodeRefused     Code = "refused"     // bad data from a peer: final
	CodeUnavailable Code = "unavailable" // the node failed (its store, say): retry later
)

// Refusal is a peer's structured no: it crosses the wire as JSON (wire.go),
// never as text to parse.
type Refusal struct {
	Code   Code   `json:"code"`
	Index  *int   `json:"index,omitempty"` // the reading of the batch it concerns, if one
	Reason string `json:"reason"`          // one sentence
}

func (r *Refusal) Error() string {
	if r.Index != nil {
		return fmt.Sprintf("%s: reading %d: %s", r.Code, *r.Index, r.Reason)
	}
	return fmt.Sprintf("%s: %s", r.Code, r.Reason)
}

// refuse builds a refusal.
func refuse(code Code, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// refusalOf returns the refusal err carries, or nil (a transport failure, a
// timeout, a local error).
func refusalOf(err error) *Refusal {
	var r *Refusal
	if errors.As(err, &r) {
		return r
	}
	return nil
}

// hasCode reports whether err is a refusal with code c.
func hasCode(err error, c Code) bool {
	r := refusalOf(err)
	return r != nil && r.Code == c
}

// ErrNotFound is returned for a record, key or block this node does not hold.
var ErrNotFound = errors.New("not found")
