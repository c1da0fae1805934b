package ledger

import (
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
	r, err := ParseRecord(raw)
	if err == nil && r.TxID != txID {
		err = &Mismatch{What: "record stored under txID", Expected: txID.String(), Actual: r.TxID.String()}
	}
	if err == nil {
		err = r.CheckSelf(raw)
	}
	if err != nil {
		return nil, &TamperedError{Location: locate(st, entry, recordLocation(txID, raw, hint)), Err: err}
	}
	return r, nil
}
