package audit

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
	"github.com/flownode/flownode/node"
)

// Config says what to audit and where to write the merged branch.
type Config struct {
	Node    string               // URL of the node to ask (its HTTP API)
	Network *network.Description // the network pinned by the auditor; nil: the node's word
	From    time.Time            // blocks with From ≤ time; zero: from genesis
	To      time.Time            // and time < To; zero: up to each owner's head at the walk
	Token   string               // bearer token for nodes that want one for reads
	Out     io.Writer            // the audit file
	Workers int                  // concurrent requests for the blocks' records; ≤ 0: 4
	Now     func() time.Time     // the walk's time for the header; nil: time.Now
}

// auditor is the state of one Run.
type auditor struct {
	cfg      Config
	c        *client
	base     string // the node asked
	desc     network.Description
	g        *ledger.Genesis
	proof    ledger.ProofCheck
	from, to int64    // unix ns; 0: no bound
	ring     []Holder // the ring walk, by ID
}

// Run audits the ring the node at cfg.Node belongs to: it walks the ring, reads
// every branch from its owner, checks each from genesis and against the
// checkpoints its witnesses cosigned, gathers and checks the
// records every seal in the window covers, and writes the merged branch to
// cfg.Out (docs/merged.md). A Report that is not Valid names the first failure
// (nothing is written then); one that is not Complete lists what the ring could
// not supply. An error means the audit could not be made (a node did not answer).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	a := &auditor{cfg: cfg, c: newClient(cfg.Token, 5*time.Minute), base: httpBase(cfg.Node)}
	if a.base == "" {
		return nil, fmt.Errorf("node %q is not an http:// URL", cfg.Node)
	}
	if !cfg.From.IsZero() {
		a.from = cfg.From.UnixNano()
	}
	if !cfg.To.IsZero() {
		a.to = cfg.To.UnixNano()
	}
	info, err := a.c.network(ctx, a.base)
	if err != nil {
		return nil, err
	}
	if err := a.network(info); err != nil {
		return nil, err
	}
	branches, err := a.walk(ctx)
	if err != nil {
		return nil, err
	}
	rep := &Report{Branches: len(branches)}
	for _, b := range branches {
		a.fetchCheckpoints(ctx, b)
		if err := a.fetchBlocks(ctx, b); err != nil {
			return nil, err
		}
		if f := a.checkChain(b); f != nil {
			return rep.invalid(f), nil
		}
		a.window(b)
		if f := a.checkMember(ctx, b, info.Members); f != nil {
			return rep.invalid(f), nil
		}
	}
	keys := memberKeys(branches)
	for _, b := range branches {
		ok, f := a.checkWitnessed(b, keys)
		if f != nil {
			return rep.invalid(f), nil
		}
		if ok {
			rep.Witnessed++
		}
	}
	seals, f, err := a.seals(ctx, branches)
	if err != nil || f != nil {
		if f != nil {
			return rep.invalid(f), nil
		}
		return nil, err
	}
	return a.write(branches, seals, rep)
}

// network fixes the description and genesis the audit checks against: the
// pinned one, which the node must share, or the node's, which must derive the
// genesis it names.
func (a *auditor) network(info node.NetworkInfo) error {
	d := network.Description{Name: info.Name, Authority: info.AuthorityKey, Mining: info.Mining}
	if a.cfg.Network != nil {
		d = *a.cfg.Network
	}
	g, err := d.Genesis()
	if err != nil {
		return fmt.Errorf("network description: %w", err)
	}
	if g.Hash.String() != info.Genesis {
		return fmt.Errorf("the node at %s is of network genesis %s, the description derives genesis %s: it is another network (or its answer is false)", a.base, info.Genesis, g.Hash)
	}
	a.desc, a.g, a.proof = d, g, node.ProofCheck(g)
	return nil
}

// walk asks the node for the ring. Each node's ID is its branch; its owner is
// asked first, the others when it cannot answer.
func (a *auditor) walk(ctx context.Context) ([]*branch, error) {
	w, err := a.c.ring(ctx, a.base)
	if err != nil {
		return nil, err
	}
	if w.Error != "" {
		return nil, fmt.Errorf("the ring walk from %s stopped after %d node(s): %s; audit a stable ring", a.base, len(w.Nodes), w.Error)
	}
	if len(w.Nodes) == 0 {
		return nil, fmt.Errorf("the ring walk from %s found no node", a.base)
	}
	for _, p := range w.Nodes {
		a.ring = append(a.ring, Holder{ID: p.ID, Addr: p.Addr})
	}
	sort.Slice(a.ring, func(i, j int) bool { return a.ring[i].ID.Less(a.ring[j].ID) })
	var out []*branch
	for i, p := range a.ring {
		b := &branch{id: p.ID, addr: p.Addr}
		if base := httpBase(p.Addr); base != "" {
			b.sources, b.owned = append(b.sources, base), true
		}
		for k := 1; k < len(a.ring); k++ {
			if base := httpBase(a.ring[(i+k)%len(a.ring)].Addr); base != "" {
				b.sources = append(b.sources, base)
			}
		}
		if len(b.sources) == 0 {
			b.sources = []string{a.base}
		}
		out = append(out, b)
	}
	return out, nil
}

// holders are the nodes that should hold a record with data key key: the
// key's owner (its successor on the ring walk) and the next k-1 nodes.
func (a *auditor) holders(key *ledger.Key) []Holder {
	if key == nil || len(a.ring) == 0 {
		return nil
	}
	i := sort.Search(len(a.ring), func(i int) bool { return !a.ring[i].ID.Less(*key) })
	var out []Holder
	for k := 0; k < min(node.DefaultReplicas, len(a.ring)); k++ {
		out = append(out, a.ring[(i+k)%len(a.ring)])
	}
	return out
}

// seals gathers what every block in every window seals, on a few workers. The
// first failure in branch and block order is the one reported.
func (a *auditor) seals(ctx context.Context, branches []*branch) (map[*ledger.Block]*sealed, *failure, error) {
	type job struct {
		b *branch
		i int
	}
	var jobs []job
	for _, b := range branches {
		for i := b.lo; i < b.hi; i++ {
			jobs = append(jobs, job{b, i})
		}
	}
	results := make([]*sealed, len(jobs))
	fails := make([]*failure, len(jobs))
	errs := make([]error, len(jobs))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	workers := a.cfg.Workers
	if workers <= 0 {
		workers = 4
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				results[k], fails[k], errs[k] = a.sealOf(ctx, jobs[k].b, jobs[k].i)
				if fails[k] != nil || errs[k] != nil {
					cancel()
				}
			}
		}()
	}
feed:
	for k := range jobs {
		select {
		case next <- k:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	// A failure outranks the errors of the jobs cancelled because of it.
	for _, f := range fails {
		if f != nil {
			return nil, f, nil
		}
	}
	out := make(map[*ledger.Block]*sealed, len(jobs))
	for k, j := range jobs {
		if errs[k] != nil {
			return nil, nil, errs[k]
		}
		if results[k] == nil {
			return nil, nil, ctx.Err()
		}
		out[j.b.blocks[j.i]] = results[k]
	}
	return out, nil, nil
}
