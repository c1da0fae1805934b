package coaps

import "time"

// Limits bound what a Listener keeps. Zero fields take DefaultLimits'.
type Limits struct {
	// MaxHandshakes bounds the handshakes in progress, all sources;
	// HandshakesPerIP those of one source IP address, past which its
	// ClientHellos are dropped. When the table is full, a new ClientHello
	// pushes out the oldest handshake whose source has not echoed its
	// cookie within pushOutAge, or is dropped.
	MaxHandshakes   int
	HandshakesPerIP int
	// MaxSessions bounds the established sessions, SessionsPerIP those of
	// one source IP address (devices behind one NAT share it). When full,
	// the session silent the longest is closed for a new one if it has been
	// silent for a minute at least; else the new handshake fails.
	MaxSessions   int
	SessionsPerIP int
	// HandshakeTimeout bounds a handshake; IdleTimeout closes a session
	// that neither sent nor received a datagram for that long.
	HandshakeTimeout time.Duration
	IdleTimeout      time.Duration
}

// DefaultLimits are for a node with memory to spare (a laptop, a server).
func DefaultLimits() Limits {
	return Limits{MaxHandshakes: 64, HandshakesPerIP: 4, MaxSessions: 1024, SessionsPerIP: 64,
		HandshakeTimeout: 10 * time.Second, IdleTimeout: 10 * time.Minute}
}

// GatewayLimits are for a 128 MB gateway whose Go heap is held to 24 MiB:
// a session costs about 45 KiB (amd64) to 55 KiB (mipsle) of heap and
// stacks, pion's buffers and goroutines (BenchmarkSessionMemory measures
// 88 and 108 KiB with its pion client in the same process), a handshake
// about as much: these hold 4.5 MB at most.
func GatewayLimits() Limits {
	return Limits{MaxHandshakes: 16, HandshakesPerIP: 4, MaxSessions: 64, SessionsPerIP: 16,
		HandshakeTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}
}

func (l *Limits) defaults() {
	d := DefaultLimits()
	def := func(v *int, x int) {
		if *v <= 0 {
			*v = x
		}
	}
	defd := func(v *time.Duration, x time.Duration) {
		if *v <= 0 {
			*v = x
		}
	}
	def(&l.MaxHandshakes, d.MaxHandshakes)
	def(&l.HandshakesPerIP, d.HandshakesPerIP)
	def(&l.MaxSessions, d.MaxSessions)
	def(&l.SessionsPerIP, d.SessionsPerIP)
	defd(&l.HandshakeTimeout, d.HandshakeTimeout)
	defd(&l.IdleTimeout, d.IdleTimeout)
}

// evictAfter is how long a session must have been silent for a new one to
// take its place when the session bounds are reached.
const evictAfter = time.Minute

// pushOutAge is how long an unverified handshake is sure to be kept: time
// for its source to echo the cookie on a slow link.
const pushOutAge = 250 * time.Millisecond
