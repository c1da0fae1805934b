package coap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/plgd-dev/go-coap/v3/message"
	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/udp/coder"
)

// Options this front reads that go-coap names no constant for.
const optRequestTag message.OptionID = 292 // RFC 9175

// Content-Formats this front serves and takes.
const (
	cfText       message.MediaType = 0   // text/plain; charset=utf-8 (diagnostics)
	cfLinkFormat message.MediaType = 40  // application/link-format
	cfJSON       message.MediaType = 50  // application/json
	cfTDJSON     message.MediaType = 432 // application/td+json
)

// maxOptions bounds the options of one datagram; one with more is malformed.
const maxOptions = 48

// decode parses a datagram. Its Token, options and payload alias dgram.
// Options are kept whatever their length (go-coap's own decoder drops an
// option of an illegal length, which would turn a bad Block1 into a whole
// body): checkLengths judges them.
func decode(dgram []byte) (*message.Message, error) {
	if len(dgram) < 4 {
		return nil, coder.ErrMessageTruncated
	}
	if dgram[0]>>6 != 1 {
		return nil, coder.ErrMessageInvalidVersion
	}
	tkl := int(dgram[0] & 0xf)
	if tkl > message.MaxTokenSize {
		return nil, message.ErrInvalidTokenLen
	}
	if len(dgram) < 4+tkl {
		return nil, coder.ErrMessageTruncated
	}
	m := &message.Message{Type: message.Type(dgram[0] >> 4 & 3), Code: codes.Code(dgram[1]),
		MessageID: int32(binary.BigEndian.Uint16(dgram[2:4])), Options: make(message.Options, 0, maxOptions)}
	if tkl > 0 {
		m.Token = dgram[4 : 4+tkl]
	}
	rest := dgram[4+tkl:]
	n, err := m.Options.Unmarshal(rest, nil)
	if err != nil {
		return nil, err
	}
	if rest = rest[n:]; len(rest) > 0 {
		m.Payload = rest
	}
	return m, nil
}

// checkLengths applies RFC 7252 §5.4.3 to options of an illegal length: a
// critical one is an error (returned), an elective one is dropped.
func checkLengths(m *message.Message) error {
	kept := m.Options[:0]
	for _, o := range m.Options {
		def, known := message.CoapOptionDefs[o.ID]
		if n := uint32(len(o.Value)); known && (n < def.MinLen || n > def.MaxLen) {
			if o.ID&1 == 1 {
				return fmt.Errorf("option %d has %d bytes, not %d to %d", o.ID, n, def.MinLen, def.MaxLen)
			}
			continue
		}
		kept = append(kept, o)
	}
	m.Options = kept
	return nil
}

// encode serializes m.
func encode(m *message.Message) ([]byte, error) {
	size, err := coder.DefaultCoder.Size(*m)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	if _, err := coder.DefaultCoder.Encode(*m, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// rejectFor returns the RST that rejects an unparsable confirmable
// datagram (RFC 7252 §4.2), or nil when there is nothing to answer: a
// non-confirmable one, or one too short to carry a message ID, is dropped
// silently (§4.3).
func rejectFor(dgram []byte) []byte {
	if len(dgram) < 4 || dgram[0]>>6 != 1 || message.Type((dgram[0]>>4)&3) != message.Confirmable {
		return nil
	}
	return []byte{0x70, 0, dgram[2], dgram[3]} // v1, RST, no token, Empty
}

// emptyMessage is an empty ACK or RST for mid.
func emptyMessage(typ message.Type, mid uint16) []byte {
	return []byte{0x40 | byte(typ)<<4, 0, byte(mid >> 8), byte(mid)}
}

// uintOption returns the value of an unsigned option and whether it is there.
func uintOption(m *message.Message, id message.OptionID) (uint32, bool) {
	v, err := m.Options.GetUint32(id)
	return v, err == nil
}

// block is a Block1 or Block2 option's value (RFC 7959 §2.2).
type block struct {
	num  uint32
	more bool
	szx  uint8 // size is 16 << szx; 7 (BERT) is not used over UDP
}

func (b block) size() int { return 16 << b.szx }

func (b block) value() uint32 {
	v := b.num<<4 | uint32(b.szx)
	if b.more {
		v |= 8
	}
	return v
}

var errBadBlock = errors.New("bad block option")

// blockOption reads a Block1 or Block2 option.
func blockOption(m *message.Message, id message.OptionID) (block, bool, error) {
	v, ok := uintOption(m, id)
	if !ok {
		return block{}, false, nil
	}
	b := block{num: v >> 4, more: v&8 != 0, szx: uint8(v & 7)}
	if b.szx == 7 {
		return block{}, true, fmt.Errorf("%w: BERT (SZX 7) is for reliable transports", errBadBlock)
	}
	return b, true, nil
}

// szxFor returns the largest block size exponent whose size is at most n.
func szxFor(n int) uint8 {
	var s uint8
	for s < 6 && 16<<(s+1) <= n {
		s++
	}
	return s
}

// etagOf is a representation's ETag: its content's FNV-1a hash.
func etagOf(body []byte) []byte {
	h := fnv.New64a()
	h.Write(body)
	return h.Sum(nil)
}

// unknownCritical returns the first critical option (odd number, RFC 7252
// §5.4.1) of m that this front does not process, if any.
func unknownCritical(m *message.Message) (message.OptionID, bool) {
	for _, o := range m.Options {
		if o.ID&1 == 0 {
			continue
		}
		switch o.ID {
		case message.URIHost, message.URIPort, message.URIPath, message.URIQuery,
			message.Accept, message.Block1, message.Block2:
		default:
			return o.ID, true
		}
	}
	return 0, false
}

// isRequest tells a request code (class 0, not Empty).
func isRequest(c codes.Code) bool { return c != codes.Empty && c>>5 == 0 }

// uintOpt is an unsigned option in its shortest encoding.
func uintOpt(id message.OptionID, v uint32) message.Option {
	buf := make([]byte, 4)
	n, _ := message.EncodeUint32(buf, v)
	return message.Option{ID: id, Value: buf[:n]}
}
