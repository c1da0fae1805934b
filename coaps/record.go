package coaps

import "encoding/binary"

// The read loop looks at the first record of each datagram only, to route
// it: its epoch, and whether it starts a ClientHello and with a cookie.
// Everything else is pion's to parse and check.

const (
	recordHeaderLen    = 13 // type, version, epoch, sequence number, length
	handshakeHeaderLen = 12 // type, length, message_seq, fragment offset and length
	contentHandshake   = 22
	typeClientHello    = 1
)

// record is what the read loop knows of a datagram.
type record struct {
	epoch       uint16
	clientHello bool // its first record starts a ClientHello (epoch 0)
	cookie      bool // ... that echoes a cookie
}

// parseRecord reads the first record header of dgram; ok is false for a
// datagram too short to be DTLS.
func parseRecord(dgram []byte) (r record, ok bool) {
	if len(dgram) < recordHeaderLen {
		return r, false
	}
	r.epoch = binary.BigEndian.Uint16(dgram[3:5])
	if dgram[0] != contentHandshake || r.epoch != 0 {
		return r, true
	}
	b := dgram[recordHeaderLen:]
	if len(b) < handshakeHeaderLen || b[0] != typeClientHello || b[6] != 0 || b[7] != 0 || b[8] != 0 {
		return r, true // not the first fragment of a ClientHello
	}
	r.clientHello = true
	// ClientHello: version (2), random (32), session_id <0..32>, cookie <0..255>.
	b = b[handshakeHeaderLen:]
	if len(b) < 35 {
		return r, true
	}
	sid := int(b[34])
	if len(b) < 35+sid+1 {
		return r, true
	}
	r.cookie = b[35+sid] > 0
	return r, true
}
