package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/flownode/flownode/ledger"
)

// BlockRecordList is the answer to GET /api/v1/blocks/{branch}/{no}/records: the
// records attached to one block, from this node's store, in position order.
type BlockRecordList struct {
	Records []BlockRecord `json:"records"`
}

// BlockRecord is one entry of a BlockRecordList. Record is the record's stored
// bytes verbatim, absent when the store holds the attachment but not the record
// (it was lost here); then Key is the record's data key when the ring's txID
// pointer still names it.
type BlockRecord struct {
	Seq    uint64          `json:"seq,string"`
	TxID   ledger.Hash     `json:"txID"`
	Key    *ledger.Key     `json:"key,omitempty"`
	Record json.RawMessage `json:"record,omitempty"`
}

// getBlockRecords lists a block's records. The next block's seal covers exactly
// these (ledger.MerkleRoot over their leaf hashes): flownode audit checks it.
func (s *Server) getBlockRecords(w http.ResponseWriter, r *http.Request) {
	branch, err := ledger.ParseKey(r.PathValue("branch"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "branch: "+err.Error())
		return
	}
	no, err := strconv.ParseUint(r.PathValue("no"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "a block number is a whole number (0 or more)")
		return
	}
	recs, err := s.node.BlockRecords(r.Context(), branch, no)
	if err != nil {
		s.serverError(w, err)
		return
	}
	out := BlockRecordList{Records: make([]BlockRecord, len(recs))}
	for i, a := range recs {
		out.Records[i] = BlockRecord{Seq: a.Seq, TxID: a.TxID, Key: a.Key, Record: a.Record}
	}
	writeJSON(w, http.StatusOK, out)
}
