package ledger

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/flownode/flownode/store"
)

// Location names the place of a verification failure: the record (txID, key, Thing),
// the block (branch/no) and the store entry with the Badger file that holds it. Fields
// that do not apply, or that the damaged bytes no longer tell, are empty.
type Location struct {
	Record string `json:"record,omitempty"` // txID
	Key    string `json:"key,omitempty"`
	Thing  string `json:"thing,omitempty"`
	Block  string `json:"block,omitempty"` // branch/no
	Entry  string `json:"entry,omitempty"` // store entry: its prefix letter, '/', its key in hex
	File   string `json:"file,omitempty"`  // the Badger file (store.Locate)
}

// entryName names a store entry by its prefix letter and the rest of its key in hex.
func entryName(key []byte) string {
	if len(key) == 0 {
		return ""
	}
	return string(key[0]) + "/" + hex.EncodeToString(key[1:])
}

// blockName names block no of branch as "branch/no".
func blockName(branch Key, no uint64) string {
	return branch.String() + "/" + strconv.FormatUint(no, 10)
}

// recordLocation names a record from its stored bytes. Damaged bytes may no longer be
// a valid record: its key, Thing and block are then read leniently, and what cannot be
// read is taken from hint (what the caller knows: the key or Thing it asked for).
func recordLocation(txID Hash, raw []byte, hint Location) Location {
	loc := hint
	loc.Record = txID.String()
	var loose struct {
		Key   string `json:"key"`
		Thing string `json:"thing"`
		Block struct {
			Branch string `json:"branch"`
			No     string `json:"no"`
		} `json:"block"`
	}
	if json.Unmarshal(raw, &loose) == nil {
		if loose.Key != "" {
			loc.Key = loose.Key
		}
		if loose.Thing != "" {
			loc.Thing = loose.Thing
		}
		if loose.Block.Branch != "" {
			loc.Block = loose.Block.Branch + "/" + loose.Block.No
		}
	}
	loc.Entry = entryName(store.RecordKey(txID))
	return loc
}

// locate adds the Badger file that holds loc's store entry.
func locate(st *store.Store, key []byte, loc Location) Location {
	loc.Entry = entryName(key)
	if st != nil {
		loc.File = st.Locate(key)
	}
	return loc
}

// describe is how a record's location reads in messages: "record <txID> (key <k>,
// thing <t>, block <branch>/<no>)".
func (l Location) describeRecord() string {
	or := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	return fmt.Sprintf("record %s (key %s, thing %s, block %s)", l.Record, or(l.Key), or(l.Thing), or(l.Block))
}

// where is the store entry and file of a location, for messages.
func (l Location) where() string {
	if l.Entry == "" {
		return ""
	}
	s := "store entry " + l.Entry
	if l.File != "" {
		s += " in " + l.File
	}
	return s
}
