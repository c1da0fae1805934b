package ledger

import (
	"crypto/sha256"
	"fmt"

	"github.com/flownode/flownode/store"
)

// TamperedError is a record read from this node's store whose bytes no longer verify
// on their own: a node answers it as a server error, never with the altered bytes.
type TamperedError struct {
	Location Location
	Err      error // what no longer verifies
}

func (e *TamperedError) Error() string {
	return fmt.Sprintf("%s in the store no longer verifies: %v (%s)", e.Location.describeRecord(), e.Err, e.Location.where())
}

func (e *TamperedError) Unwrap() error { return e.Err }

// CheckStored checks a record read from st under txID before it is served: it must
// parse, be stored under its own txID and verify on its own (Record.CheckSelf:
// canonical form, signature, H_DATA, txID). Signatures of bytes seen before in this
// process are not verified again (sigcache.go), so a repeat read costs a SHA-256 and
// a canonical encoding. hint is what the caller knows of the record (the key or Thing
// it looked up), used when the damaged bytes no longer say it. A failure is a
// *TamperedError naming the record, its block and its store entry and file.
func CheckStored(st *store.Store, txID Hash, raw []byte, hint Location) (*Record, error) {
	return CheckStoredEntry(st, store.RecordKey(txID), txID, raw, hint)
}

// CheckStoredEntry is CheckStored for a record copy kept under another store entry
// (a history entry), which the failure names.
func CheckStoredEntry(st *store.Store, entry []byte, txID Hash, raw []byte, hint Location) (*Record, error) {
	r, err := ParseChecked(raw)
	if err == nil && r.TxID != txID {
		err = &Mismatch{What: "record stored under txID", Expected: txID.String(), Actual: r.TxID.String()}
	}
	if err != nil {
		return nil, &TamperedError{Location: locate(st, entry, recordLocation(txID, raw, hint)), Err: err}
	}
	return r, nil
}

// CheckStoredBytes is CheckStoredEntry for a reader that serves the bytes and needs
// no parsed record: a (txID, bytes) pair that passed before in this process passes
// again at the cost of one SHA-256 (servedChecked), without parsing.
func CheckStoredBytes(st *store.Store, entry []byte, txID Hash, raw []byte) error {
	sum := servedSum(txID, raw)
	if servedChecked.has(sum) {
		return nil
	}
	if _, err := CheckStoredEntry(st, entry, txID, raw, Location{}); err != nil {
		return err
	}
	servedChecked.add(sum)
	return nil
}

// servedChecked remembers the (txID, record bytes) pairs CheckStoredBytes passed: the
// same pair passes again, so the cache is as sound as the hash (sigcache.go).
var servedChecked checkedRecords

func servedSum(txID Hash, raw []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte("flownode/served/v1\x00"))
	h.Write(txID[:])
	h.Write(raw)
	return [sha256.Size]byte(h.Sum(nil))
}
