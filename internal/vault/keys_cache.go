package vault

import (
	"container/list"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"math/big"
	"sync"
	"time"
)

// keyCache keeps what the hot path needs so that a crypto operation or a
// GetKey reads nothing from the store in the common case: vaults by name,
// subscription state, the latest version of each key, and key versions
// with their parsed private keys.
//
// An entry is trusted for ttl after it was read from the store; after that
// it is revalidated with one read transaction (the key record and the
// version record). The private key of a version never changes, so a
// revalidation keeps the parsed key and only refreshes attributes. Changes
// made through this process drop or mark stale what they touch at once;
// changes made by another node are dropped when its notification arrives
// (Options.Bus, milliseconds) and seen within ttl if it is lost.
//
// The parsed versions are bounded (least recently used goes first); the
// small maps (vaults, subscriptions, latest pointers) are bounded by the
// same number and lose arbitrary entries when full. An evicted private key
// is wiped once no operation is using it (see wipeSigner for what that can
// and cannot reach).
type keyCache struct {
	ttl time.Duration // <= 0: nothing is trusted, every use reads the store
	max int

	mu       sync.Mutex
	gen      uint64 // bumped by every invalidation; fills started earlier are not trusted
	vaults   map[string]cachedVault
	subs     map[string]cachedSub
	latest   map[nameKey]cachedLatest
	versions map[verCacheKey]*list.Element // of *cachedVersion
	byName   map[nameKey]map[string]*cachedVersion
	lru      list.List
}

type nameKey struct{ uid, name string } // name lowercased

type verCacheKey struct {
	nameKey
	version string // lowercased
}

type cachedVault struct {
	v  Vault
	at time.Time
}

type cachedSub struct {
	usable    error
	protected bool
	at        time.Time
}

type cachedLatest struct {
	version string
	at      time.Time
}

// privateKey is what a cached version operates with: a parsed software key
// (a crypto.Signer) or, for an -HSM version, an *hsmKey naming the HSM
// object.
type privateKey interface {
	Public() crypto.PublicKey
}

// cachedVersion is a parsed key version. meta and at are guarded by the
// cache's mutex; signer is set once and wiped only when the entry is gone
// and refs is zero.
type cachedVersion struct {
	key     verCacheKey
	meta    versionRecord
	at      time.Time
	signer  privateKey
	refs    int
	evicted bool
	elem    *list.Element
}

func newKeyCache(ttl time.Duration, max int) *keyCache {
	if max <= 0 {
		max = DefaultKeyCacheSize
	}
	return &keyCache{ttl: ttl, max: max, vaults: map[string]cachedVault{}, subs: map[string]cachedSub{},
		latest: map[nameKey]cachedLatest{}, versions: map[verCacheKey]*list.Element{},
		byName: map[nameKey]map[string]*cachedVersion{}}
}

func (c *keyCache) fresh(at, now time.Time) bool {
	return c.ttl > 0 && !at.IsZero() && now.Sub(at) < c.ttl && !now.Before(at)
}

