package node

import (
	"fmt"
	"time"

	"github.com/flownode/flownode/chord/driver"
	"github.com/flownode/flownode/coaps"
	"github.com/flownode/flownode/httpguard"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/store"
)

// Profile is one set of defaults for every layer of a node, so most users
// never tune a timer or a cache (memberlist's DefaultLANConfig idea). Get one
// from GatewayProfile, LaptopProfile or LocalProfile (or ProfileNamed, for a
// command line) and change what you need: each call returns a fresh value.
type Profile struct {
	Name   string
	Store  store.Options       // Badger's sizes: the store's memory footprint
	Ring   driver.Profile      // the Chord driver's tick, timeouts and send workers
	Mining ledger.MiningParams // network-wide: part of the genesis block
	// MemoryLimit is the soft Go heap limit (GOMEMLIMIT) in bytes; 0 leaves
	// Go's default.
	MemoryLimit  int64
	MaxBodyBytes int64 // largest HTTP request body
	MaxBatch     int   // most readings in one batch request
	// DeviceDTLS bounds the devices' coaps port: handshakes, sessions,
	// idleness.
	DeviceDTLS coaps.Limits
	// HTTP is what the clients of the HTTP port may cost together:
	// connections, body bytes in flight, read timeouts.
	HTTP httpguard.Limits
	// SyncInterval is how often a node reconciles its range with its replicas
	// (anti-entropy) and catches up the blocks of branches it holds records of.
	SyncInterval time.Duration
}

// GatewayProfile is for a 128 MB MIPS gateway: low-memory store, slow ring
// timers, a 24 MiB Go heap limit, small requests and few client
// connections (httpguard.GatewayLimits). It mines like laptop (the
// same network).
func GatewayProfile() Profile {
	return Profile{
		Name: "gateway", Store: store.GatewayOptions(), Ring: driver.GatewayProfile(),
		Mining:      ledger.MiningParams{Rate: 20, MeanBlockTime: time.Second, Mean: 0, Variance: 0.2},
		MemoryLimit: 24 << 20, MaxBodyBytes: 1 << 20, MaxBatch: 1000, SyncInterval: 30 * time.Second,
		DeviceDTLS: coaps.GatewayLimits(),
		HTTP:       httpguard.GatewayLimits(),
	}
}

// LaptopProfile is the default, for dev nodes.
func LaptopProfile() Profile {
	return Profile{
		Name: "laptop", Store: store.LaptopOptions(), Ring: driver.LaptopProfile(),
		Mining:       ledger.MiningParams{Rate: 20, MeanBlockTime: time.Second, Mean: 0, Variance: 0.2},
		MaxBodyBytes: 16 << 20, MaxBatch: 10000, SyncInterval: 5 * time.Second,
		DeviceDTLS: coaps.DefaultLimits(),
		HTTP:       httpguard.LaptopLimits(),
	}
}

// LocalProfile is for tests and examples on one machine: fast blocks and
// fast ring timers. It mines faster, so it is a network of its own.
func LocalProfile() Profile {
	return Profile{
		Name: "local", Store: store.LocalOptions(), Ring: driver.LocalProfile(),
		Mining:       ledger.MiningParams{Rate: 200, MeanBlockTime: 100 * time.Millisecond, Mean: 0, Variance: 0.2},
		MaxBodyBytes: 16 << 20, MaxBatch: 10000, SyncInterval: 500 * time.Millisecond,
		DeviceDTLS: coaps.DefaultLimits(),
		HTTP:       httpguard.LaptopLimits(),
	}
}

// ProfileNamed returns the built-in profile of that name (the CLI's
// --profile), or a one-line error listing the choices.
func ProfileNamed(name string) (Profile, error) {
	switch name {
	case "gateway":
		return GatewayProfile(), nil
	case "laptop":
		return LaptopProfile(), nil
	case "local":
		return LocalProfile(), nil
	}
	return Profile{}, fmt.Errorf("unknown profile %q: use gateway, laptop or local", name)
}
