package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/network"
	"github.com/flownode/flownode/rpc"
)

// The permissioned ring, as the node sees it: the network its data directory
// belongs to, its own membership, and the revocations it holds (package
// network). Every peer authenticates with its membership before any message
// of its is handled (rpc.Auth); revocations travel the ring by gossip.

// loadNetwork reads the network the data directory belongs to. A directory
// with neither a network description nor a membership (a first start, as in
// make run) becomes a one-node network of its own: its authority key is
// written to the data directory, and the log says how to admit more nodes.
// A directory with only one of the two is refused, and so is one of another
// network than name (when name is set). A node told to join a ring (joining)
// never creates a network: it could only be refused by the ring's members.
func loadNetwork(dir, name string, mining ledger.MiningParams, joining bool, log *zap.Logger) (*network.Members, error) {
	desc, mem, err := network.LoadNode(dir)
	none := errors.Is(err, fs.ErrNotExist) && !exists(dir, network.DescriptionFile) && !exists(dir, network.MembershipFile)
	if none && joining {
		return nil, fmt.Errorf("%s holds no membership, so it cannot join a ring: admit it first with `flownode admit --network AUTHORITYDIR --data %s` (a node without --join would start a network of its own)", dir, dir)
	}
	if none {
		if name == "" {
			name = ledger.DefaultNetwork
		}
		a, ierr := network.Init(dir, name, mining)
		if ierr != nil {
			return nil, fmt.Errorf("create a one-node network: %w", ierr)
		}
		if mem, err = a.AdmitDir(dir, time.Now().Add(network.DefaultValidity)); err != nil {
			return nil, fmt.Errorf("create a one-node network: %w", err)
		}
		desc = a.Description
		log.Info("created a one-node network: this data directory holds its authority key; admit more nodes with "+
			"`flownode admit --network DATADIR --data OTHERDIR`, then move "+network.AuthorityKeyFile+" off the node",
			zap.String("network", desc.Name), zap.String("authority", desc.Fingerprint()), zap.String("dir", dir))
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s has no complete membership (%s and %s): admit it with `flownode admit --network AUTHORITYDIR --data %s`: %w",
				dir, network.DescriptionFile, network.MembershipFile, dir, err)
		}
		return nil, err
	}
	if name != "" && name != desc.Name {
		return nil, fmt.Errorf("%s belongs to network %q, not %q", dir, desc.Name, name)
	}
	return network.NewMembers(desc, mem, dir)
}

// Members returns the node's view of its network.
func (n *Node) Members() *network.Members { return n.members }

// PeerAuth is what the node's transports authenticate peers with: its
// membership as its certificate, and the network's check of theirs. Start
// uses it; an embedder that builds its own transports must too.
func (n *Node) PeerAuth() (*rpc.Auth, error) {
	cert, err := n.members.Certificate(n.id)
	if err != nil {
		return nil, err
	}
	return &rpc.Auth{Certificate: cert, Verify: n.members.Verify, Refused: func(remote string, err error) {
		n.log.Debug("refused a peer", zap.String("remote", remote), zap.Error(err))
	}}, nil
}

// NetworkInfo describes the node's network for the API and dashboard.
type NetworkInfo struct {
	Name         string                `json:"name"`
	Authority    string                `json:"authority"`    // fingerprint of the authority key
	AuthorityKey string                `json:"authorityKey"` // hex ed25519
	Genesis      string                `json:"genesis"`
	Mining       ledger.MiningParams   `json:"mining"`  // with Name and AuthorityKey: the genesis block's contents
	Expires      time.Time             `json:"expires"` // this node's membership
	Members      []network.MemberInfo  `json:"members"` // memberships this node has seen
	Revocations  []*network.Revocation `json:"revocations"`
	Refused      map[string]uint64     `json:"refused"` // peers refused at the handshake, by reason
}

// Network describes the node's network.
func (n *Node) Network() NetworkInfo {
	d := n.members.Description()
	return NetworkInfo{Name: d.Name, Authority: d.Fingerprint(), AuthorityKey: d.Authority,
		Genesis: n.ledger.Genesis().Hash.String(), Mining: d.Mining, Expires: n.members.Self().NotAfter.UTC(),
		Members: n.members.Known(), Revocations: n.members.Revocations(), Refused: n.members.Refused()}
}

