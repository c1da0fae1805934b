package rpc

import (
	"context"
	"fmt"
	"sync"
)

// callKey identifies a waiting call: the peer it went to and its id.
type callKey struct {
	addr string
	id   uint64
}

// result is what a waiting call receives.
type result struct {
	env *Envelope
	err error
}

// pending holds the calls waiting for replies on one connection (or one
// transport, keyed by peer address).
type pending struct {
	mu    sync.Mutex
	calls map[callKey]chan result
	dead  error // once set, the connection is gone and no call may wait on it
}

func (p *pending) add(k callKey) (chan result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead != nil {
		return nil, p.dead
	}
	if _, dup := p.calls[k]; dup {
		return nil, fmt.Errorf("%w: id %d to %s", ErrDuplicateID, k.id, k.addr)
	}
	if p.calls == nil {
		p.calls = make(map[callKey]chan result)
	}
	ch := make(chan result, 1)
	p.calls[k] = ch
	return ch, nil
}

func (p *pending) remove(k callKey) {
	p.mu.Lock()
	delete(p.calls, k)
	p.mu.Unlock()
}

// resolve hands r to the call waiting under k, and reports whether one was.
func (p *pending) resolve(k callKey, r result) bool {
	p.mu.Lock()
	ch, ok := p.calls[k]
	delete(p.calls, k)
	p.mu.Unlock()
	if ok {
		ch <- r // buffered, and each key resolves once
	}
	return ok
}

// fail ends every waiting call with err and refuses new ones.
func (p *pending) fail(err error) {
	p.mu.Lock()
	calls := p.calls
	p.calls = nil
	if p.dead == nil {
		p.dead = err
	}
	p.mu.Unlock()
	for _, ch := range calls {
		ch <- result{err: err}
	}
}

// replyOf turns what a call received into Call's results: an error reply
// becomes a *RemoteError.
// awaitReply waits for a call's reply, or for ctx to end.
func awaitReply(ctx context.Context, ch <-chan result) (*Envelope, error) {
	select {
	case r := <-ch:
		return replyOf(r)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func replyOf(r result) (*Envelope, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.env.Error != "" {
		return nil, &RemoteError{From: r.env.From, Type: r.env.Type, ID: r.env.ID, Msg: r.env.Error, Reply: r.env}
	}
	return r.env, nil
}
