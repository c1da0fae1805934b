package minertest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/flownode/flownode/miner"
)

// Block is a block the Chain accepted.
type Block struct {
	Parent     [32]byte
	ParentTime int64 // Unix ns
	Hash       [32]byte
	Nonce      uint64
	Time       int64 // Unix ns, from the t given to Extend
}

// Chain is an in-memory miner.Chain. Extend checks each block with Params.Check and refuses
// (and records) any that fails, as a ledger would; it is safe for concurrent use.
type Chain struct {
	params miner.Params
	branch [20]byte

	mu       sync.Mutex
	head     [32]byte
	headTime int64
	next     *Block // a head set by SetHead, taken at the next Head call
	blocks   []Block
	rejected []error
	fail     []error
	onExtend func(Block)
}

// NewChain returns a Chain whose head is genesis at genesisTime, for a miner with params p
// on branch.
func NewChain(p miner.Params, branch [20]byte, genesis [32]byte, genesisTime time.Time) *Chain {
	return &Chain{params: p, branch: branch, head: genesis, headTime: genesisTime.UnixNano()}
}

// Head implements miner.Chain.
func (c *Chain) Head() ([32]byte, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next != nil {
		c.head, c.headTime, c.next = c.next.Hash, c.next.Time, nil
	}
	return c.head, c.headTime
}

// Extend implements miner.Chain: it returns the next error queued by FailNext, or checks
// the block and appends it. The block's hash commits to its parent, nonce and time.
func (c *Chain) Extend(ctx context.Context, nonce uint64, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(c.fail) > 0 {
		err := c.fail[0]
		c.fail = c.fail[1:]
		return err
	}
	b := Block{Parent: c.head, ParentTime: c.headTime, Nonce: nonce, Time: t.UnixNano()}
	if err := c.params.Check(b.Parent, b.ParentTime, c.branch, nonce, b.Time); err != nil {
		err = fmt.Errorf("block %d refused: %w", len(c.blocks)+1, err)
		c.rejected = append(c.rejected, err)
		return err
	}
	b.Hash = BlockHash(b.Parent, nonce, b.Time)
	c.blocks = append(c.blocks, b)
	c.head, c.headTime = b.Hash, b.Time
	if c.onExtend != nil {
		c.onExtend(b)
	}
	return nil
}

// BlockHash is the Chain's stand-in for a block header hash: SHA-256(parent ‖ nonce ‖ time),
// integers 8 bytes big-endian.
func BlockHash(parent [32]byte, nonce uint64, timeNs int64) [32]byte {
	var buf [32 + 8 + 8]byte
	copy(buf[:32], parent[:])
	binary.BigEndian.PutUint64(buf[32:], nonce)
	binary.BigEndian.PutUint64(buf[40:], uint64(timeNs))
	return sha256.Sum256(buf[:])
}

// SetHead replaces the head as another writer or a restart would. It takes effect at the
// miner's next Head call, that is between two ticks, so tests stay deterministic.
func (c *Chain) SetHead(hash [32]byte, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next = &Block{Hash: hash, Time: t.UnixNano()}
}

// FailNext makes the next len(errs) Extend calls return errs in order.
func (c *Chain) FailNext(errs ...error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail = append(c.fail, errs...)
}

// OnExtend sets f to be called, under the Chain's lock, with each accepted block.
func (c *Chain) OnExtend(f func(Block)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onExtend = f
}

// Blocks returns the accepted blocks in order.
func (c *Chain) Blocks() []Block {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Block(nil), c.blocks...)
}

// Len returns the number of accepted blocks.
func (c *Chain) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.blocks)
}

// Rejected returns the errors of the blocks Extend refused.
func (c *Chain) Rejected() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]error(nil), c.rejected...)
}