// Revocation is the authority's signed revocation of a member (package
// network), as the node takes it from the API and its peers.
type Revocation = network.Revocation

// opRevocations is the node-level peer op that spreads revocations; every
// other op is the distributed ledger's.
const opRevocations = "revocations"

// maxRevocationsPerMessage bounds one gossip message.
const maxRevocationsPerMessage = 64

type revocationsBody struct {
	Revocations []*network.Revocation `json:"revocations"`
}

// Revoke accepts a revocation signed by the network's authority (from the API
// or a peer): the node keeps it, closes its connections to the revoked node,
// refuses it from then on, and passes the revocation to its neighbours. It
// reports whether the revocation was new here.
func (n *Node) Revoke(ctx context.Context, r *network.Revocation) (bool, error) {
	added, err := n.members.Revoke(r)
	if err != nil || !added {
		return added, err
	}
	if r.Token != "" {
		n.log.Warn("a token was revoked", zap.String("token", r.Token), zap.String("reason", r.Reason), zap.Time("at", r.At()))
	} else {
		n.log.Warn("a member was revoked", zap.String("node", r.Node), zap.String("reason", r.Reason),
			zap.Time("at", r.At()))
		n.reverify()
	}
	go n.gossipRevocations(context.WithoutCancel(ctx), []*network.Revocation{r})
	return true, nil
}

// reverify has the transports drop connections whose peer is no longer a member.
func (n *Node) reverify() {
	for _, t := range n.reverifiers {
		t.Reverify()
	}
}

// gossipRevocations sends rs to the node's successors and predecessor; each
// passes on what is new to it, so a revocation goes round the ring. The
// periodic exchange (revocationLoop) repairs what a failed send missed.
func (n *Node) gossipRevocations(ctx context.Context, rs []*network.Revocation) {
	if n.ring == nil || len(rs) == 0 {
		return
	}
	st := n.ring.State()
	targets := map[chord.ID]chord.Peer{}
	for _, p := range st.Succs {
		targets[p.ID] = p
	}
	if !st.Pred.IsZero() {
		targets[st.Pred.ID] = st.Pred
	}
	delete(targets, n.ID())
	for len(rs) > 0 {
		batch := rs[:min(len(rs), maxRevocationsPerMessage)]
		rs = rs[len(batch):]
		data, err := json.Marshal(struct {
			Op   string          `json:"op"`
			Body revocationsBody `json:"body"`
		}{opRevocations, revocationsBody{batch}})
		if err != nil {
			return
		}
		var wg sync.WaitGroup
		for _, p := range targets {
			if n.members.Revoked(p.ID) {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				defer cancel()
				if _, err := n.ring.Call(cctx, p, data); err != nil {
					n.log.Debug("revocations not sent", zap.Stringer("to", p.ID), zap.Error(err))
				}
			}()
		}
		wg.Wait()
	}
}

// handleRevocations takes revocations a peer passed on.
func (n *Node) handleRevocations(ctx context.Context, body json.RawMessage) (json.RawMessage, error) {
	var b revocationsBody
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, fmt.Errorf("refused: malformed revocations: %v", err)
	}
	if len(b.Revocations) > maxRevocationsPerMessage {
		return nil, fmt.Errorf("refused: more than %d revocations in one message", maxRevocationsPerMessage)
	}
	accepted := 0
	for _, r := range b.Revocations {
		if r == nil {
			continue
		}
		added, err := n.Revoke(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("refused: %v", err)
		}
		if added {
			accepted++
		}
	}
	return json.Marshal(struct {
		Accepted int `json:"accepted"`
	}{accepted})
}

// revocationLoop sends the node's whole revocation list to its neighbours
// every interval, so that a node that missed a revocation (it was down, or
// joined later) gets it from its neighbours.
func (n *Node) revocationLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n.gossipRevocations(ctx, n.members.Revocations())
		}
	}
}

func exists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

// ringMembers is the node's view of its network as the distributed ledger
// asks it (ringledger.Members).
type ringMembers struct{ *network.Members }

func (m ringMembers) MembershipDER(id ledger.Key) ([]byte, bool) {
	mem, ok := m.Membership(id)
	if !ok {
		return nil, false
	}
	return mem.DER(), true
}

func (m ringMembers) Learn(der []byte) error {
	_, err := m.Members.Learn(der)
	return err
}