// generation returns the invalidation counter; pass it to the put calls of
// a fill so that a fill racing with an invalidation is not trusted.
func (c *keyCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// stamp is at, or the zero time (stale) when an invalidation happened
// since gen was taken.
func (c *keyCache) stamp(gen uint64, at time.Time) time.Time {
	if gen != c.gen {
		return time.Time{}
	}
	return at
}

func (c *keyCache) vault(name string, now time.Time) (Vault, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.vaults[fold(name)]
	if !ok || !c.fresh(e.at, now) {
		return Vault{}, false
	}
	return e.v, true
}

func (c *keyCache) putVault(gen uint64, v Vault, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	makeRoom(c.vaults, c.max)
	c.vaults[fold(v.Name)] = cachedVault{v: v, at: c.stamp(gen, at)}
}

func (c *keyCache) sub(id string, now time.Time) (cachedSub, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.subs[fold(id)]
	if !ok || !c.fresh(e.at, now) {
		return cachedSub{}, false
	}
	return e, true
}

func (c *keyCache) putSub(id string, e cachedSub) {
	c.mu.Lock()
	defer c.mu.Unlock()
	makeRoom(c.subs, c.max)
	c.subs[fold(id)] = e
}

// latestVersion returns the cached latest version of a key, if any, and
// whether it can be trusted without a read. A stale answer is still worth
// having: it names the entry whose parsed key a revalidation keeps.
func (c *keyCache) latestVersion(k nameKey, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.latest[k]
	if !ok {
		return "", false
	}
	return e.version, c.fresh(e.at, now)
}

// acquire returns the cached version k with a reference the caller must
// give back with release, and whether it can be trusted without a read.
// It returns nil when k is not cached.
func (c *keyCache) acquire(k verCacheKey, now time.Time) (*cachedVersion, versionRecord, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.versions[k]
	if !ok {
		return nil, versionRecord{}, false
	}
	e := el.Value.(*cachedVersion)
	c.lru.MoveToFront(el)
	e.refs++
	return e, e.meta, c.fresh(e.at, now)
}

// release gives back a reference taken by acquire or put.
func (c *keyCache) release(e *cachedVersion) {
	if e == nil {
		return
	}
	c.mu.Lock()
	e.refs--
	wipe := e.evicted && e.refs == 0
	c.mu.Unlock()
	if wipe {
		wipeSigner(e.signer)
	}
}

// refresh records that a read confirmed e (held by the caller) with meta
// at at, and, when latest is set, that it is the key's latest version.
func (c *keyCache) refresh(gen uint64, e *cachedVersion, meta versionRecord, latest bool, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	at = c.stamp(gen, at)
	if latest {
		makeRoom(c.latest, c.max)
		c.latest[e.key.nameKey] = cachedLatest{version: e.key.version, at: at}
	}
	e.meta = meta
	if !e.evicted {
		e.at = at
	}
}

// put caches a version read from the store with its freshly parsed
// signer, like refresh. It returns the entry with a reference the caller
// must release. When another fill cached the version meanwhile, that entry
// is returned and signer is wiped.
func (c *keyCache) put(gen uint64, k verCacheKey, meta versionRecord, signer privateKey, latest bool, at time.Time) *cachedVersion {
	c.mu.Lock()
	at = c.stamp(gen, at)
	if latest {
		makeRoom(c.latest, c.max)
		c.latest[k.nameKey] = cachedLatest{version: k.version, at: at}
	}
	var wipe []privateKey
	var e *cachedVersion
	if el, ok := c.versions[k]; ok {
		e = el.Value.(*cachedVersion)
		c.lru.MoveToFront(el)
		e.meta, e.at = meta, at
		wipe = append(wipe, signer)
	} else {
		e = &cachedVersion{key: k, meta: meta, at: at, signer: signer}
		e.elem = c.lru.PushFront(e)
		c.versions[k] = e.elem
		names := c.byName[k.nameKey]
		if names == nil {
			names = map[string]*cachedVersion{}
			c.byName[k.nameKey] = names
		}
		names[k.version] = e
	}
	e.refs++
	for c.lru.Len() > c.max {
		old := c.lru.Back().Value.(*cachedVersion)
		if s := c.evictLocked(old); s != nil {
			wipe = append(wipe, s)
		}
	}
	c.mu.Unlock()
	for _, s := range wipe {
		wipeSigner(s)
	}
	return e
}

// evictLocked removes e from the cache and returns its signer when it can
// be wiped now (no operation holds it).
func (c *keyCache) evictLocked(e *cachedVersion) privateKey {
	if e.evicted {
		return nil
	}
	e.evicted = true
	c.lru.Remove(e.elem)
	delete(c.versions, e.key)
	if names := c.byName[e.key.nameKey]; names != nil {
		delete(names, e.key.version)
		if len(names) == 0 {
			delete(c.byName, e.key.nameKey)
		}
	}
	if e.refs == 0 {
		return e.signer
	}
	return nil
}

// forgetKey is called after a change to a key made through this process:
// its latest pointer is dropped and its versions must be read again. With
// purge, the versions are evicted and their private keys wiped. It returns
// the new generation, for a fill that follows the change.
func (c *keyCache) forgetKey(k nameKey, purge bool) uint64 {
	return c.drop(k, purge, true)
}

// evictKey drops a key a read found gone (deleted through another node),
// wiping its private keys. It is not an invalidation: fills in progress
// stay trusted.
func (c *keyCache) evictKey(k nameKey) { c.drop(k, true, false) }

func (c *keyCache) drop(k nameKey, purge, bump bool) uint64 {
	c.mu.Lock()
	if bump {
		c.gen++
	}
	gen := c.gen
	delete(c.latest, k)
	var wipe []privateKey
	for _, e := range c.byName[k] {
		if purge {
			if s := c.evictLocked(e); s != nil {
				wipe = append(wipe, s)
			}
		} else {
			e.at = time.Time{}
		}
	}
	c.mu.Unlock()
	for _, s := range wipe {
		wipeSigner(s)
	}
	return gen
}

// forgetVault is called after a change to a vault made through this
// process; "" forgets every vault.
func (c *keyCache) forgetVault(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if name == "" {
		clear(c.vaults)
		return
	}
	delete(c.vaults, fold(name))
}

// dropUID evicts every cached version of the vault with uid (purged), and
// wipes their private keys.
func (c *keyCache) dropUID(uid string) {
	c.mu.Lock()
	c.gen++
	var wipe []privateKey
	for k, names := range c.byName {
		if k.uid != uid {
			continue
		}
		delete(c.latest, k)
		for _, e := range names {
			if s := c.evictLocked(e); s != nil {
				wipe = append(wipe, s)
			}
		}
	}
	c.mu.Unlock()
	for _, s := range wipe {
		wipeSigner(s)
	}
}

// makeRoom drops an arbitrary entry of m when it holds max entries.
func makeRoom[K comparable, V any](m map[K]V, max int) {
	for k := range m {
		if len(m) < max {
			return
		}
		delete(m, k)
	}
}

// wipeSigner clears what Go lets us reach of a private key: the secret
// big.Int words of RSA (D, the primes and the CRT values) and ECDSA (D),
// or whatever a key type with a Wipe method clears. It cannot reach the
// copies the standard library keeps inside the key (since Go 1.20 an RSA
// key holds an internal crypto/internal/fips140/rsa form after Precompute,
// and an ECDSA key an internal encoding of its scalar): those live until
// the garbage collector reclaims the key. Key material in memory is
// therefore bounded in time by the cache, not erased byte for byte. An
// *hsmKey holds no secret and needs nothing.
func wipeSigner(k privateKey) {
	switch k := k.(type) {
	case nil:
	case interface{ Wipe() }:
		k.Wipe()
	case *rsa.PrivateKey:
		wipeInt(k.D)
		for _, p := range k.Primes {
			wipeInt(p)
		}
		wipeInt(k.Precomputed.Dp)
		wipeInt(k.Precomputed.Dq)
		wipeInt(k.Precomputed.Qinv)
		for _, v := range k.Precomputed.CRTValues {
			wipeInt(v.Exp)
			wipeInt(v.Coeff)
			wipeInt(v.R)
		}
	case *ecdsa.PrivateKey:
		wipeInt(k.D)
	}
}

func wipeInt(x *big.Int) {
	if x == nil {
		return
	}
	clear(x.Bits())
	x.SetInt64(0)
}

// flush empties the cache, wiping every private key no operation holds:
// another node reported a change it could not name, or notifications may
// have been missed.
func (c *keyCache) flush() {
	c.mu.Lock()
	c.gen++
	clear(c.vaults)
	clear(c.subs)
	clear(c.latest)
	var wipe []privateKey
	for _, el := range c.versions {
		if s := c.evictLocked(el.Value.(*cachedVersion)); s != nil {
			wipe = append(wipe, s)
		}
	}
	c.mu.Unlock()
	for _, s := range wipe {
		wipeSigner(s)
	}
}
