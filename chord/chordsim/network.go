package chordsim

import (
	"encoding/binary"
	"hash/fnv"

	"github.com/flownode/flownode/chord"
)

// netConfig is how the simulated network treats chord messages. Application
// messages (writes, handoff, replicas) are delayed like the others but never
// lost or duplicated: the application's transfers are acknowledged and
// retried, which the simulation takes for granted.
type netConfig struct {
	minDelay, maxDelay int64
	loss, dup, reorder float64
}

func defaultNet() netConfig { return netConfig{minDelay: 1, maxDelay: 10} }

// packet is a message in flight.
type packet struct {
	from, to *simNode
	inc      int // the receiver's incarnation when sent: a restarted process does not get its predecessor's mail
	msg      chord.Message
	app      *appMsg
}

// send carries a chord message from a node's Ready to its receiver.
func (s *Sim) send(from *simNode, m chord.Message) {
	s.Stats.Messages[m.Type]++
	to := s.nodes[m.To.ID]
	if to == nil {
		return
	}
	s.post(packet{from: from, to: to, inc: to.inc, msg: m})
}

func (s *Sim) sendApp(from, to *simNode, a *appMsg) {
	if to == nil {
		return
	}
	s.post(packet{from: from, to: to, inc: to.inc, app: a})
}

func (s *Sim) post(p packet) {
	if !s.auto {
		s.manual = append(s.manual, p)
		return
	}
	s.transmit(p)
}

// transmit applies partitions, loss, duplication and delay.
func (s *Sim) transmit(p packet) {
	if s.cut(p.from, p.to) {
		s.Stats.Dropped++
		if p.app != nil && p.app.kind != appReplica {
			// The application retries a transfer until the network lets it
			// through (or the receiver is gone).
			s.after(s.opt.Round, func() {
				// A node that left keeps trying too: it leaves once its
				// hand-off is acknowledged.
				if p.to.alive && p.to.inc == p.inc && (p.from.alive || p.from.left) {
					s.transmit(p)
				}
			})
		}
		return
	}
	if p.app == nil {
		if s.net.loss > 0 && s.netRand.Float64() < s.net.loss {
			s.Stats.Dropped++
			s.record(traceDrop, p)
			return
		}
		if s.net.dup > 0 && s.netRand.Float64() < s.net.dup {
			s.Stats.Duped++
			s.schedule(&event{at: s.now + s.delay(p), kind: evDeliver, node: p.to, inc: p.inc, pkt: p})
		}
	}
	s.schedule(&event{at: s.now + s.delay(p), kind: evDeliver, node: p.to, inc: p.inc, pkt: p})
}

// delay is the link's base latency (fixed per pair of nodes, so the peer
// cache has something to prefer) plus jitter, plus sometimes a long detour
// that reorders messages.
func (s *Sim) delay(p packet) int64 {
	span := s.net.maxDelay - s.net.minDelay
	if span < 0 {
		span = 0
	}
	d := s.net.minDelay + s.linkBase(p.from, p.to)%(span/2+1) + s.netRand.Int64N(span/2+1)
	if s.net.reorder > 0 && s.netRand.Float64() < s.net.reorder {
		d += s.netRand.Int64N(3*s.net.maxDelay + 1)
	}
	return max(d, 1)
}

// linkBase is a deterministic pseudo-random number per unordered pair.
func (s *Sim) linkBase(a, b *simNode) int64 {
	x, y := a.peer.ID, b.peer.ID
	if y.Less(x) {
		x, y = y, x
	}
	h := fnv.New64a()
	var seed [8]byte
	binary.BigEndian.PutUint64(seed[:], s.opt.Seed)
	h.Write(seed[:])
	h.Write(x[:])
	h.Write(y[:])
	return int64(h.Sum64() >> 2)
}

// latency is what a node measures as round-trip time to another: twice the
// link's base latency.
func (s *Sim) latency(a, b *simNode) int64 {
	span := max(s.net.maxDelay-s.net.minDelay, 0)
	return 2 * (s.net.minDelay + s.linkBase(a, b)%(span/2+1))
}

// cut reports whether a partition separates a and b.
func (s *Sim) cut(a, b *simNode) bool {
	return s.partitioned && a != nil && b != nil && a.side != b.side
}

// deliver hands a packet to its (live) receiver.
func (s *Sim) deliver(n *simNode, p packet) {
	s.record(traceDeliver, p)
	if p.app != nil {
		n.onApp(p.from, p.app)
	} else {
		n.core.Step(p.msg)
	}
	n.drain()
}

// ---- the trace: kept as data, formatted only for a failure report ----

type traceKind int

const (
	traceDeliver traceKind = iota
	traceDrop
	traceAction
)

type traceEntry struct {
	at       int64
	kind     traceKind
	from, to *simNode
	msg      chord.Message
	app      *appMsg
	info     string
}

func (s *Sim) record(k traceKind, p packet) {
	s.pushTrace(traceEntry{at: s.now, kind: k, from: p.from, to: p.to, msg: p.msg, app: p.app})
}

func (s *Sim) pushTrace(e traceEntry) {
	if s.tr == nil {
		s.tr = make([]traceEntry, 0, s.opt.TraceLen)
	}
	if len(s.tr) >= s.opt.TraceLen {
		copy(s.tr, s.tr[1:])
		s.tr = s.tr[:len(s.tr)-1]
	}
	s.tr = append(s.tr, e)
}
