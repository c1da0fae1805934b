package chord

// Peer is a node as others see it: its ring ID and the address its RPC
// transport listens on (a URL such as ws://host:port or coap://host:port).
type Peer struct {
	ID   ID     `json:"id"`
	Addr string `json:"addr"`
}

// IsZero reports whether p is "no peer".
func (p Peer) IsZero() bool { return p.ID.IsZero() }

// String returns the short ID, enough to tell peers apart in logs.
func (p Peer) String() string {
	if p.IsZero() {
		return "none"
	}
	return p.ID.Short()
}

func clonePeers(ps []Peer) []Peer {
	if len(ps) == 0 {
		return nil
	}
	return append([]Peer(nil), ps...)
}

func samePeers(a, b []Peer) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID {
			return false
		}
	}
	return true
}
