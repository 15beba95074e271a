package identity

import (
	"sync"
	"time"
)

// Cache sizes. Each bounds memory whatever callers send.
const (
	maxVerifiedCache   = 16384
	maxTenantCache     = 4096
	maxThrottleEntries = 100000
	tenantCacheTTL     = time.Minute
)

// boundedCache is a map with per-entry expiry and a size cap. When full it
// first drops expired entries, then an arbitrary eighth (map iteration
// order is random), which is enough for caches whose misses only cost a
// recomputation.
type boundedCache[K comparable, T any] struct {
	mu  sync.RWMutex
	max int
	m   map[K]cacheEntry[T]
}

type cacheEntry[T any] struct {
	v   T
	exp time.Time
}

func newBoundedCache[K comparable, T any](max int) *boundedCache[K, T] {
	return &boundedCache[K, T]{max: max, m: make(map[K]cacheEntry[T])}
}

func (c *boundedCache[K, T]) get(key K, now time.Time) (T, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok || !now.Before(e.exp) {
		var zero T
		return zero, false
	}
	return e.v, true
}

func (c *boundedCache[K, T]) put(key K, v T, exp, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		for k, e := range c.m {
			if !now.Before(e.exp) {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.max-c.max/8 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = cacheEntry[T]{v: v, exp: exp}
}

func (c *boundedCache[K, T]) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
