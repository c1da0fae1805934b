// Package witness holds every branch to its history. A node's owner side signs a
// checkpoint of its own branch's tree whenever the branch grows and hands it to
// its witnesses (its first k-1 successors, the members that replicate it) with a
// consistency proof from what each last saw; the witness side checks that proof,
// cosigns, and keeps the newest checkpoint it cosigned of each branch. A
// checkpoint that does not extend the one a witness holds is an equivocation:
// the witness keeps both signed notes as evidence, refuses the branch's new
// blocks from then on (ledger.RefuseBranch), counts it, logs an alert and shows
// it on the dashboard and in verify.
//
// It also serves what an auditor asks of one record: GET
// /api/v1/records/{txID}/proof (checkpoint.Proof), built by the record's branch
// owner, checked by the node that serves it; and the checkpoints it holds, GET
// /api/v1/checkpoints.
//
//	witness.go   the Service, its state and its stats
//	publish.go   the owner side: sign, send, merge cosignatures
//	cosign.go    the witness side: check, cosign, evidence
//	proof.go     inclusion proofs of records
//	http.go      the HTTP routes
package witness

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/access"
	"github.com/flownode/flownode/checkpoint"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/node"
)

// Peer ops.
const (
	opAdd   = "checkpoint.add"   // owner → witness: a new checkpoint to cosign
	opProof = "checkpoint.proof" // any node → a branch's owner: a record's proof
)

// Store meta names.
const (
	metaOwn      = "checkpoint"        // this branch's newest checkpoint, cosignatures merged
	metaSeen     = "witness/"          // + branch: the newest checkpoint this node cosigned
	metaEvidence = "witness-evidence/" // + branch: an equivocation's evidence (JSON)
	maxBody      = checkpoint.MaxProofSize
)

// Config is what the Service needs besides the node.
type Config struct {
	// Interval is how often the owner side looks for a grown branch to publish;
	// 0: the network's mean block time, at least a second.
	Interval  time.Duration
	Log       *zap.Logger
	Authorize access.Authorizer // the HTTP routes' credentials; nil: open
	Now       func() time.Time
	// Edges are URLs outside the ring that take this branch's checkpoints and
	// blocks as they grow (Flowchain's NOTIFY_EDGE, edge.go).
	Edges []string
}

// Service is one node's witnessing: both sides, and the proofs.
type Service struct {
	n   *node.Node
	l   *ledger.Ledger
	g   *ledger.Genesis
	cfg Config
	log *zap.Logger

	mu        sync.Mutex
	own       *checkpoint.Signed                // this branch's newest checkpoint
	witnessed map[ledger.Key]uint64             // per witness: the size it last cosigned
	seen      map[ledger.Key]*checkpoint.Signed // per branch: the newest this node cosigned
	evidence  map[ledger.Key]*Evidence

	stats Stats

	// building bounds the proofs this node builds at once: each reads every
	// record its block seals, so a flood of proof requests waits here (or is
	// refused with CodeUnavailable) instead of taking every core.
	building chan struct{}

	heldMu sync.Mutex
	held   map[ledger.Key]*heldTree // per branch: the tree of the blocks of it this node stores, last read (held.go)

	cancel   context.CancelFunc
	done     chan struct{}
	edgeDone chan struct{} // nil without edges
}

// Stats count the witnessing traffic of this node since start.
type Stats struct {
	Published     atomic.Uint64 // checkpoints sent to a witness
	Cosigned      atomic.Uint64 // cosignatures received for this branch
	CosignedOther atomic.Uint64 // checkpoints of other branches this node cosigned
	Refused       atomic.Uint64 // checkpoints this node refused to cosign
	Equivocations atomic.Uint64 // equivocations detected
	MessagesOut   atomic.Uint64 // witnessing ops sent (each a request and its answer)
	BytesOut      atomic.Uint64 // their request bodies
	BytesIn       atomic.Uint64 // their answers
}

// Evidence is an equivocation: two checkpoints of one branch, both signed by its
// owner, that do not extend each other. Anyone holding the network's
// description can check both signatures.
type Evidence struct {
	Branch     ledger.Key  `json:"branch"`
	Kind       string      `json:"kind"`   // "fork": the two do not extend each other
	First      string      `json:"first"`  // the checkpoint this node had cosigned, or a block of the branch it stores (signed by the owner) that the second one does not hold
	Second     string      `json:"second"` // the one that does not extend it
	Reason     string      `json:"reason"`
	Detected   time.Time   `json:"detected"`
	FirstHead  ledger.Hash `json:"firstHead"`
	SecondHead ledger.Hash `json:"secondHead"`
}

