package store

import (
	"encoding/binary"
	"fmt"
)

// Key prefixes. Every entry the store writes starts with one of these bytes, so
// each kind of entry is one contiguous, ordered range that a prefix scan reads
// without touching the others. Integers are big-endian so that byte order is
// numeric order.
//
//	block          'b' branch(20) no(8)                       → block JSON
//	block-by-hash  'h' hash(32)                               → branch(20) no(8)
//	record         'r' txID(32)                               → record JSON
//	key index      'k' key(20) txID(32)                       → empty
//	thing index    't' thingLen(2) thing time(8) txID(32)     → empty
//	attachment     'a' branch(20) blockNo(8) seq(8)           → txID(32)
//	txID pointer   'x' txID(32)                               → key(20)
//	history entry  'i' pos(20) time(8) txID(32)               → record JSON
//	meta           'm' name                                   → value
//	branch tree    'n' branch(20) level(1) index(8)           → hash(32)
//
// A txID pointer lets a node that does not hold a record find its data key:
// on a Chord ring it lives on the node owning position txID[:20], the record
// on the node owning its key.
//
// A history entry is a copy of a record kept at a ring position derived
// from its Thing and time (the ring's per-Thing time index; package
// ringledger decides the position), so that a node owning that position
// answers a Thing's history in time order without asking every node. Its
// time is encoded like the thing index's.
//
// A branch-tree entry is one complete node of the RFC 6962 Merkle tree over
// a branch's block hashes (package ledger: the tree its checkpoints sign), so
// that an inclusion or consistency proof costs a few reads instead of
// reading every block of the branch.
//
// The thing index stores time as int64 nanoseconds with the sign bit flipped,
// so that negative times sort before positive ones.
const (
	PrefixBlock      byte = 'b'
	PrefixBlockHash  byte = 'h'
	PrefixRecord     byte = 'r'
	PrefixKeyIndex   byte = 'k'
	PrefixThingIndex byte = 't'
	PrefixAttachment byte = 'a'
	PrefixPointer    byte = 'x'
	PrefixHistory    byte = 'i'
	PrefixMeta       byte = 'm'
	PrefixBranchTree byte = 'n'
)

// MaxThingLen is the longest thing name the thing index accepts, in bytes.
// The index stores the length in two bytes; the bound is lower so that index
// keys stay small.
const MaxThingLen = 1024

// MaxMetaNameLen is the longest meta name, in bytes.
const MaxMetaNameLen = 1024

// Lengths of fixed-size keys and values.
const (
	blockKeyLen      = 1 + 20 + 8
	blockHashKeyLen  = 1 + 32
	blockRefLen      = 20 + 8
	recordKeyLen     = 1 + 32
	keyIndexKeyLen   = 1 + 20 + 32
	attachmentKeyLen = 1 + 20 + 8 + 8
	pointerKeyLen    = 1 + 32
	historyKeyLen    = 1 + 20 + 8 + 32
	thingFixedLen    = 1 + 2 + 8 + 32 // thing index key without the thing bytes
	treeNodeKeyLen   = 1 + 20 + 1 + 8
)

// BlockKey returns the key of block no on branch.
func BlockKey(branch [20]byte, no uint64) []byte {
	k := make([]byte, 0, blockKeyLen)
	k = append(k, PrefixBlock)
	k = append(k, branch[:]...)
	return binary.BigEndian.AppendUint64(k, no)
}

// BlockHashKey returns the key of the block-by-hash entry for hash.
func BlockHashKey(hash [32]byte) []byte {
	k := make([]byte, 0, blockHashKeyLen)
	k = append(k, PrefixBlockHash)
	return append(k, hash[:]...)
}

// BlockRef returns the value of a block-by-hash entry: branch then number.
func BlockRef(branch [20]byte, no uint64) []byte {
	v := make([]byte, 0, blockRefLen)
	v = append(v, branch[:]...)
	return binary.BigEndian.AppendUint64(v, no)
}

// RecordKey returns the key of the record with txID.
func RecordKey(txID [32]byte) []byte {
	k := make([]byte, 0, recordKeyLen)
	k = append(k, PrefixRecord)
	return append(k, txID[:]...)
}

// KeyIndexKey returns the key-index entry that maps a data key to txID.
func KeyIndexKey(key [20]byte, txID [32]byte) []byte {
	k := make([]byte, 0, keyIndexKeyLen)
	k = append(k, PrefixKeyIndex)
	k = append(k, key[:]...)
	return append(k, txID[:]...)
}

// ThingIndexKey returns the thing/time index entry of txID. It fails only when
// thing is longer than MaxThingLen.
func ThingIndexKey(thing string, t int64, txID [32]byte) ([]byte, error) {
	k, err := thingPrefix(thing, thingFixedLen+len(thing))
	if err != nil {
		return nil, err
	}
	k = binary.BigEndian.AppendUint64(k, encodeTime(t))
	return append(k, txID[:]...), nil
}

// AttachmentKey returns the key of the seq-th record attachment of block no on
// branch; its value is the record's txID.
func AttachmentKey(branch [20]byte, no, seq uint64) []byte {
	k := make([]byte, 0, attachmentKeyLen)
	k = append(k, PrefixAttachment)
	k = append(k, branch[:]...)
	k = binary.BigEndian.AppendUint64(k, no)
	return binary.BigEndian.AppendUint64(k, seq)
}

// PointerKey returns the key of the txID pointer of txID; its value is the
// record's data key.
func PointerKey(txID [32]byte) []byte {
	k := make([]byte, 0, pointerKeyLen)
	k = append(k, PrefixPointer)
	return append(k, txID[:]...)
}

