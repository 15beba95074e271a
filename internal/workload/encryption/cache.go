package encryption

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/customerkey/customerkey/internal/envelope"
)

// entry is a loaded scope: its record as of one storage version and its
// unwrapped key, as the precomputed item key derivation. It is immutable
// once built, except for refs: the cache holds one reference while the
// entry is cached and every request one while it uses the key, and the
// key is wiped when the last one is released, so that evicting an entry
// never pulls the key from under a request still deriving item keys from
// it.
type entry struct {
	refs    atomic.Int32
	expires time.Time

	scope   Scope
	allowed map[string]bool // principal object ids
	items   itemKDF         // derives item keys from the scope key
	sealer  *envelope.Sealer
}

// release drops one reference and wipes the key with the last.
func (e *entry) release() {
	if e.refs.Add(-1) == 0 {
		e.items.wipe()
	}
}

// acquire takes a reference unless the entry is already released.
func (e *entry) acquire() bool {
	for {
		n := e.refs.Load()
		if n <= 0 {
			return false
		}
		if e.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

type cacheKey struct{ tid, name string }

// call is one load in flight that later requests for the same scope wait
// for instead of loading again. waiters counts the requests that will
// receive the entry, each holding a reference once it is built.
type call struct {
	done    chan struct{}
	e       *entry
	err     error
	waiters int32
}

// cache keeps loaded scopes for at most ttl, up to max of them, and
// coalesces concurrent loads of one scope. Invalidate drops a scope at once
// (a change made through this process) and keeps a load that began before
// the change from caching what it read.
type cache struct {
	ttl time.Duration // < 0: nothing is kept, loads are still coalesced
	max int
	now func() time.Time

	mu     sync.RWMutex
	m      map[cacheKey]*entry
	flight map[cacheKey]*call
	gen    uint64 // bumped by every invalidation
}

func newCache(ttl time.Duration, max int, now func() time.Time) *cache {
	return &cache{ttl: ttl, max: max, now: now, m: map[cacheKey]*entry{}, flight: map[cacheKey]*call{}}
}

// get returns the entry of k with a reference the caller must release,
// loading it with load on a miss. The load runs detached from ctx (other
// requests may be waiting for it) while the caller waits for it or for
// ctx, whichever ends first.
func (c *cache) get(ctx context.Context, k cacheKey, load func(context.Context) (*entry, error)) (*entry, error) {
	c.mu.RLock()
	e := c.m[k]
	c.mu.RUnlock()
	if e != nil && c.now().Before(e.expires) && e.acquire() {
		return e, nil
	}

	c.mu.Lock()
	if e := c.m[k]; e != nil && c.now().Before(e.expires) && e.acquire() {
		c.mu.Unlock()
		return e, nil
	}
	cl := c.flight[k]
	if cl == nil {
		cl = &call{done: make(chan struct{})}
		c.flight[k] = cl
		gen := c.gen
		detached := context.WithoutCancel(ctx)
		go c.run(detached, k, cl, gen, load)
	}
	cl.waiters++
	c.mu.Unlock()

	select {
	case <-cl.done:
		return cl.e, cl.err
	case <-ctx.Done():
		c.mu.Lock()
		select {
		case <-cl.done:
			// Finished meanwhile: this request's reference was counted.
			if cl.e != nil {
				cl.e.release()
			}
		default:
			cl.waiters--
		}
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

// run loads k for every waiter of cl and caches the result unless an
// invalidation happened since the load began.
func (c *cache) run(ctx context.Context, k cacheKey, cl *call, gen uint64, load func(context.Context) (*entry, error)) {
	e, err := load(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.flight[k] == cl {
		delete(c.flight, k)
	}
	cl.e, cl.err = e, err
	if err == nil {
		n := cl.waiters
		if c.ttl > 0 && gen == c.gen {
			e.expires = c.now().Add(c.ttl)
			c.insertLocked(k, e)
			n++
		}
		if n == 0 {
			// Every waiter gave up and nothing keeps it.
			e.items.wipe()
		}
		e.refs.Store(n)
	}
	close(cl.done)
}

// insertLocked caches e under k, making room by dropping expired entries
// and then, if still full, an arbitrary one.
func (c *cache) insertLocked(k cacheKey, e *entry) {
	if old := c.m[k]; old != nil {
		delete(c.m, k)
		old.release()
	}
	if len(c.m) >= c.max {
		now := c.now()
		for ok, oe := range c.m {
			if !now.Before(oe.expires) {
				delete(c.m, ok)
				oe.release()
			}
		}
		for ok, oe := range c.m {
			if len(c.m) < c.max {
				break
			}
			delete(c.m, ok)
			oe.release()
		}
	}
	c.m[k] = e
}

// clear drops every scope, and stops loads in flight from caching what they
// read.
func (c *cache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.flight)
	for k, e := range c.m {
		delete(c.m, k)
		e.release()
	}
}

// invalidate drops k, and stops loads in flight from caching what they
// read before the change that calls it.
func (c *cache) invalidate(k cacheKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.flight, k)
	if e := c.m[k]; e != nil {
		delete(c.m, k)
		e.release()
	}
}