// New makes the Service, loads what it kept, registers its peer ops and starts the
// owner side. Close stops it.
func New(n *node.Node, cfg Config) (*Service, error) {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := n.Ledger()
	if err := ParseEdges(cfg.Edges); err != nil {
		return nil, err
	}
	if cfg.Interval <= 0 {
		cfg.Interval = max(l.Genesis().Mining.MeanBlockTime, time.Second)
	}
	s := &Service{n: n, l: l, g: l.Genesis(), cfg: cfg, log: cfg.Log,
		witnessed: map[ledger.Key]uint64{}, seen: map[ledger.Key]*checkpoint.Signed{}, evidence: map[ledger.Key]*Evidence{},
		building: make(chan struct{}, max(runtime.GOMAXPROCS(0)/2, 1))}
	if err := s.load(); err != nil {
		return nil, err
	}
	n.HandleOp(opAdd, s.handleAdd)
	n.HandleOp(opProof, s.handleProof)
	n.AddVerifyCheck(s.addAlerts)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go s.publishLoop(ctx)
	if len(cfg.Edges) > 0 {
		s.edgeDone = make(chan struct{})
		go func() {
			defer close(s.edgeDone)
			s.edgeLoop(ctx, cfg.Edges)
		}()
	}
	return s, nil
}

// Close stops the owner side.
func (s *Service) Close() {
	s.cancel()
	<-s.done
	if s.edgeDone != nil {
		<-s.edgeDone
	}
}

// keys is the members' keys as this node knows them (network.Members).
func (s *Service) keys(id ledger.Key) (ed25519.PublicKey, bool) {
	m, ok := s.n.Members().Membership(id)
	if !ok {
		return nil, false
	}
	return m.Public, true
}

// load reads the checkpoints and evidence kept in the store, and refuses the
// branches the evidence names again.
func (s *Service) load() error {
	st := s.l.Store()
	if raw, err := st.Meta(metaOwn); err == nil {
		if c, err := checkpoint.Open(raw, s.g.Hash, s.keys); err == nil {
			s.own = c
		} else {
			s.log.Warn("the kept checkpoint of this branch does not open; a new one will be signed", zap.Error(err))
		}
	}
	for _, id := range s.n.Members().Known() {
		branch := id.ID
		if raw, err := st.Meta(metaSeen + branch.String()); err == nil {
			if c, err := checkpoint.Open(raw, s.g.Hash, s.keys); err == nil {
				s.seen[branch] = c
			}
		}
		if raw, err := st.Meta(metaEvidence + branch.String()); err == nil {
			var e Evidence
			if err := json.Unmarshal(raw, &e); err == nil {
				s.evidence[branch] = &e
				s.l.RefuseBranch(branch, "its owner equivocated: "+e.Reason)
			}
		}
	}
	return nil
}

func (s *Service) saveMeta(name string, v []byte) error {
	return s.l.Store().Write(context.Background(), storeMeta(name, v))
}

// Own is this branch's newest checkpoint (nil before the first is signed).
func (s *Service) Own() *checkpoint.Signed {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.own
}

// Checkpoint is the newest checkpoint of branch this node holds: its own, or the
// newest it cosigned as a witness.
func (s *Service) Checkpoint(branch ledger.Key) (*checkpoint.Signed, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if branch == s.n.ID() {
		return s.own, s.own != nil
	}
	c, ok := s.seen[branch]
	return c, ok
}

// Equivocations lists the evidence this node holds.
func (s *Service) Equivocations() []*Evidence {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Evidence, 0, len(s.evidence))
	for _, e := range s.evidence {
		out = append(out, e)
	}
	return out
}

// Stats returns the counters.
func (s *Service) Stats() *Stats { return &s.stats }

// call sends a witnessing op and counts it.
func (s *Service) call(ctx context.Context, p node.Peer, op string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	s.stats.MessagesOut.Add(1)
	s.stats.BytesOut.Add(uint64(len(b)))
	var raw json.RawMessage
	if err := s.n.CallOp(ctx, p, op, json.RawMessage(b), &raw); err != nil {
		return err
	}
	s.stats.BytesIn.Add(uint64(len(raw)))
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s answer from %s: %w", op, p.ID.Short(), err)
	}
	return nil
}

var errNoOwner = errors.New("the branch's owner is not in the ring")

// addAlerts is the service's verify check: each equivocation makes the report
// invalid, with the evidence.
func (s *Service) addAlerts(rep *ledger.Report) {
	for _, e := range s.Equivocations() {
		b, _ := json.Marshal(e)
		rep.Alert(ledger.Alert{Kind: "equivocation", Branch: e.Branch, Evidence: b,
			Detail: fmt.Sprintf("its owner signed two checkpoints that do not extend each other (%s: %s), detected %s; its new blocks are refused",
				e.Kind, e.Reason, e.Detected.Format(time.RFC3339))},
			"head "+e.FirstHead.String(), "head "+e.SecondHead.String())
	}
}
