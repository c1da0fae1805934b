package api

import (
	"net/http"

	"github.com/flownode/flownode/node"
)

// maxRevocationBody bounds POST /api/v1/network/revocations: one revocation is a
// few hundred bytes (its reason at most 256).
const maxRevocationBody = 4 << 10

// RevocationAnswer is the answer to POST /api/v1/network/revocations: whether the
// revocation was new to this node (false: it already held it).
type RevocationAnswer struct {
	Accepted bool `json:"accepted"`
}

func (s *Server) getNetwork(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.node.Network())
}

// postRevocation takes a revocation from an operator (flownode revoke). Anyone
// may post one: the node acts only on a revocation its network's authority
// signed (node.Revoke checks the signature), and then spreads it to its peers.
func (s *Server) postRevocation(w http.ResponseWriter, r *http.Request) {
	var rev node.Revocation
	if code, err := decodeBody(w, r, maxRevocationBody, &rev); err != nil {
		writeError(w, code, err.Error())
		return
	}
	added, err := s.node.Revoke(r.Context(), &rev)
	if err != nil {
		writeError(w, http.StatusBadRequest, "revocation refused: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, RevocationAnswer{Accepted: added})
}
