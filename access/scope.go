// Package access decides which clients and devices may read and write what on a
// node: it reads a client's credential (a bearer token on HTTP and WebSocket, a
// DTLS PSK identity on CoAP), checks it against the network (package network
// signs and revokes tokens), and answers whether the request may go on.
package access

import (
	"errors"
	"fmt"
)

// Scope is what a credential allows. Each scope includes the ones below it:
// admin ⊃ write ⊃ read.
type Scope int

const (
	Read  Scope = iota + 1 // read records, TDs and live values
	Write                  // and write readings and TDs
	Admin                  // and run verify, change the network
)

// ParseScope reads read, write or admin.
func ParseScope(s string) (Scope, error) {
	switch s {
	case "read":
		return Read, nil
	case "write":
		return Write, nil
	case "admin":
		return Admin, nil
	}
	return 0, fmt.Errorf("scope %q: use read, write or admin", s)
}

func (s Scope) String() string {
	switch s {
	case Read:
		return "read"
	case Write:
		return "write"
	case Admin:
		return "admin"
	}
	return fmt.Sprintf("scope(%d)", int(s))
}

// ErrNoCredential is wrapped by refusals of requests that carry no credential, or
// one that cannot be checked at all (malformed, expired, revoked, of another
// network): HTTP 401, CoAP 4.01.
var ErrNoCredential = errors.New("no valid credential")

// ErrForbidden is wrapped by refusals of requests whose credential is valid but
// does not cover the Thing or the scope asked for: HTTP 403, CoAP 4.03.
var ErrForbidden = errors.New("credential does not allow this")
