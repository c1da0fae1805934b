package api

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/flownode/flownode/ledger"
)

// GET /api/v1/branches names the head of every branch in the store: for a node
// alone, its own branch, whose head is the last block GET /api/v1/blocks lists.
func TestAPIBranches(t *testing.T) {
	tn := openTestNode(t, true, nil)
	// A block is mined only while records wait for a seal: put until the second.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; tn.n.Ledger().Stats().HeadNo < 2; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no second block within 30 s")
		}
		tn.putOne(t, fmt.Sprintf(`{"thing":"branches-test","data":%d}`, i))
		time.Sleep(20 * time.Millisecond)
	}
	var got BranchList
	wantJSON(t, "branches", tn.get(t, "/api/v1/branches"), http.StatusOK, &got)
	if len(got.Branches) != 1 || got.Branches[0].Branch != tn.n.ID() {
		t.Fatalf("branches: %+v, want the node's own alone", got.Branches)
	}
	head := got.Branches[0]
	var bl BlockList
	wantJSON(t, "the head block", tn.get(t, "/api/v1/blocks?from="+strconv.FormatUint(head.No, 10)), http.StatusOK, &bl)
	if len(bl.Blocks) == 0 {
		t.Fatalf("no block %d in the store", head.No)
	}
	b, err := ledger.ParseBlock(bl.Blocks[0])
	if err != nil {
		t.Fatal(err)
	}
	if b.No != head.No || b.Hash != head.Hash || b.Branch != head.Branch {
		t.Errorf("branches names block %d %s, the store holds %d %s there", head.No, head.Hash, b.No, b.Hash)
	}
}
