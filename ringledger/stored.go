package ringledger

import (
	"errors"

	"go.uber.org/zap"

	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/store"
)

// Every record this node serves from its own store — to its clients and to peers —
// is checked first (ledger.CheckStored: canonical form, signature, H_DATA, txID; the
// signature cache makes a repeat read cheap). Bytes that no longer verify are never
// served: the read fails with a *ledger.TamperedError naming the record, its block and
// its store entry and file, logged and counted (Stats.Tampered).

// checkedRecord returns the record stored under txID, checked.
func (d *Ledger) checkedRecord(txID ledger.Hash, hint ledger.Location) ([]byte, error) {
	raw, err := d.store.Record(txID)
	if err != nil {
		return nil, err
	}
	return raw, d.checkStored(store.RecordKey(txID), txID, raw, hint)
}

// checkStored checks a record read from this node's store under entry.
func (d *Ledger) checkStored(entry []byte, txID ledger.Hash, raw []byte, hint ledger.Location) error {
	err := ledger.CheckStoredBytes(d.store, entry, txID, raw)
	if err != nil && hint != (ledger.Location{}) {
		// Again with what the caller knows, for the damaged bytes that no longer tell.
		_, err = ledger.CheckStoredEntry(d.store, entry, txID, raw, hint)
	}
	var te *ledger.TamperedError
	if errors.As(err, &te) {
		d.stats.tampered.Add(1)
		d.log.Error("a record in this node's store no longer verifies; it is not served", zap.Error(err),
			zap.String("record", te.Location.Record), zap.String("key", te.Location.Key), zap.String("thing", te.Location.Thing),
			zap.String("block", te.Location.Block), zap.String("entry", te.Location.Entry), zap.String("file", te.Location.File))
	}
	return err
}

// tampered reports whether err is a local record that no longer verifies: a read
// that meets one answers with it instead of looking elsewhere, so that the damage is
// seen.
func tampered(err error) bool {
	var te *ledger.TamperedError
	return errors.As(err, &te)
}
