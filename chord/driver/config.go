package driver

import (
	"context"
	"encoding/json"
	"time"

	"go.uber.org/zap"

	"github.com/flownode/flownode/chord"
	"github.com/flownode/flownode/rpc"
)

// Config sets up a Driver.
type Config struct {
	// Self is this node. Its ID is required; an empty Addr is taken from the
	// transport (its Addr method) once it is built.
	Self chord.Peer
	// Profile sets the timers; the zero Profile means LaptopProfile().
	Profile Profile
	// Transport builds the transport with the driver's handler. The driver
	// owns what it returns and closes it in Close. (A factory, because a
	// transport needs its handler when it is built.)
	Transport func(rpc.Handler) (rpc.Transport, error)
	// Ticks, when set, replaces the profile's ticker: each value is one core
	// tick. Tests and benchmarks inject their own.
	Ticks <-chan time.Time
	// OnEvent, when set, sees every core event on the driver's goroutine; it
	// must not block.
	OnEvent func(chord.Event)
	// Messages, when set, answers application MESSAGEs: every MESSAGE that is
	// not the driver's own state query. It runs on the transport's handler
	// goroutine (so it may block for as long as the caller's deadline allows)
	// and what it returns is the reply to the caller's Call; an error becomes
	// an error reply. Without it, MESSAGEs go to the core (chord.Delivered).
	Messages func(ctx context.Context, from chord.Peer, data json.RawMessage) (json.RawMessage, error)
	// Logger defaults to zap.NewNop.
	Logger *zap.Logger
}
