package dep

import (
	"context"
	"sync"
	"time"

	"github.com/customerkey/customerkey/internal/envelope"
)

// cacheKey names one version of one policy key.
type cacheKey struct {
	tenant, policy string
	version        int
}

// entry is an unwrapped policy key version. It holds the key only as the
// cipher built from it (the raw bytes are wiped once the cipher exists);
// crypto/aes gives no way to clear the expanded key schedule, so eviction
// drops the cipher and leaves it to the collector. Fields other than
// sealer and kind are guarded by cache.mu.
type entry struct {
	sealer     *envelope.Sealer
	kind       Kind
	expires    time.Time
	timer      *time.Timer
	refreshing bool
	retryAt    time.Time
}

// flight is one unwrap from the root keys that concurrent misses share.
// Its fields are written before done is closed and read only after.
type flight struct {
	done chan struct{}
	ent  *entry
	fail *rootFailure
	err  error
}

// cache keeps unwrapped policy keys for a lifetime, bounded in number. It
// runs on the runtime clock, so tests drive it with testing/synctest.
type cache struct {
	life time.Duration
	size int

	mu      sync.Mutex
	m       map[cacheKey]*entry
	flights map[cacheKey]*flight
	closed  bool
	done    chan struct{} // closed by close: background work stops
	wg      sync.WaitGroup
}

func newCache(life time.Duration, size int) *cache {
	return &cache{life: life, size: size, m: map[cacheKey]*entry{}, flights: map[cacheKey]*flight{}, done: make(chan struct{})}
}

// refreshWindow is how long before expiry a key in use is refreshed.
func (c *cache) refreshWindow() time.Duration { return c.life / 4 }

// retryDelay spaces background refreshes that failed.
func (c *cache) retryDelay() time.Duration { return c.life / 20 }

// lookup returns the live entry for k and whether the caller should start
// a background refresh of it (it is then marked refreshing).
func (c *cache) lookup(k cacheKey) (e *entry, refresh bool) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e = c.m[k]
	if e == nil {
		return nil, false
	}
	if !now.Before(e.expires) {
		c.removeLocked(k, e)
		return nil, false
	}
	if !c.closed && !e.refreshing && e.expires.Sub(now) <= c.refreshWindow() && !now.Before(e.retryAt) {
		e.refreshing = true
		return e, true
	}
	return e, false
}

// join returns the flight for k, and whether the caller leads it (and
// must start the unwrap). It reports false, nil after close.
func (c *cache) join(k cacheKey) (*flight, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false
	}
	if f := c.flights[k]; f != nil {
		return f, false
	}
	f := &flight{done: make(chan struct{})}
	c.flights[k] = f
	return f, true
}

// land ends flight f of k, caching its entry.
func (c *cache) land(k cacheKey, f *flight) {
	c.mu.Lock()
	delete(c.flights, k)
	if f.ent != nil {
		c.putLocked(k, f.ent)
	}
	c.mu.Unlock()
	close(f.done)
}

// newEntry wraps a fresh sealer with a full lifetime.
func (c *cache) newEntry(s *envelope.Sealer, k Kind) *entry {
	return &entry{sealer: s, kind: k, expires: time.Now().Add(c.life)}
}

// putLocked stores e for k, replacing and dropping any older entry, and
// makes room when the cache is full by dropping the entry nearest expiry.
func (c *cache) putLocked(k cacheKey, e *entry) {
	if c.closed {
		return
	}
	if old := c.m[k]; old != nil {
		c.removeLocked(k, old)
	}
	for len(c.m) >= c.size {
		var victim cacheKey
		var ve *entry
		for ck, ce := range c.m {
			if ve == nil || ce.expires.Before(ve.expires) {
				victim, ve = ck, ce
			}
		}
		c.removeLocked(victim, ve)
	}
	c.m[k] = e
	e.timer = time.AfterFunc(time.Until(e.expires), func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.m[k] == e {
			c.removeLocked(k, e)
		}
	})
}

func (c *cache) removeLocked(k cacheKey, e *entry) {
	if e.timer != nil {
		e.timer.Stop()
	}
	if c.m[k] == e {
		delete(c.m, k)
	}
}

// refreshed replaces old with fresh after a background refresh; a refresh
// that failed (fresh nil) is retried after retryDelay.
func (c *cache) refreshed(k cacheKey, old, fresh *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old.refreshing = false
	if fresh == nil {
		old.retryAt = time.Now().Add(c.retryDelay())
		return
	}
	if c.m[k] == old {
		c.putLocked(k, fresh)
	}
}

// evictPolicy drops every cached version of a policy.
func (c *cache) evictPolicy(tenant, policy string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		if k.tenant == tenant && k.policy == policy {
			c.removeLocked(k, e)
		}
	}
}

// clear drops every cached key version.
func (c *cache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.m {
		c.removeLocked(k, e)
	}
}

// len is the number of cached key versions.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// detach returns a context for background work started on behalf of ctx:
// it keeps ctx's values but not its cancellation, ends after timeout, and
// ends when the cache closes. The caller must call the cancel function.
func (c *cache) detach(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	go func() {
		select {
		case <-c.done:
			cancel()
		case <-bg.Done():
		}
	}()
	return bg, cancel
}

// goBackground runs fn in a goroutine that close waits for; it reports
// false (and does not run fn) after close.
func (c *cache) goBackground(fn func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
	return true
}

func (c *cache) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	close(c.done)
	for k, e := range c.m {
		c.removeLocked(k, e)
	}
	c.mu.Unlock()
	c.wg.Wait()
}
