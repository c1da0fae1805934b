package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/coaps"
	"github.com/flownode/flownode/ledger"
	"github.com/flownode/flownode/miner"
	"github.com/flownode/flownode/network"
	"github.com/flownode/flownode/ringledger"
	"github.com/flownode/flownode/rpc"
	"github.com/flownode/flownode/store"
)

// Version is set at build time with -ldflags "-X github.com/flownode/flownode/node.Version=...".
var Version = "dev"

// Config says how to open (Open) or start (Start) a node.
type Config struct {
	DataDir string
	Profile Profile // LaptopProfile() is the daemon's default; a zero Profile is not valid
	// Network is the name of the network the data directory must belong to
	// ("": any). The network itself (its authority, its mining rules, this
	// node's membership) is in the data directory (see package network and
	// flownode admit); a data directory with none becomes a one-node network
	// of this name (ledger.DefaultNetwork when empty).
	Network string
	// Advertise is the address peers and clients reach this node at: its
	// HTTP host:port. For Start it may be a host alone (the port is then
	// Listen's) or empty (Listen's host, 127.0.0.1 for an unspecified one).
	Advertise string
	Replicas  int // k, copies of each entry in a ring (owner included); 0: DefaultReplicas
	Log       *zap.Logger

	// The ring, for Start (Open ignores these).

	// Listen is the TCP address for HTTP and WebSocket RPC; "" is ":8000".
	// Port 0 picks a free port.
	Listen string
	// CoAPListen is the UDP address for CoAP RPC; "" is ":5683". Port 0
	// picks a free port.
	CoAPListen string
	// CoAPSListen is the UDP address of the devices' coaps port: CoAP over
	// DTLS with pre-shared keys (package coaps; the daemon's default is
	// DefaultCoAPSListen); "" serves none. Port 0 picks a free port.
	// DevicePSK gives the key of a device's PSK identity, or an error
	// (unknown, revoked, expired: its handshake fails); nil fails them all.
	CoAPSListen string
	DevicePSK   func(identity []byte) (key []byte, err error)
	// RPC is the transport this node advertises to peers: "ws" (the
	// default) or "coap". It listens on both either way.
	RPC string
	// Join lists peers to join through: ws://HOST:PORT, coaps://HOST:PORT (coap:// means the same: peers speak CoAP over DTLS) or
	// HOST:PORT (WebSocket on the peer's HTTP port). Empty: create a ring.
	Join []string
	// Seed makes this node start a new ring when none of the Join peers is
	// in one (give it to one node of a fixed set).
	Seed bool
	// AllowHosts are host names clients may reach the node under besides
	// IP literals, localhost and Advertise's host (the daemon's
	// --allow-host); requests for any other Host are refused (DNS
	// rebinding). AllowOrigins are foreign origins (scheme://host[:port])
	// whose pages may write and open WebSockets (--allow-origin). See
	// package httpguard.
	AllowHosts   []string
	AllowOrigins []string

	// Hooks. They run on one goroutine of the node's own, in order, never on
	// the write or read path (see hooks); Close delivers the queued ones.

	// OnRecord is called for each reading this node signs as its owner, once
	// the record is durable here, with its receipt and the record's stored
	// bytes (JSON-LD; do not modify them). A reading an entry node resent
	// after a failure may be reported twice: the txID identifies it.
	OnRecord func(rc Receipt, record []byte)
	// OnQuery is called for each read the node answered for a client
	// (Record, LocalRecord, RecordsByKey, RecordsByThing).
	OnQuery func(Query)
	// AwaitChecks makes the node refuse to sign readings (with an error the
	// entry node retries) until a layer has registered its checks
	// (CheckReadings): a daemon whose Web of Things checks device
	// signatures must not sign, in the moment between Start and the layer's
	// start, what the checks would refuse.
	AwaitChecks bool
}

// Node is one flownode: identity, store, ledger, miner and, once attached, its ring.
type Node struct {
	cfg Config
	// verifyChecks are the layers' additions to Verify (AddVerifyCheck).
	verifyChecks sync.Map
	id           *ledger.Identity
	members      *network.Members // the network, this node's membership, revocations
	// reverifiers are the transports that authenticate peers (set by Start).
	reverifiers []interface{ Reverify() }
	store       *store.Store
	ledger      *ledger.Ledger
	miner       *miner.Miner
	params      miner.Params
	started     time.Time
	log         *zap.Logger
	ring        Ring               // nil: a ring of one
	dist        *ringledger.Ledger // its share of the distributed ledger
	hooks       *hooks
	ops         opTable    // the layers' ops (ops.go)
	puts        putHooks   // the layers' entry hooks (onput.go)
	checks      checkHooks // the layers' owner checks (onput.go)
	run         *running   // set by Start
	// deviceCoAP serves the plain CoAP datagrams of devices on the CoAP
	// port (ServeDeviceCoAP); nil drops them.
	deviceCoAP atomic.Pointer[rpc.PlainCoAP]
	// coapAddr is host:port of the CoAP port as advertised (Start).
	coapAddr string
	// The devices' coaps port (Start, Config.CoAPSListen): its listener,
	// host:port as advertised, and the handler of its datagrams
	// (ServeDeviceCoAPS; nil drops them).
	coaps       *coaps.Listener
	coapsAddr   string
	deviceCoAPS atomic.Pointer[coaps.Handler]
	closeOnce   sync.Once
	closeErr    error
}

