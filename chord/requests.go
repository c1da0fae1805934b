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
// by the TTL rule, not here; a timeout only moves the operation on.
func (n *Node) onTimeout(req *request) {
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

func sortedKeys[V any](m map[uint64]V) []uint64 {
	keys := make([]uint64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp.Compare[uint64])
	return keys
}
