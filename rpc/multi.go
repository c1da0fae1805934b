package rpc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Multi is a Transport that picks, for each destination, the transport of
// its address scheme (ws:// to WS, coap:// and coaps:// to CoAP, mem:// to
// MemTransport), so that a ring may mix transports. A node listening on WS and CoAP at once
// builds both with the same Handler and puts them in a Multi.
type Multi struct {
	byScheme map[string]Transport
}

// NewMulti returns a Multi over transports keyed by scheme (SchemeWS,
// SchemeCoAP, SchemeCoAPS, SchemeMem). Close closes them all.
func NewMulti(byScheme map[string]Transport) *Multi {
	return &Multi{byScheme: maps.Clone(byScheme)}
}

func (m *Multi) pick(addr string) (Transport, error) {
	scheme, _, err := SplitAddr(addr)
	if err != nil {
		return nil, err
	}
	t := m.byScheme[scheme]
	if t == nil {
		return nil, fmt.Errorf("%w: %q: no %s transport here (have %v)", ErrBadAddr, addr, scheme, slices.Sorted(maps.Keys(m.byScheme)))
	}
	return t, nil
}

// Send implements Transport.
func (m *Multi) Send(ctx context.Context, addr string, env *Envelope) error {
	t, err := m.pick(addr)
	if err != nil {
		return opErr("send", env, addr, err)
	}
	return t.Send(ctx, addr, env)
}

// Call implements Transport.
func (m *Multi) Call(ctx context.Context, addr string, env *Envelope) (*Envelope, error) {
	t, err := m.pick(addr)
	if err != nil {
		return nil, opErr("call", env, addr, err)
	}
	return t.Call(ctx, addr, env)
}

// Close implements Transport: it closes every transport.
func (m *Multi) Close() error {
	var errs []error
	for _, t := range m.byScheme {
		errs = append(errs, t.Close())
	}
	return errors.Join(errs...)
}

// Stats returns the sum of the counters of the transports that keep them.
func (m *Multi) Stats() Stats {
	var s Stats
	for _, t := range m.byScheme {
		if st, ok := t.(interface{ Stats() Stats }); ok {
			s = s.Add(st.Stats())
		}
	}
	return s
}
