package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
	"github.com/flownode/flownode/node"
)

// TestNetworkAndRevocations: GET /api/v1/network describes the node's network;
// POST /api/v1/network/revocations takes a revocation its authority signed
// once (accepted, then already held), refuses others, and /metrics counts it.
func TestNetworkAndRevocations(t *testing.T) {
	tn := openTestNode(t, false, nil)
	var info node.NetworkInfo
	if a := tn.get(t, "/api/v1/network"); a.code != http.StatusOK || json.Unmarshal(a.body, &info) != nil {
		t.Fatalf("GET /api/v1/network: %d %s", a.code, a.body)
	}
	self := tn.n.Self().ID
	if info.Name != ledger.DefaultNetwork || len(info.Members) != 1 || info.Members[0].ID != self || info.Expires.IsZero() {
		t.Errorf("GET /api/v1/network: %+v", info)
	}
	var ni NodeInfo
	if err := json.Unmarshal(tn.get(t, "/api/v1/node").body, &ni); err != nil || ni.Authority != info.Authority || !ni.MembershipExpires.Equal(info.Expires) {
		t.Errorf("/api/v1/node: authority %q expires %v, want %q %v (%v)", ni.Authority, ni.MembershipExpires, info.Authority, info.Expires, err)
	}

	auth, err := network.LoadAuthority(tn.dir)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ledger.ParseKey(strings.Repeat("ab", 20))
	rev, err := auth.Revoke(other, "test")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(rev)
	for _, want := range []string{`{"accepted":true}`, `{"accepted":false}`} {
		if a := tn.post(t, "/api/v1/network/revocations", string(body)); a.code != http.StatusOK || strings.TrimSpace(string(a.body)) != want {
			t.Errorf("POST a revocation: %d %s, want 200 %s", a.code, a.body, want)
		}
	}
	foreign, _ := network.NewAuthority(ledger.DefaultNetwork, node.LocalProfile().Mining)
	frev, _ := foreign.Revoke(self, "")
	fbody, _ := json.Marshal(frev)
	if a := tn.post(t, "/api/v1/network/revocations", string(fbody)); a.code != http.StatusBadRequest || !strings.Contains(string(a.body), "not signed by this network's authority") {
		t.Errorf("POST a foreign revocation: %d %s", a.code, a.body)
	}
	if tn.n.Members().CheckSelf() != nil {
		t.Error("a foreign revocation revoked this node")
	}
	metrics := string(tn.get(t, "/metrics").body)
	for _, want := range []string{"flownode_revocations 1", "flownode_members_known 1"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
