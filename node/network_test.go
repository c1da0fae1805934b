package node

import (
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
)

// testAuthorities are the networks of this package's tests, one per mining
// rule set (profile), so that every test ring is one permissioned network.
var testAuthorities sync.Map // profile name → *network.Authority

func testAuthority(tb testing.TB, prof Profile) *network.Authority {
	tb.Helper()
	if a, ok := testAuthorities.Load(prof.Name); ok {
		return a.(*network.Authority)
	}
	a, err := network.NewAuthority("node-test", prof.Mining)
	if err != nil {
		tb.Fatal(err)
	}
	got, _ := testAuthorities.LoadOrStore(prof.Name, a)
	return got.(*network.Authority)
}

// admitted returns a fresh data directory admitted to the test network of prof.
func admitted(tb testing.TB, prof Profile) string {
	tb.Helper()
	dir := tb.TempDir()
	if _, err := testAuthority(tb, prof).AdmitDir(dir, time.Now().Add(time.Hour)); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// TestJoiningNeedsMembership: a data dir without a membership (empty, or only a
// node key) becomes a one-node network only when the node is not told to join;
// told to join, it is refused with a sentence naming flownode admit, and
// nothing is written.
func TestJoiningNeedsMembership(t *testing.T) {
	for _, keyOnly := range []bool{false, true} {
		dir := t.TempDir()
		if keyOnly {
			if _, _, err := ledger.LoadOrCreateIdentity(dir); err != nil {
				t.Fatal(err)
			}
		}
		_, err := loadNetwork(dir, "", LocalProfile().Mining, true, zap.NewNop())
		if err == nil || !strings.Contains(err.Error(), "cannot join a ring: admit it first with `flownode admit") {
			t.Errorf("key only %v: joining: %v", keyOnly, err)
		}
		for _, f := range []string{network.DescriptionFile, network.MembershipFile, network.AuthorityKeyFile} {
			if exists(dir, f) {
				t.Errorf("key only %v: joining wrote %s", keyOnly, f)
			}
		}
		m, err := loadNetwork(dir, "", LocalProfile().Mining, false, zap.NewNop())
		if err != nil || !exists(dir, network.AuthorityKeyFile) || m.Description().Name != ledger.DefaultNetwork {
			t.Errorf("key only %v: not joining: %v", keyOnly, err)
		}
	}
}