// Open opens (or creates) the node's data directory.
func Open(cfg Config) (*Node, error) {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	// The profile's limit is a default: GOMEMLIMIT, when the operator set it,
	// is what the Go runtime already applies, and it wins.
	if _, set := os.LookupEnv("GOMEMLIMIT"); cfg.Profile.MemoryLimit > 0 && !set {
		debug.SetMemoryLimit(cfg.Profile.MemoryLimit)
	}
	members, err := loadNetwork(cfg.DataDir, cfg.Network, cfg.Profile.Mining, len(cfg.Join) > 0, cfg.Log)
	if err != nil {
		return nil, err
	}
	if err := members.CheckSelf(); err != nil {
		return nil, fmt.Errorf("%w; the network's authority renews it with `flownode admit --network AUTHORITYDIR --data %s`", err, cfg.DataDir)
	}
	desc := members.Description()
	cfg.Network = desc.Name
	g, err := desc.Genesis()
	if err != nil {
		return nil, err
	}
	params := MinerParams(desc.Mining)
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("network %s: %w", desc.Name, err)
	}
	id, err := ledger.LoadIdentity(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if _, err := members.Certificate(id); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.DataDir, err)
	}
	st, err := store.Open(cfg.DataDir, cfg.Profile.Store, cfg.Log.Named("store"))
	if err != nil {
		return nil, err
	}
	l, err := ledger.Open(ledger.Config{Genesis: g, Identity: id, Store: st, Proof: ProofCheck(g), Log: cfg.Log.Named("ledger")})
	if err != nil {
		st.Close()
		return nil, err
	}
	n := &Node{cfg: cfg, id: id, members: members, store: st, ledger: l, params: params, started: time.Now(), log: cfg.Log,
		hooks: newHooks(cfg.OnRecord, cfg.OnQuery)}
	n.dist = ringledger.New(ringledger.Config{Self: n.Self(), Ledger: l, Store: st, Replicas: cfg.Replicas, Members: ringMembers{members},
		SyncInterval: cfg.Profile.SyncInterval, Log: cfg.Log.Named("dist"), OnRecord: n.hooks.record(), Check: n.checkReadings})
	// The ledger is the miner's Backlog: no attempts, and so no blocks, while its head
	// holds nothing to seal.
	n.miner = miner.New(params, id.ID, l, miner.NewTicker, time.Now, cfg.Log.Named("miner"))
	return n, nil
}

// An idle node writes no blocks: the miner asks the ledger whether it has records to seal.
var _ miner.Backlog = (*ledger.Ledger)(nil)

// MinerParams converts the genesis's mining parameters for the miner.
func MinerParams(m ledger.MiningParams) miner.Params {
	return miner.Params{Rate: m.Rate, MeanBlockTime: m.MeanBlockTime, Mean: m.Mean, Variance: m.Variance}
}

// ProofCheck is the proof rule of a genesis's network: the miner's check, then the
// block's proof digest, which seeds its child's draw.
func ProofCheck(g *ledger.Genesis) ledger.ProofCheck {
	p := MinerParams(g.Mining)
	return func(seed [32]byte, parentTime int64, branch [20]byte, nonce uint64, blockTime int64) ([32]byte, error) {
		if err := p.Check(seed, parentTime, branch, nonce, blockTime); err != nil {
			return [32]byte{}, err
		}
		return miner.ProofDigest(seed, branch, nonce), nil
	}
}

// Run mines the node's branch until ctx ends.
func (n *Node) Run(ctx context.Context) error {
	err := n.miner.Run(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Close stops the node's ring work, delivers the hooks' queued calls and
// closes the store; Run must have returned. (Close does not leave the ring:
// see Leave. A node made by Start is stopped with Stop.)
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.dist.Close()
		n.hooks.close()
		n.closeErr = n.store.Close()
	})
	return n.closeErr
}

// ID returns the node's ID.
func (n *Node) ID() ledger.Key { return n.id.ID }

// Self names this node as a peer.
func (n *Node) Self() Peer { return Peer{ID: n.id.ID, Addr: n.cfg.Advertise} }

// Profile returns the profile the node runs with.
func (n *Node) Profile() Profile { return n.cfg.Profile }

// Ledger returns the node's ledger.
func (n *Node) Ledger() *ledger.Ledger { return n.ledger }

// MinerStats returns the miner's counters.
func (n *Node) MinerStats() miner.Stats { return n.miner.Stats() }

// StoreStats returns the store's counters.
func (n *Node) StoreStats() store.Stats { return n.store.Stats() }

// Uptime is how long the node has been open.
func (n *Node) Uptime() time.Duration { return time.Since(n.started) }

// Ready says why the node cannot serve writes yet, or nil.
func (n *Node) Ready() error {
	if n.store.Closed() {
		return errors.New("store is closed")
	}
	return n.ringReady()
}
