package node

import (
	"sync"
	"testing"
	"time"

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
