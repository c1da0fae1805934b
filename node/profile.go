package node

import (
	"fmt"
	"time"

	"github.com/flownode/flownode/ledger"
)

// Profile is a named set of defaults, so most users never tune a timer or a cache
// (memberlist's DefaultLANConfig idea).
type Profile struct {
	Name         string
	Store        string              // store profile: memory footprint of Badger
	Mining       ledger.MiningParams // network-wide: part of the genesis block
	MemoryLimit  int64               // soft Go heap limit (GOMEMLIMIT) in bytes; 0 leaves Go's default
	MaxBodyBytes int64               // largest HTTP request body
	MaxBatch     int                 // most readings in one batch request
	// SyncInterval is how often a node reconciles its range with its replicas
	// (anti-entropy) and catches up the blocks of branches it holds records of.
	SyncInterval time.Duration
}

// Profiles are the built-in profiles: gateway (a 128 MB MIPS box), laptop (the default)
// and local (fast blocks for tests).
var Profiles = map[string]Profile{
	"gateway": {
		Name: "gateway", Store: "gateway",
		Mining:      ledger.MiningParams{Rate: 20, MeanBlockTime: time.Second, Mean: 0, Variance: 0.2},
		MemoryLimit: 24 << 20, MaxBodyBytes: 1 << 20, MaxBatch: 1000, SyncInterval: 30 * time.Second,
	},
	"laptop": {
		Name: "laptop", Store: "laptop",
		Mining:       ledger.MiningParams{Rate: 20, MeanBlockTime: time.Second, Mean: 0, Variance: 0.2},
		MaxBodyBytes: 16 << 20, MaxBatch: 10000, SyncInterval: 5 * time.Second,
	},
	"local": {
		Name: "local", Store: "local",
		Mining:       ledger.MiningParams{Rate: 200, MeanBlockTime: 100 * time.Millisecond, Mean: 0, Variance: 0.2},
		MaxBodyBytes: 16 << 20, MaxBatch: 10000, SyncInterval: 500 * time.Millisecond,
	},
}

// LookupProfile returns the named profile or a one-line error listing the choices.
func LookupProfile(name string) (Profile, error) {
	p, ok := Profiles[name]
	if !ok {
		return Profile{}, fmt.Errorf("unknown profile %q: use gateway, laptop or local", name)
	}
	return p, nil
}
