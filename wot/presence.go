package wot

import "sync"

// presence counts the devices of each Thing connected to this node
// (/object/{id}/send and the CoAP front call Present) and tells the status
// watchers when a Thing's count goes from 0 or to 0.
type presence struct {
	mu       sync.Mutex
	count    map[string]int
	watchers map[string]map[chan bool]struct{}
}

// enter counts one device of thing until the returned release is called
// (once; more calls do nothing).
func (p *presence) enter(thing string) func() {
	p.mu.Lock()
	if p.count == nil {
		p.count = map[string]int{}
	}
	p.count[thing]++
	if p.count[thing] == 1 {
		p.tell(thing, true)
	}
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.count[thing]--; p.count[thing] <= 0 {
				delete(p.count, thing)
				p.tell(thing, false)
			}
		})
	}
}

// watch returns a channel of the Thing's changes (the newest state; a
// watcher that lags sees only the last), the state now, and stop.
func (p *presence) watch(thing string) (<-chan bool, bool, func()) {
	ch := make(chan bool, 1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.watchers == nil {
		p.watchers = map[string]map[chan bool]struct{}{}
	}
	if p.watchers[thing] == nil {
		p.watchers[thing] = map[chan bool]struct{}{}
	}
	p.watchers[thing][ch] = struct{}{}
	return ch, p.count[thing] > 0, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.watchers[thing], ch)
		if len(p.watchers[thing]) == 0 {
			delete(p.watchers, thing)
		}
	}
}

// tell sends the state to the Thing's watchers, replacing a state not read
// yet. p.mu is held.
func (p *presence) tell(thing string, alive bool) {
	for ch := range p.watchers[thing] {
		select {
		case <-ch:
		default:
		}
		ch <- alive
	}
}
