package driver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/rpc"
)

// rejoinDelay is how many ticks a stranded node waits between rejoin
// attempts through its peer cache, so that a node cut off from everyone does
// not ask in a tight loop.
const rejoinDelay = 10

// ErrNoBootstrap: none of the addresses given to Join answered.
var ErrNoBootstrap = errors.New("driver: no bootstrap peer answered; check the --join addresses and that those nodes run")

// ErrRefused: the bootstrap peers answered, but this node and they did not
// authenticate each other (another network, no or an expired membership).
var ErrRefused = errors.New("driver: the bootstrap peers and this node refused each other")

// Start makes the node a ring of its own.
func (d *Driver) Start(ctx context.Context) error {
	return d.do(ctx, func() { d.core.Create() })
}

// Join joins the ring through the peers at addrs (transport URLs), tried in
// order, and returns once the node is a member (its successor accepted it),
// or with the core's JoinFailed error, or when ctx ends.
func (d *Driver) Join(ctx context.Context, addrs []string) error {
	boots, lastErr := d.resolve(ctx, addrs)
	if len(boots) == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		if errors.Is(lastErr, rpc.ErrAuth) {
			return fmt.Errorf("%w (tried %v): %w", ErrRefused, addrs, lastErr)
		}
		return fmt.Errorf("%w (tried %v)", ErrNoBootstrap, addrs)
	}
	done := make(chan error, 1)
	var err error
	if derr := d.do(ctx, func() {
		d.lastBoots = boots
		if err = d.core.Join(boots...); err == nil {
			d.joinWait = append(d.joinWait, done)
		}
	}); derr != nil {
		return derr
	}
	if err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// resolve learns the ID of the node at each address: a CHECK_PREDECESSOR
// addressed to no ID (rpc.AnyNode on the wire) that the far driver answers
// itself.
func (d *Driver) resolve(ctx context.Context, addrs []string) (out []chord.Peer, lastErr error) {
	for _, a := range addrs {
		if a == d.self.Addr {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, max(d.prof.SendTimeout, time.Second))
		reply, err := d.tr.Call(cctx, a, &rpc.Envelope{
			Type: rpc.TypeCheckPredecessor, ID: rand.Uint64(), From: wirePeer(d.self),
		})
		cancel()
		if err != nil {
			d.log.Info("bootstrap peer did not answer", zap.String("addr", a), zap.Error(err))
			lastErr = err
			continue
		}
		p, err := corePeer(reply.From)
		if err != nil || p.IsZero() || p.ID == d.self.ID {
			continue
		}
		p.Addr = a // the address that worked, whatever the peer advertises
		out = append(out, p)
	}
	return out, lastErr
}

// onEvent keeps the driver's books, then tells the application.
func (d *Driver) onEvent(e chord.Event) {
	switch e := e.(type) {
	case chord.LookupDone:
		if w := d.waiters[e.ReqID]; w != nil {
			delete(d.waiters, e.ReqID)
			w <- e
		}
	case chord.Joined:
		d.rejoinAt = 0
		d.finishJoin(nil)
	case chord.JoinFailed:
		if len(d.joinWait) > 0 {
			d.finishJoin(e.Err)
		} else {
			// A rejoin after Stranded failed: try the peer cache later.
			d.rejoinAt = d.core.Now() + rejoinDelay
		}
	case chord.PeerDead:
		d.cache.Remove(e.Peer.ID)
		delete(d.remembered, e.Peer.ID)
	case chord.Stranded:
		d.log.Warn("every successor is dead; rejoining")
	}
	if d.cfg.OnEvent != nil {
		d.cfg.OnEvent(e)
	}
}

func (d *Driver) finishJoin(err error) {
	for _, w := range d.joinWait {
		w <- err
	}
	d.joinWait = nil
}

// remember puts a peer the node heard from in the peer cache, at most once
// every rememberEvery ticks for the same address: an Add hashes the peer's
// key twice and updates the routing table, and doing that for every message
// was a tenth of a lookup step's CPU. Under mu.
func (d *Driver) remember(p chord.Peer) {
	if p.IsZero() || p.ID == d.self.ID {
		return
	}
	now := d.core.Now()
	if r, ok := d.remembered[p.ID]; ok && r.addr == p.Addr && now < r.tick+rememberEvery {
		return
	}
	if len(d.remembered) >= maxRemembered {
		clear(d.remembered)
	}
	d.remembered[p.ID] = rememberedPeer{addr: p.Addr, tick: now}
	if err := d.cache.Add(cacheKey(p.ID), p, 0); err != nil {
		d.log.Debug("peer cache refused a peer", zap.Stringer("peer", p.ID), zap.Error(err))
	}
}

// rememberedPeer is when a peer last went into the peer cache, and with
// which address.
type rememberedPeer struct {
	addr string
	tick uint64
}

// rememberEvery is how many ticks a peer is not put in the cache again
// (the cache only needs to know who was alive lately: probes and rejoins
// ask it every probeEvery ticks at most), and maxRemembered bounds the
// memory of when each peer last was.
const (
	rememberEvery = probeEvery / 2
	maxRemembered = 1024
)

// probeEvery is how many ticks pass between probes of a remembered peer: if
// failures or overload split the ring, a probe that lands in the other part
// lets the core adopt a closer successor there, and stabilize merges the
// two rings.
const probeEvery = 20

// probeDue probes one remembered peer outside the successor list, in turn.
func (d *Driver) probeDue() {
	now := d.core.Now()
	if now == 0 || now%probeEvery != 0 || d.core.Status() != chord.StatusMember {
		return
	}
	skip := map[chord.ID]bool{d.self.ID: true, d.core.Pred().ID: true}
	for _, s := range d.core.Successors() {
		skip[s.ID] = true
	}
	d.probeNext++
	// Every other probe goes to one of the peers the node joined through. A
	// node cut off from all others declares them dead and they forget it, so
	// when the network heals neither side's cache names the other; the join
	// peers are what brings them back together.
	if d.probeNext%2 == 0 {
		var boots []chord.Peer
		for _, b := range d.lastBoots {
			if !skip[b.ID] {
				boots = append(boots, b)
			}
		}
		if len(boots) > 0 {
			d.core.Probe(boots[(d.probeNext/2)%len(boots)])
			return
		}
	}
	cands := d.cache.Candidates(32, func(id chord.ID) bool { return skip[id] })
	if len(cands) > 0 {
		d.core.Probe(cands[d.probeNext%len(cands)])
	}
}

// rejoinDue runs a scheduled rejoin through the peer cache and the last
// bootstraps. A node that knows nobody carries on as a ring of its own.
func (d *Driver) rejoinDue() {
	if d.rejoinAt == 0 || d.core.Now() < d.rejoinAt {
		return
	}
	d.rejoinAt = 0
	if s := d.core.Status(); s == chord.StatusMember || s == chord.StatusLinked || s == chord.StatusLeft {
		return
	}
	cands := d.cache.Candidates(8, func(id chord.ID) bool { return id == d.self.ID })
	cands = append(cands, d.lastBoots...)
	if err := d.core.Join(cands...); err != nil {
		d.core.Create()
	}
}
