package api

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/flownode/flownode/ledger"
)

// TestAPIBlockRecords: GET /api/v1/blocks/{branch}/{no}/records lists a block's
// records as stored, in position order, and the next block's seal is the
// Merkle root of their leaf hashes.
func TestAPIBlockRecords(t *testing.T) {
	tn := openTestNode(t, true, nil)
	byBlock := map[uint64][]ledger.Hash{}
	for i := range 6 {
		rc := tn.putOne(t, fmt.Sprintf(`{"thing":"blockrecords","data":%d}`, i))
		byBlock[rc.Block.No] = append(byBlock[rc.Block.No], rc.TxID)
	}
	var last uint64
	for no := range byBlock {
		last = max(last, no)
	}
	deadline := time.Now().Add(30 * time.Second)
	for tn.n.Ledger().Stats().HeadNo <= last {
		if time.Now().After(deadline) {
			t.Fatalf("block %d not sealed within 30 s", last)
		}
		time.Sleep(20 * time.Millisecond)
	}
	branch := tn.n.ID().String()
	for no, txIDs := range byBlock {
		var l BlockRecordList
		wantJSON(t, "block records", tn.get(t, fmt.Sprintf("/api/v1/blocks/%s/%d/records", branch, no)), http.StatusOK, &l)
		if len(l.Records) != len(txIDs) {
			t.Fatalf("block %d lists %d records, %d were put into it", no, len(l.Records), len(txIDs))
		}
		leaves := make([]ledger.Hash, len(l.Records))
		for i, e := range l.Records {
			r, err := ledger.ParseRecord(e.Record)
			if err != nil || r.TxID != e.TxID || r.Seq != e.Seq || r.Block.No != no || e.Key != nil {
				t.Fatalf("block %d entry %d: %+v (%v)", no, i, e, err)
			}
			if i > 0 && e.Seq <= l.Records[i-1].Seq {
				t.Errorf("block %d: positions not ascending at entry %d", no, i)
			}
			stored, err := tn.n.LocalRecord(e.TxID)
			if err != nil || !bytes.Equal(stored, e.Record) {
				t.Errorf("block %d entry %d: not the stored bytes (%v)", no, i, err)
			}
			leaves[i] = ledger.LeafHash(e.Record)
		}
		raws, err := tn.n.Blocks(tn.n.ID(), no+1, 1)
		if err != nil || len(raws) != 1 {
			t.Fatalf("block %d: %v", no+1, err)
		}
		next, err := ledger.ParseBlock(raws[0])
		if err != nil {
			t.Fatal(err)
		}
		if root := ledger.MerkleRoot(leaves); root != next.Seal || next.Sealed != uint64(len(leaves)) {
			t.Errorf("block %d seals %d records with root %s; the listed ones give %d, %s", no+1, next.Sealed, next.Seal, len(leaves), root)
		}
	}
	var empty BlockRecordList
	wantJSON(t, "an unknown block", tn.get(t, fmt.Sprintf("/api/v1/blocks/%s/%d/records", branch, last+1000)), http.StatusOK, &empty)
	if len(empty.Records) != 0 {
		t.Errorf("an unknown block lists %d records", len(empty.Records))
	}
	wantError(t, "bad branch", tn.get(t, "/api/v1/blocks/zz/1/records"), http.StatusBadRequest, "branch")
	wantError(t, "bad number", tn.get(t, "/api/v1/blocks/"+branch+"/-1/records"), http.StatusBadRequest, "block number")
}
