package network

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/flownode/flownode/ledger"
)

// RevocationsFile is where a node keeps the revocations it holds, in its data
// directory.
const RevocationsFile = "revocations.json"

// KnownFile is where a node keeps the memberships of the peers it has seen
// (PEM certificates), in its data directory: after a restart it must still
// check the signers of the records it holds, even those of a node it cannot
// reach now.
const KnownFile = "members.pem"

// maxKnown bounds the memberships a node remembers: a network of gateways has tens to
// thousands of nodes, and memberships are re-learned at each handshake.
const maxKnown = 4096

// maxRevocations bounds the revocations a node keeps.
const maxRevocations = 4096

// Members is a node's view of its network: the description, its own membership, the
// memberships of the peers it has authenticated or been shown, and the revocations it
// holds. It is safe for concurrent use.
type Members struct {
	desc *Description
	self *Membership
	dir  string // where revocations.json is kept; "" keeps them in memory
	now  func() time.Time

	mu       sync.RWMutex
	known    map[ledger.Key]*Membership
	revoked  map[ledger.Key]*Revocation
	tokens   map[string]*Revocation // revoked tokens, by token ID
	refused  map[string]uint64      // refusals by reason, for metrics
	onRevoke []func(ledger.Key)
}

// NewMembers makes a node's view of its network. self is the node's own membership;
// it must be of desc's network. dir is the node's data directory, where revocations
// are kept ("": in memory only).
func NewMembers(desc *Description, self *Membership, dir string) (*Members, error) {
	if err := desc.Validate(); err != nil {
		return nil, err
	}
	m := &Members{desc: desc, self: self, dir: dir, now: time.Now,
		known: map[ledger.Key]*Membership{}, revoked: map[ledger.Key]*Revocation{}, tokens: map[string]*Revocation{}, refused: map[string]uint64{}}
	if err := desc.Check(self, self.NotBefore.Add(time.Minute)); err != nil {
		return nil, fmt.Errorf("this node's own membership: %w", err)
	}
	m.known[self.Node] = self
	if dir != "" {
		if err := m.loadRevocations(); err != nil {
			return nil, err
		}
		m.loadKnown()
	}
	return m, nil
}

// Description returns the network's description.
func (m *Members) Description() *Description { return m.desc }

// Self returns this node's membership.
func (m *Members) Self() *Membership { return m.self }

// CheckSelf says why this node cannot take part now (its membership expired or was
// revoked), or nil.
func (m *Members) CheckSelf() error {
	if err := m.desc.Check(m.self, m.now()); err != nil {
		return err
	}
	m.mu.RLock()
	r := m.revoked[m.self.Node]
	m.mu.RUnlock()
	if r != nil {
		return fmt.Errorf("%w: this node was revoked at %s (%s)", ErrNotMember, r.At().UTC().Format(time.RFC3339), r.Reason)
	}
	return nil
}

// Certificate is this node's TLS certificate: its membership with its node key.
func (m *Members) Certificate(id *ledger.Identity) (tls.Certificate, error) {
	if ledger.NodeID(id.Public) != m.self.Node {
		return tls.Certificate{}, fmt.Errorf("the membership is for node %s, but this node's key is node %s", m.self.Node.Short(), id.ID.Short())
	}
	return tls.Certificate{Certificate: [][]byte{m.self.DER()}, PrivateKey: id.Private, Leaf: m.self.Cert}, nil
}

// Verify authenticates a peer from the certificate chain it presented in a handshake
// (leaf first): the leaf must be a membership of this network, valid now and not
// revoked. It returns the peer's node ID (hex) and remembers its membership. The
// handshake itself proved that the peer holds the membership's key.
func (m *Members) Verify(chain []*x509.Certificate) (string, error) {
	if len(chain) == 0 {
		return "", m.refuse("no certificate", fmt.Errorf("%w: the peer presented no membership", ErrNotMember))
	}
	mem, err := ParseMembership(chain[0].Raw)
	if err != nil {
		return "", m.refuse("malformed", err)
	}
	if err := m.Admitted(mem, m.now()); err != nil {
		return "", err
	}
	m.remember(mem)
	return mem.Node.Hex(), nil
}

// Admitted checks that mem is a membership of this network valid at t whose node
// was not revoked by t, and counts a refusal.
func (m *Members) Admitted(mem *Membership, t time.Time) error {
	if err := m.desc.Check(mem, t); err != nil {
		reason := "not signed by the authority"
		switch {
		case mem.Network != m.desc.Name:
			reason = "other network"
		case t.Before(mem.NotBefore) || t.After(mem.NotAfter):
			reason = "expired"
		}
		return m.refuse(reason, err)
	}
	m.mu.RLock()
	r := m.revoked[mem.Node]
	m.mu.RUnlock()
	if r != nil && !t.Before(r.At()) {
		return m.refuse("revoked", fmt.Errorf("%w: node %s was revoked at %s", ErrNotMember, mem.Node.Short(), r.At().UTC().Format(time.RFC3339)))
	}
	return nil
}

