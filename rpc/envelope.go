package rpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/flownode/flownode/chord"
)

// Peer is a node as the wire shows it: its ring ID (40 lowercase hex
// characters) and the address its RPC transport listens on
// ("ws://host:port", "coap://host:port", "coaps://host:port", or "mem://name" in
// tests).
type Peer struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
}

// IsZero reports whether p is "no peer".
func (p Peer) IsZero() bool { return p == Peer{} }

// Envelope is the one message shape every transport carries. ID correlates a
// reply with its request (a string in JSON because ids may exceed 2^53);
// Payload is opaque JSON for the layer above; Error is set on an error reply.
type Envelope struct {
	Type    string          `json:"type"`
	ID      uint64          `json:"id,string"`
	From    Peer            `json:"from"`
	To      Peer            `json:"to,omitzero"`
	Key     string          `json:"key,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// The Flowchain message types: the Chord protocol's vocabulary, declared
// (and documented) once in package chord; and TypeError, which transports use
// for error replies and every Codec accepts.
const (
	TypeNotifyStabilize   = string(chord.NotifyStabilize)
	TypeNotifyPredecessor = string(chord.NotifyPredecessor)
	TypeNotifySuccessor   = string(chord.NotifySuccessor)
	TypeNotifyJoin        = string(chord.NotifyJoin)
	TypeNotifyEdge        = string(chord.NotifyEdge)
	TypeFindSuccessor     = string(chord.FindSuccessor)
	TypeFoundSuccessor    = string(chord.FoundSuccessor)
	TypeCheckPredecessor  = string(chord.CheckPredecessor)
	TypeCheckSuccessor    = string(chord.CheckSuccessor)
	TypeCheckTTL          = string(chord.CheckTTL)
	TypeMessage           = string(chord.AppMessage)

	// TypeError marks a reply that only reports a failure (Error says which).
	TypeError = "ERROR"
)

// FlowchainTypes lists the Flowchain message types, for NewCodec.
var FlowchainTypes = []string{
	TypeNotifyStabilize, TypeNotifyPredecessor, TypeNotifySuccessor, TypeNotifyJoin,
	TypeNotifyEdge, TypeFindSuccessor, TypeFoundSuccessor, TypeCheckPredecessor,
	TypeCheckSuccessor, TypeCheckTTL, TypeMessage,
}

// The address schemes, one per transport.
const (
	SchemeWS   = "ws"
	SchemeCoAP = "coap"
	// SchemeCoAPS is CoAP over DTLS, the authenticating CoAP transport's.
	SchemeCoAPS = "coaps"
	SchemeMem   = "mem"
)

// Errors. Each failure wraps one of these, so callers can test with errors.Is.
var (
	// ErrTooLarge: an envelope exceeds the codec's maximum size.
	ErrTooLarge = errors.New("rpc: envelope too large")
	// ErrMalformed: bytes that are not a valid envelope, or an envelope with
	// an invalid field (id, hex key, peer address...).
	ErrMalformed = errors.New("rpc: malformed envelope")
	// ErrUnknownType: an envelope whose type the codec was not built with.
	ErrUnknownType = errors.New("rpc: unknown message type")
	// ErrBadAddr: a destination address no transport can use.
	ErrBadAddr = errors.New("rpc: bad address")
	// ErrClosed: the transport is closed.
	ErrClosed = errors.New("rpc: transport closed")
	// ErrUnreachable: no connection could be made to the destination.
	ErrUnreachable = errors.New("rpc: peer unreachable")
	// ErrConnLost: the connection broke before the message or its reply got through.
	ErrConnLost = errors.New("rpc: connection lost")
	// ErrDuplicateID: a call with the same id to the same peer is still waiting.
	ErrDuplicateID = errors.New("rpc: a call with this id is already waiting")
	// ErrNoReply: the peer handled a Call but its handler returned no reply.
	// Only CoAP can tell (its response arrives empty); over WS and mem such a
	// Call times out.
	ErrNoReply = errors.New("rpc: the peer sent no reply")
)

// RemoteError is what Call returns when the far side answered with an error
// reply: the request arrived but was refused or failed there. Calls are never
// retried on a RemoteError.
type RemoteError struct {
	From  Peer   // who answered
	Type  string // the reply's type (TypeError when the transport refused the request)
	ID    uint64
	Msg   string // the reply's Error field
	Reply *Envelope
}

// Error says who refused which request, and why.
func (e *RemoteError) Error() string {
	from := e.From.Addr
	if from == "" {
		from = "peer"
	}
	return fmt.Sprintf("rpc: %s answered %s %d with an error: %s", from, e.Type, e.ID, e.Msg)
}

// SplitAddr splits a peer address into its scheme and the rest ("host:port",
// or a name for mem://), checking its form: ws, coap and coaps addresses need a host
// (a DNS name, an IPv4 address or a bracketed IPv6 address) and a port; there
// is no path, query or user part.
func SplitAddr(addr string) (scheme, hostport string, err error) {
	scheme, rest, ok := strings.Cut(addr, "://")
	if !ok {
		return "", "", fmt.Errorf("%w: %q: want scheme://host:port", ErrBadAddr, addr)
	}
	switch scheme {
	case SchemeWS, SchemeCoAP, SchemeCoAPS:
		if err := checkHostPort(rest); err != nil {
			return "", "", fmt.Errorf("%w: %q: %v", ErrBadAddr, addr, err)
		}
	case SchemeMem:
		if !validName(rest) {
			return "", "", fmt.Errorf("%w: %q: want mem://name with letters, digits, '.', '-', '_' or ':'", ErrBadAddr, addr)
		}
	default:
		return "", "", fmt.Errorf("%w: %q: scheme must be ws, coap, coaps or mem", ErrBadAddr, addr)
	}
	return scheme, rest, nil
}

func checkHostPort(hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return errors.New("want host:port")
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 || port[0] == '0' {
		return fmt.Errorf("port %q: want 1-65535", port)
	}
	if strings.Contains(host, ":") {
		// SplitHostPort only yields a colon in host when it was bracketed.
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() || a.Zone() != "" {
			return fmt.Errorf("host %q: not an IPv6 address", host)
		}
		return nil
	}
	if host == "" || len(host) > 253 || !validName(host) || strings.ContainsRune(host, ':') ||
		host[0] == '-' || host[0] == '.' {
		return fmt.Errorf("host %q: not a host name or IP address", host)
	}
	return nil
}

func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '-' || c == '_' || c == ':') {
			return false
		}
	}
	return true
}

// isHexID reports whether s is 40 lowercase hexadecimal characters.
func isHexID(s string) bool {
	if len(s) != 40 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func checkHexID(field, s string) error {
	if !isHexID(s) {
		return fmt.Errorf("%w: %s %q: want 40 lowercase hex characters", ErrMalformed, field, clip(s))
	}
	return nil
}

// clip shortens what an error quotes from untrusted input.
func clip(s string) string {
	if len(s) > 48 {
		return s[:45] + "..."
	}
	return s
}
