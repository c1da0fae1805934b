package rpc

import "sync/atomic"

// Stats counts a transport's traffic since it started, for metrics.
// Envelopes are counted once they decode; bytes count envelope bodies, not
// transport framing.
type Stats struct {
	Sent         uint64 // envelopes written (requests, one-way messages and replies)
	Received     uint64 // envelopes read that decoded
	BytesOut     uint64
	BytesIn      uint64
	DecodeErrors uint64 // frames that failed to decode, both directions
	ErrorReplies uint64 // error replies this node sent
	Calls        uint64 // Call invocations
	CallTimeouts uint64 // call attempts that ran out of time
	Retries      uint64 // extra attempts made by Call and Send
	Dials        uint64 // connections opened to peers
	// Refused counts peers refused at the handshake and messages refused
	// because their sender did not authenticate as their From.
	Refused uint64
}

// Add returns the sum of s and o (Multi reports the sum of its transports).
func (s Stats) Add(o Stats) Stats {
	return Stats{
		Sent: s.Sent + o.Sent, Received: s.Received + o.Received,
		BytesOut: s.BytesOut + o.BytesOut, BytesIn: s.BytesIn + o.BytesIn,
		DecodeErrors: s.DecodeErrors + o.DecodeErrors, ErrorReplies: s.ErrorReplies + o.ErrorReplies,
		Calls: s.Calls + o.Calls, CallTimeouts: s.CallTimeouts + o.CallTimeouts,
		Retries: s.Retries + o.Retries, Dials: s.Dials + o.Dials, Refused: s.Refused + o.Refused,
	}
}

// counters is the live, lock-free form of Stats. atomic.Uint64 is 64-bit
// aligned even on 386 and mipsle.
type counters struct {
	sent, received, bytesOut, bytesIn, decodeErrors, errorReplies atomic.Uint64
	calls, callTimeouts, retries, dials, refused                  atomic.Uint64
}

func (c *counters) out(n int) {
	c.sent.Add(1)
	c.bytesOut.Add(uint64(n))
}

func (c *counters) snapshot() Stats {
	return Stats{
		Sent: c.sent.Load(), Received: c.received.Load(),
		BytesOut: c.bytesOut.Load(), BytesIn: c.bytesIn.Load(),
		DecodeErrors: c.decodeErrors.Load(), ErrorReplies: c.errorReplies.Load(),
		Calls: c.calls.Load(), CallTimeouts: c.callTimeouts.Load(),
		Retries: c.retries.Load(), Dials: c.dials.Load(), Refused: c.refused.Load(),
	}
}
