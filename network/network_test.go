package network

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flownode/flownode/ledger"
)

var mining = ledger.MiningParams{Rate: 20, MeanBlockTime: time.Second, Variance: 0.2}

func TestInitAdmitLoad(t *testing.T) {
	adir, ndir := t.TempDir(), t.TempDir()
	a, err := Init(adir, "plant-7", mining)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Init(adir, "plant-7", mining); err == nil {
		t.Fatal("Init replaced an existing authority")
	}
	fi, err := os.Stat(filepath.Join(adir, AuthorityKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("authority.key: %v %v", fi, err)
	}
	again, err := LoadAuthority(adir)
	if err != nil || !again.Description.Equal(a.Description) {
		t.Fatalf("LoadAuthority: %v", err)
	}
	mem, err := again.AdmitDir(ndir, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	id, err := ledger.LoadIdentity(ndir)
	if err != nil || id.ID != mem.Node {
		t.Fatalf("node key: %v, membership for %s", err, mem.Node)
	}
	desc, loaded, err := LoadNode(ndir)
	if err != nil || !desc.Equal(a.Description) || loaded.Node != id.ID {
		t.Fatalf("LoadNode: %v", err)
	}
	// The genesis binds the authority: same name, other authority, other genesis.
	other, _ := NewAuthority("plant-7", mining)
	g1, _ := a.Description.Genesis()
	g2, _ := other.Description.Genesis()
	if g1.Hash == g2.Hash {
		t.Fatal("two authorities share a genesis")
	}
	if _, err := other.AdmitDir(ndir, time.Now().Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "belongs to network") {
		t.Fatalf("admitting a data dir of another network: %v", err)
	}
}

func TestMembershipChecks(t *testing.T) {
	a, _ := NewAuthority("net-a", mining)
	b, _ := NewAuthority("net-b", mining)
	same, _ := NewAuthority("net-a", mining) // same name, other key
	id, _ := ledger.GenerateIdentity(nil)
	self, _ := a.Admit(id.Public, time.Now().Add(time.Hour))
	m, err := NewMembers(a.Description, self, "")
	if err != nil {
		t.Fatal(err)
	}
	peer, _ := ledger.GenerateIdentity(nil)
	good, _ := a.Admit(peer.Public, time.Now().Add(time.Hour))
	got, err := m.Verify([]*x509.Certificate{good.Cert})
	if err != nil || got != peer.ID.Hex() {
		t.Fatalf("Verify a member: %q %v", got, err)
	}
	for name, mem := range map[string]*Membership{
		"other network":   must(b.Admit(peer.Public, time.Now().Add(time.Hour))),
		"other authority": must(same.Admit(peer.Public, time.Now().Add(time.Hour))),
	} {
		if _, err := m.Verify([]*x509.Certificate{mem.Cert}); !errors.Is(err, ErrNotMember) {
			t.Errorf("%s: Verify = %v, want ErrNotMember", name, err)
		}
	}
	if _, err := m.Verify(nil); err == nil {
		t.Error("Verify of no certificate passed")
	}
	// Expiry: valid until NotAfter, not after.
	short, _ := a.Admit(peer.Public, time.Now().Add(time.Second))
	if err := a.Description.Check(short, short.NotAfter.Add(time.Second)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired membership: %v", err)
	}
	// Revocation: refused from its time on; records before it still valid.
	if err := m.ValidAt(peer.ID, time.Now()); err != nil {
		t.Fatalf("ValidAt before revocation: %v", err)
	}
	before := time.Now().Add(-time.Millisecond * 5)
	r, _ := a.Revoke(peer.ID, "stolen gateway")
	forged := *r
	forged.Node = id.ID.Hex()
	if _, err := m.Revoke(&forged); err == nil {
		t.Fatal("a revocation with a changed node was accepted")
	}
	if _, err := m.Revoke(must(b.Revoke(peer.ID, "x"))); err == nil {
		t.Fatal("another network's revocation was accepted")
	}
	added, err := m.Revoke(r)
	if err != nil || !added {
		t.Fatalf("Revoke: %v %v", added, err)
	}
	if added, _ := m.Revoke(r); added {
		t.Fatal("the same revocation was new twice")
	}
	if _, err := m.Verify([]*x509.Certificate{good.Cert}); err == nil {
		t.Fatal("a revoked member was verified")
	}
	if err := m.ValidAt(peer.ID, before); err != nil {
		t.Fatalf("a record from before the revocation: %v", err)
	}
	if err := m.ValidAt(peer.ID, time.Now().Add(time.Second)); err == nil {
		t.Fatal("a record from after the revocation was valid")
	}
	if m.Refused()["revoked"] == 0 || m.Refused()["other network"] == 0 {
		t.Fatalf("refusals not counted: %v", m.Refused())
	}
}

func TestRevocationsPersist(t *testing.T) {
	dir := t.TempDir()
	a, _ := NewAuthority("net", mining)
	id, _ := ledger.GenerateIdentity(nil)
	self, _ := a.Admit(id.Public, time.Now().Add(time.Hour))
	m, _ := NewMembers(a.Description, self, dir)
	peer, _ := ledger.GenerateIdentity(nil)
	if _, err := m.Revoke(must(a.Revoke(peer.ID, "gone"))); err != nil {
		t.Fatal(err)
	}
	m2, err := NewMembers(a.Description, self, dir)
	if err != nil || !m2.Revoked(peer.ID) {
		t.Fatalf("revocation lost on reload: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestKnownMembershipsPersist: a node still knows the memberships it has seen
// after a restart, to check the signers of the records it holds.
func TestKnownMembershipsPersist(t *testing.T) {
	dir := t.TempDir()
	a, _ := NewAuthority("net", mining)
	id, _ := ledger.GenerateIdentity(nil)
	self, _ := a.Admit(id.Public, time.Now().Add(time.Hour))
	m, _ := NewMembers(a.Description, self, dir)
	peer, _ := ledger.GenerateIdentity(nil)
	pm, _ := a.Admit(peer.Public, time.Now().Add(time.Hour))
	if _, err := m.Verify([]*x509.Certificate{pm.Cert}); err != nil {
		t.Fatal(err)
	}
	m2, err := NewMembers(a.Description, self, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.ValidAt(peer.ID, time.Now()); err != nil {
		t.Fatalf("a membership seen before the restart: %v", err)
	}
	// Another network's membership planted in the file is not believed.
	other, _ := NewAuthority("net", mining)
	stranger, _ := ledger.GenerateIdentity(nil)
	sm, _ := other.Admit(stranger.Public, time.Now().Add(time.Hour))
	f, _ := os.OpenFile(filepath.Join(dir, KnownFile), os.O_APPEND|os.O_WRONLY, 0)
	f.Write(sm.PEM())
	f.Close()
	m3, _ := NewMembers(a.Description, self, dir)
	if _, ok := m3.Membership(stranger.ID); ok {
		t.Fatal("a foreign membership from the file was believed")
	}
}
