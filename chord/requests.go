package chord

import (
	"cmp"
	"slices"
)

// reqKind says what a pending request was for, and so what its reply means.
type reqKind int

const (
	reqStabilize reqKind = iota // NOTIFY_STABILIZE to the best successor
	reqAdopt                    // NOTIFY_STABILIZE to a closer candidate
	reqJoin                     // NOTIFY_JOIN to the successor a join found
	reqFind                     // FIND_SUCCESSOR for a lookup
	reqCheck                    // CHECK_PREDECESSOR / CHECK_SUCCESSOR
	reqExtend                   // NOTIFY_STABILIZE to the list's tail, to lengthen the list
)

type request struct {
	kind     reqKind
	to       Peer
	deadline uint64
	lookup   uint64 // reqFind: the lookup it serves
	confirm  bool   // reqFind: asks the owner the lookup named to confirm it
	chain    int    // reqAdopt: how many adoptions this stabilize has made
	at       int    // reqExtend: how many entries precede the extension
	tail     ID     // reqExtend: the entry the extension follows
	bridge   bool   // reqExtend: asked past a tail that knew nothing more
}

func (r *request) replyType() MsgType {
	switch r.kind {
	case reqFind:
		return FoundSuccessor
	case reqCheck:
		return CheckTTL
	}
	return NotifyPredecessor
}

// request sends a request and remembers it until its reply or its timeout.
func (n *Node) request(to Peer, t MsgType, key ID, req request) uint64 {
	id := n.nextReq
	n.nextReq++
	req.to = to
	req.deadline = n.now + uint64(n.cfg.RequestTimeout)
	n.pending[id] = &req
	n.send(to, t, id, key, Payload{})
	return id
}

// onTimeout handles a request that got no reply in time. Deaths are decided
// by the TTL rule, not here; a timeout only moves the operation on. The
// request is remembered for a while as late, in case its reply is only slow.
func (n *Node) onTimeout(id uint64, req *request) {
	n.rememberLate(id, req)
	switch req.kind {
	case reqFind:
		if l := n.lookups[req.lookup]; l != nil {
			n.lookupTimeout(l, req.to)
		}
	case reqJoin:
		n.retryJoin()
	case reqAdopt:
		// The candidate did not answer: stay with the current successor and
		// tell it about us, as stabilize would have.
		if s, ok := n.bestSucc(); ok && s.ID != n.self.ID {
			n.notify(s)
		}
	}
}

// maxLate bounds the memory of timed-out requests. A node sends a few dozen
// requests per tick at most; when more than this time out within LateWindow,
// the oldest are forgotten first (their replies then count as unexpected).
const maxLate = 256

// lateReq is a request that timed out but whose reply may still come.
type lateReq struct {
	req   *request
	until uint64 // tick after which a reply is no longer taken
}

// rememberLate records a request whose reply is overdue. Entries are added
// in order of their until tick, so lateOrder is oldest first.
func (n *Node) rememberLate(id uint64, req *request) {
	n.late[id] = lateReq{req: req, until: n.now + uint64(n.cfg.LateWindow)}
	n.lateOrder = append(n.lateOrder, id)
	for len(n.lateOrder) > maxLate {
		delete(n.late, n.lateOrder[0])
		n.lateOrder = n.lateOrder[1:]
	}
}

// expireLate forgets late requests whose window has passed, and ids in
// lateOrder whose reply came already.
func (n *Node) expireLate() {
	for len(n.lateOrder) > 0 {
		id := n.lateOrder[0]
		if l, ok := n.late[id]; ok && n.now < l.until {
			break
		}
		delete(n.late, id)
		n.lateOrder = n.lateOrder[1:]
	}
	if len(n.lateOrder) == 0 {
		n.lateOrder = nil // let the backing array go
	}
}

// onLateReply uses a reply that came after its request timed out. Its
// sender's TTL is refreshed already (Step: any message from a ring member
// proves it alive); the content is applied only where it still means
// something and cannot undo what happened since the timeout:
//   - a stabilize, adopt, extend or join answer goes through the same
//     handler as an answer in time, which applies it only if it still fits:
//     the sender is still our best successor (stabilize), still closer than
//     it (adopt), the list still ends where the extension was asked
//     (extend), the join is still under way (join). Every list is built by
//     buildList, so a late one is as ordered as a fresh one; it is as old
//     as a reply just inside the timeout would be on a slower link;
//   - a lookup answer is used if its lookup still runs (see onLateFound);
//   - a check answer carries nothing but liveness.
func (n *Node) onLateReply(m Message, req *request) {
	switch req.kind {
	case reqStabilize, reqJoin, reqAdopt, reqExtend:
		n.onReply(m, req)
	case reqFind:
		n.onLateFound(m, req)
	}
}

func sortedKeys[V any](m map[uint64]V) []uint64 {
	keys := make([]uint64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp.Compare[uint64])
	return keys
}