// Learn checks a membership a peer showed (DER) and remembers it.
func (m *Members) Learn(der []byte) (*Membership, error) {
	mem, err := ParseMembership(der)
	if err != nil {
		return nil, err
	}
	if err := m.desc.Check(mem, mem.NotBefore.Add(time.Minute)); err != nil {
		return nil, err
	}
	m.remember(mem)
	return mem, nil
}

// remember keeps a membership whose signature the caller has checked.
func (m *Members) remember(mem *Membership) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old := m.known[mem.Node]; old != nil && !mem.NotAfter.After(old.NotAfter) {
		return
	}
	if len(m.known) >= maxKnown {
		for id, old := range m.known { // forget an expired one, else any but this node
			if id != m.self.Node && (old.NotAfter.Before(m.now()) || len(m.known) >= maxKnown) {
				delete(m.known, id)
				break
			}
		}
	}
	m.known[mem.Node] = mem
	m.saveKnownLocked()
}

// saveKnownLocked writes the known memberships to KnownFile; m.mu is held.
// A write that fails costs only a re-learning after a restart.
func (m *Members) saveKnownLocked() {
	if m.dir == "" {
		return
	}
	var b []byte
	for _, mem := range m.known {
		b = append(b, mem.PEM()...)
	}
	_ = ledger.WriteFileSynced(filepath.Join(m.dir, KnownFile), b, 0o644)
}

// loadKnown reads KnownFile; a membership in it that does not check (another
// network's, a damaged one) is skipped.
func (m *Members) loadKnown() {
	b, err := os.ReadFile(filepath.Join(m.dir, KnownFile))
	if err != nil {
		return
	}
	for len(b) > 0 && len(m.known) < maxKnown {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return
		}
		mem, err := ParseMembership(blk.Bytes)
		if err != nil || m.desc.Check(mem, mem.NotBefore.Add(time.Minute)) != nil {
			continue
		}
		if old := m.known[mem.Node]; old == nil || mem.NotAfter.After(old.NotAfter) {
			m.known[mem.Node] = mem
		}
	}
}

// Membership returns the membership of node id this node has seen, if any.
func (m *Members) Membership(id ledger.Key) (*Membership, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	mem, ok := m.known[id]
	return mem, ok
}

// ValidAt says whether node id was a member at t, as far as this node knows: its
// membership is known and valid at t, and it was not revoked by t. This is the check
// on a record's signer at the record's time, made for every record a node takes, so
// it does not verify the membership's signature again: every membership in known
// had it checked on the way in (NewMembers, Verify, Learn, loadKnown).
func (m *Members) ValidAt(id ledger.Key, t time.Time) error {
	mem, ok := m.Membership(id)
	if !ok {
		return fmt.Errorf("%w: node %s has no membership this node knows", ErrNotMember, id.Short())
	}
	m.mu.RLock()
	r := m.revoked[id]
	m.mu.RUnlock()
	if err := m.desc.checkWindow(mem, t); err != nil {
		return err
	}
	if r != nil && !t.Before(r.At()) {
		return fmt.Errorf("%w: node %s was revoked at %s", ErrNotMember, id.Short(), r.At().UTC().Format(time.RFC3339))
	}
	return nil
}

// Current says whether node id is a member now.
func (m *Members) Current(id ledger.Key) error { return m.ValidAt(id, m.now()) }

// Revoke accepts a revocation: it checks the authority's signature, keeps it (on disk
// first), and tells the OnRevoke callbacks. It reports whether it was new.
func (m *Members) Revoke(r *Revocation) (bool, error) {
	if err := m.desc.CheckRevocation(r); err != nil {
		return false, err
	}
	if r.Token != "" {
		return m.revokeToken(r)
	}
	id, _ := r.ID()
	m.mu.Lock()
	if old := m.revoked[id]; old != nil && old.Time <= r.Time {
		m.mu.Unlock()
		return false, nil
	}
	if len(m.revoked)+len(m.tokens) >= maxRevocations {
		m.mu.Unlock()
		return false, errors.New("revocation list is full")
	}
	m.revoked[id] = r
	err := m.saveRevocationsLocked()
	if err != nil {
		delete(m.revoked, id)
	}
	callbacks := append([]func(ledger.Key){}, m.onRevoke...)
	m.mu.Unlock()
	if err != nil {
		return false, err
	}
	for _, f := range callbacks {
		f(id)
	}
	return true, nil
}

// revokeToken keeps a checked token revocation. Tokens have no callbacks:
// CheckToken consults the list on every request.
func (m *Members) revokeToken(r *Revocation) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old := m.tokens[r.Token]; old != nil && old.Time <= r.Time {
		return false, nil
	}
	if len(m.revoked)+len(m.tokens) >= maxRevocations {
		return false, errors.New("revocation list is full")
	}
	prev := m.tokens[r.Token]
	m.tokens[r.Token] = r
	if err := m.saveRevocationsLocked(); err != nil {
		if prev != nil {
			m.tokens[r.Token] = prev
		} else {
			delete(m.tokens, r.Token)
		}
		return false, err
	}
	return true, nil
}

