package api

import (
	"net/http"

	"github.com/flownode/flownode/node"
)

// BranchList is the answer to GET /api/v1/branches: the head of every branch
// this node's store holds blocks of. It is how the dashboard learns which
// chains to draw and where each one ends, without paging through
// GET /api/v1/blocks.
type BranchList struct {
	Branches []node.BlockRef `json:"branches"`
}

func (s *Server) getBranches(w http.ResponseWriter, r *http.Request) {
	heads, err := s.node.Branches()
	if err != nil {
		s.serverError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, BranchList{Branches: heads})
}