// HistoryKey returns the key of the history entry of txID at ring position
// pos, with the record's time; its value is the record JSON.
func HistoryKey(pos [20]byte, t int64, txID [32]byte) []byte {
	k := make([]byte, 0, historyKeyLen)
	k = append(k, PrefixHistory)
	k = append(k, pos[:]...)
	k = binary.BigEndian.AppendUint64(k, encodeTime(t))
	return append(k, txID[:]...)
}

// MetaKey returns the key of the meta entry name.
func MetaKey(name string) []byte {
	k := make([]byte, 0, 1+len(name))
	k = append(k, PrefixMeta)
	return append(k, name...)
}

// thingPrefix returns 't' + thingLen + thing with room for capacity bytes.
func thingPrefix(thing string, capacity int) ([]byte, error) {
	if len(thing) > MaxThingLen {
		return nil, fmt.Errorf("thing is %d bytes, more than %d: %w", len(thing), MaxThingLen, ErrTooLarge)
	}
	k := make([]byte, 0, capacity)
	k = append(k, PrefixThingIndex)
	k = binary.BigEndian.AppendUint16(k, uint16(len(thing)))
	return append(k, thing...), nil
}

// branchPrefix returns prefix + branch, the range of one branch's entries.
func branchPrefix(prefix byte, branch [20]byte) []byte {
	k := make([]byte, 0, 1+20+8+8)
	k = append(k, prefix)
	return append(k, branch[:]...)
}

// encodeTime flips the sign bit so that unsigned byte order is signed order.
func encodeTime(t int64) uint64 { return uint64(t) ^ (1 << 63) }

func decodeTime(u uint64) int64 { return int64(u ^ (1 << 63)) }

// corrupt reports an entry whose key or value does not have its kind's layout.
func corrupt(kind string, key []byte) error {
	return fmt.Errorf("%w: %s key %x", ErrCorrupt, kind, key)
}

func parseBlockKey(k []byte) (branch [20]byte, no uint64, err error) {
	if len(k) != blockKeyLen || k[0] != PrefixBlock {
		return branch, 0, corrupt("block", k)
	}
	copy(branch[:], k[1:21])
	return branch, binary.BigEndian.Uint64(k[21:]), nil
}

func parseBlockRef(v []byte) (branch [20]byte, no uint64, ok bool) {
	if len(v) != blockRefLen {
		return branch, 0, false
	}
	copy(branch[:], v[:20])
	return branch, binary.BigEndian.Uint64(v[20:]), true
}

func parseRecordKey(k []byte) (txID [32]byte, err error) {
	if len(k) != recordKeyLen || k[0] != PrefixRecord {
		return txID, corrupt("record", k)
	}
	copy(txID[:], k[1:])
	return txID, nil
}

func parseKeyIndexKey(k []byte) (key [20]byte, txID [32]byte, err error) {
	if len(k) != keyIndexKeyLen || k[0] != PrefixKeyIndex {
		return key, txID, corrupt("key index", k)
	}
	copy(key[:], k[1:21])
	copy(txID[:], k[21:])
	return key, txID, nil
}

func parseThingIndexKey(k []byte) (thing string, t int64, txID [32]byte, err error) {
	if len(k) < thingFixedLen || k[0] != PrefixThingIndex {
		return "", 0, txID, corrupt("thing index", k)
	}
	n := int(binary.BigEndian.Uint16(k[1:3]))
	if len(k) != thingFixedLen+n {
		return "", 0, txID, corrupt("thing index", k)
	}
	thing = string(k[3 : 3+n])
	t = decodeTime(binary.BigEndian.Uint64(k[3+n:]))
	copy(txID[:], k[3+n+8:])
	return thing, t, txID, nil
}

func parseAttachmentKey(k []byte) (branch [20]byte, no, seq uint64, err error) {
	if len(k) != attachmentKeyLen || k[0] != PrefixAttachment {
		return branch, 0, 0, corrupt("attachment", k)
	}
	copy(branch[:], k[1:21])
	return branch, binary.BigEndian.Uint64(k[21:29]), binary.BigEndian.Uint64(k[29:]), nil
}

func parsePointerKey(k []byte) (txID [32]byte, err error) {
	if len(k) != pointerKeyLen || k[0] != PrefixPointer {
		return txID, corrupt("pointer", k)
	}
	copy(txID[:], k[1:])
	return txID, nil
}

func parseHistoryKey(k []byte) (ref HistoryRef, err error) {
	if len(k) != historyKeyLen || k[0] != PrefixHistory {
		return ref, corrupt("history", k)
	}
	copy(ref.Pos[:], k[1:21])
	ref.Time = decodeTime(binary.BigEndian.Uint64(k[21:29]))
	copy(ref.TxID[:], k[29:])
	return ref, nil
}

// parsePointerValue reads the data key a txID pointer stores.
func parsePointerValue(k, v []byte) (key [20]byte, err error) {
	if len(v) != 20 {
		return key, fmt.Errorf("%w: pointer key %x has a %d-byte value, want 20", ErrCorrupt, k, len(v))
	}
	copy(key[:], v)
	return key, nil
}

// parseTxID reads a txID stored as a value (attachments).
func parseTxID(kind string, k, v []byte) (txID [32]byte, err error) {
	if len(v) != 32 {
		return txID, fmt.Errorf("%w: %s key %x has a %d-byte value, want 32", ErrCorrupt, kind, k, len(v))
	}
	copy(txID[:], v)
	return txID, nil
}

// TreeNodeKey returns the key of the branch tree's node at level and index.
func TreeNodeKey(branch [20]byte, level uint8, index uint64) []byte {
	k := make([]byte, 0, treeNodeKeyLen)
	k = append(k, PrefixBranchTree)
	k = append(k, branch[:]...)
	k = append(k, level)
	return binary.BigEndian.AppendUint64(k, index)
}