// TokenRevoked returns the revocation of the token with that ID, if this node
// holds one.
func (m *Members) TokenRevoked(id string) (*Revocation, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.tokens[id]
	return r, r != nil
}

// CheckToken checks a bearer token against the network: the authority's
// signature, its validity now, and that it is not revoked.
func (m *Members) CheckToken(bearer string) (*Token, error) {
	t, err := m.desc.ParseToken(bearer)
	if err != nil {
		return nil, err
	}
	return t, m.CheckTokenNow(t)
}

// CheckTokenNow checks a parsed token's time and revocation (tokens cached
// after their signature was checked come here on each use).
func (m *Members) CheckTokenNow(t *Token) error {
	if err := t.Current(m.now()); err != nil {
		return err
	}
	if r, ok := m.TokenRevoked(t.ID); ok {
		return fmt.Errorf("token %s was revoked at %s", t.ID, r.At().UTC().Format(time.RFC3339))
	}
	return nil
}

// OnRevoke registers f to be called (outside any lock) with each newly revoked node.
func (m *Members) OnRevoke(f func(ledger.Key)) {
	m.mu.Lock()
	m.onRevoke = append(m.onRevoke, f)
	m.mu.Unlock()
}

// Revocations returns the revocations this node holds, oldest first.
func (m *Members) Revocations() []*Revocation {
	m.mu.RLock()
	out := make([]*Revocation, 0, len(m.revoked)+len(m.tokens))
	for _, r := range m.revoked {
		out = append(out, r)
	}
	for _, r := range m.tokens {
		out = append(out, r)
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Time != out[j].Time {
			return out[i].Time < out[j].Time
		}
		return out[i].Subject() < out[j].Subject()
	})
	return out
}

// Revoked reports whether node id is revoked.
func (m *Members) Revoked(id ledger.Key) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.revoked[id] != nil
}

// MemberInfo describes one membership this node knows, for the API and dashboard.
type MemberInfo struct {
	ID      ledger.Key `json:"id"`
	Expires time.Time  `json:"expires"`
	Revoked *time.Time `json:"revoked,omitempty"`
	// Cert is the membership certificate (DER, base64 in JSON): with the
	// network's authority key anyone can check it (Description.Check).
	Cert []byte `json:"cert,omitempty"`
}

// Known lists the memberships this node knows, by ID.
func (m *Members) Known() []MemberInfo {
	m.mu.RLock()
	out := make([]MemberInfo, 0, len(m.known))
	for id, mem := range m.known {
		mi := MemberInfo{ID: id, Expires: mem.NotAfter.UTC(), Cert: mem.DER()}
		if r := m.revoked[id]; r != nil {
			at := r.At().UTC()
			mi.Revoked = &at
		}
		out = append(out, mi)
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID.Less(out[j].ID) })
	return out
}

// Refused returns how many peers were refused, by reason.
func (m *Members) Refused() map[string]uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[string]uint64, len(m.refused))
	for k, v := range m.refused {
		out[k] = v
	}
	return out
}

func (m *Members) refuse(reason string, err error) error {
	m.mu.Lock()
	m.refused[reason]++
	m.mu.Unlock()
	return err
}

func (m *Members) loadRevocations() error {
	b, err := os.ReadFile(filepath.Join(m.dir, RevocationsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var list []*Revocation
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("%s is damaged: %w", filepath.Join(m.dir, RevocationsFile), err)
	}
	for _, r := range list {
		if err := m.desc.CheckRevocation(r); err != nil {
			return fmt.Errorf("%s: %w", filepath.Join(m.dir, RevocationsFile), err)
		}
		if r.Token != "" {
			m.tokens[r.Token] = r
			continue
		}
		id, _ := r.ID()
		m.revoked[id] = r
	}
	return nil
}

func (m *Members) saveRevocationsLocked() error {
	if m.dir == "" {
		return nil
	}
	list := make([]*Revocation, 0, len(m.revoked)+len(m.tokens))
	for _, r := range m.revoked {
		list = append(list, r)
	}
	for _, r := range m.tokens {
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Subject() < list[j].Subject() })
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	return ledger.WriteFileSynced(filepath.Join(m.dir, RevocationsFile), append(b, '\n'), 0o644)
}

// LoadNode reads the network a node's data directory belongs to: its description and
// its membership, checked against each other. Either file missing is an error
// wrapping fs.ErrNotExist.
func LoadNode(dir string) (*Description, *Membership, error) {
	d, err := LoadDescription(dir)
	if err != nil {
		return nil, nil, err
	}
	mem, err := LoadMembership(dir)
	if err != nil {
		return nil, nil, err
	}
	if err := d.Check(mem, mem.NotBefore.Add(time.Minute)); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", filepath.Join(dir, MembershipFile), err)
	}
	return d, mem, nil
}
