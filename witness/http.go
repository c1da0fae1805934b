package witness

import (
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flownode/flownode/access"
	"github.com/flownode/flownode/checkpoint"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
	"github.com/flownode/flownode/ringledger"
)

// Routes are the service's HTTP routes, for the API's mux (api.Server.Handle).
func (s *Service) Routes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"GET /api/v1/records/{txID}/proof": s.getProof,
		"GET /api/v1/checkpoints":          s.getCheckpoints,
	}
}

// CheckpointInfo is one branch's checkpoint as the API shows it.
type CheckpointInfo struct {
	Branch     ledger.Key   `json:"branch"`
	Size       uint64       `json:"size"`
	Root       string       `json:"root"`
	Head       ledger.Hash  `json:"head"`
	Checkpoint string       `json:"checkpoint"` // the signed note, cosignatures included
	Cosigners  []ledger.Key `json:"cosigners"`
	Own        bool         `json:"own"` // this node's branch (else: one it witnesses)
}

// CheckpointList is the answer of GET /api/v1/checkpoints.
type CheckpointList struct {
	Checkpoints   []CheckpointInfo `json:"checkpoints"`
	Equivocations []*Evidence      `json:"equivocations"`
}

func (s *Service) info(c *checkpoint.Signed) CheckpointInfo {
	cos := c.Cosigners
	if cos == nil {
		cos = []ledger.Key{}
	}
	return CheckpointInfo{Branch: c.Branch(), Size: c.Size, Root: c.Root.String(), Head: c.Head,
		Checkpoint: string(c.Note), Cosigners: cos, Own: c.Branch() == s.n.ID()}
}

// getCheckpoints answers GET /api/v1/checkpoints: every checkpoint this node holds
// (its own branch's, and the newest it cosigned of each branch it witnesses) and
// the equivocations it found; ?branch=ID: that branch's checkpoint alone.
func (s *Service) getCheckpoints(w http.ResponseWriter, r *http.Request) {
	if !access.Check(s.cfg.Authorize, w, r, "", access.Read) {
		return
	}
	if q := r.URL.Query().Get("branch"); q != "" {
		branch, err := ledger.ParseKey(q)
		if err != nil {
			writeError(w, http.StatusBadRequest, "branch: "+err.Error())
			return
		}
		c, ok := s.Checkpoint(branch)
		if !ok {
			writeError(w, http.StatusNotFound, "this node holds no checkpoint of branch "+q+" (it holds its own and those of the branches it witnesses)")
			return
		}
		writeJSON(w, http.StatusOK, s.info(c))
		return
	}
	out := CheckpointList{Checkpoints: []CheckpointInfo{}, Equivocations: s.Equivocations()}
	if c := s.Own(); c != nil {
		out.Checkpoints = append(out.Checkpoints, s.info(c))
	}
	s.mu.Lock()
	for _, c := range s.seen {
		out.Checkpoints = append(out.Checkpoints, s.info(c))
	}
	s.mu.Unlock()
	sort.Slice(out.Checkpoints, func(i, j int) bool {
		a, b := out.Checkpoints[i], out.Checkpoints[j]
		if a.Own != b.Own {
			return a.Own
		}
		return a.Branch.Less(b.Branch)
	})
	writeJSON(w, http.StatusOK, out)
}

// getProof answers GET /api/v1/records/{txID}/proof.
func (s *Service) getProof(w http.ResponseWriter, r *http.Request) {
	txID, err := ledger.ParseHash(r.PathValue("txID"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "txID: "+err.Error())
		return
	}
	raw, err := s.n.Record(r.Context(), txID)
	if errors.Is(err, node.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no node holds record "+txID.String())
		return
	}
	var te *ledger.TamperedError
	if errors.As(err, &te) {
		// This node's stored copy no longer verifies (ringledger/stored.go): a
		// server error naming it, as GET /api/v1/records/{txID} answers.
		if access.Check(s.cfg.Authorize, w, r, te.Location.Thing, access.Read) {
			writeError(w, http.StatusInternalServerError, te.Error())
		}
		return
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "read record: "+err.Error())
		return
	}
	rec, err := ledger.ParseRecord(raw)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "record: "+err.Error())
		return
	}
	if !access.Check(s.cfg.Authorize, w, r, rec.Thing, access.Read) {
		return
	}
	p, err := s.proofOf(r.Context(), rec, raw)
	var ns *NotSealedError
	switch {
	case errors.As(err, &ns):
		w.Header().Set("Retry-After", retryAfter(s.g.Mining.MeanBlockTime))
		writeError(w, http.StatusConflict, ns.Reason)
	case errors.Is(err, errNoOwner):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, errBusy), unavailable(err):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case err != nil:
		writeError(w, http.StatusBadGateway, err.Error())
	default:
		writeJSON(w, http.StatusOK, p)
	}
}

// unavailable says whether a peer refused for now (its proof slots were taken).
func unavailable(err error) bool {
	var r *ringledger.Refusal
	return errors.As(err, &r) && r.Code == ringledger.CodeUnavailable
}

func retryAfter(d time.Duration) string { return strconv.Itoa(int(d.Seconds()) + 1) }

// Collectors are the service's metrics, for the API's registry.
func (s *Service) Collectors() []prometheus.Collector {
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	u := func(v interface{ Load() uint64 }) func() float64 { return func() float64 { return float64(v.Load()) } }
	return []prometheus.Collector{
		counter("flownode_checkpoints_published_total", "Checkpoints of this node's branch sent to a witness.", u(&s.stats.Published)),
		counter("flownode_checkpoint_cosignatures_total", "Cosignatures of this node's branch's checkpoints received from witnesses.", u(&s.stats.Cosigned)),
		counter("flownode_checkpoints_cosigned_total", "Checkpoints of other branches this node cosigned as a witness.", u(&s.stats.CosignedOther)),
		counter("flownode_checkpoints_refused_total", "Checkpoints this node refused to cosign.", u(&s.stats.Refused)),
		counter("flownode_equivocations_total", "Equivocations this node detected: a branch's owner signed two checkpoints that do not extend each other.", u(&s.stats.Equivocations)),
		counter("flownode_witness_messages_total", "Witnessing requests this node sent (checkpoints and proofs).", u(&s.stats.MessagesOut)),
		counter("flownode_witness_bytes_sent_total", "Bytes of the witnessing requests this node sent.", u(&s.stats.BytesOut)),
		counter("flownode_witness_bytes_received_total", "Bytes of the answers to them.", u(&s.stats.BytesIn)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flownode_equivocating_branches", Help: "Branches this node holds evidence of equivocation against (and refuses)."},
			func() float64 { return float64(len(s.Equivocations())) }),
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "could not encode the answer")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
