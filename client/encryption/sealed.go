package encryption

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Sealed format, version 1 (what Seal returns and Open takes):
//
//	"CKS" 0x01 | n (uint16 big-endian) | wrapped data key (n bytes, as the server issued it)
//	           | nonce (12 bytes) | AES-256-GCM ciphertext | tag (16 bytes)
//
// Everything before the nonce is the header. GCM's additional data is a
// label, the scope name, the header and the caller's aad, so that a sealed
// item opens only in its scope, with its wrapped key and its context. The
// nonce is random (crypto/rand inside the AEAD); a data key seals at most
// MaxItemsPerDataKey items.
const (
	sealedMagic = "CKS\x01"
	sealedLabel = "customerkey/encryption/sealed/v1\x00"
	nonceLen    = 12
	tagLen      = 16
	// maxWrapped bounds the wrapped key Open accepts; the server's are
	// about 70 to 130 bytes.
	maxWrapped = 1024
)

// ErrOpen is returned by Open for an item that does not authenticate: the
// wrong scope or aad, or changed bytes. Which one is deliberately not said.
var ErrOpen = errors.New("encryption: the sealed item cannot be opened: it was sealed in another scope or with other additional data, or it was changed")

// ErrMalformed is returned by Open for bytes that are not a sealed item.
var ErrMalformed = errors.New("encryption: the value is not a sealed item of this package (truncated, another format or version, or a damaged header)")

// dataKey is one data key's cipher and the header its items carry. The raw
// key is wiped as soon as the cipher is built: what remains in memory is
// crypto/aes's expanded key schedule inside the AEAD, which Go offers no
// way to wipe; dropping the last reference (eviction) lets it be freed.
type dataKey struct {
	aead    cipher.AEAD
	header  []byte // sealedMagic, length, wrapped key
	expires time.Time
	uses    atomic.Int64 // items sealed or opened
	bytes   atomic.Int64 // plaintext bytes sealed
}

func newDataKey(key, wrapped []byte, expires time.Time) (*dataKey, error) {
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("encryption: building the data key cipher: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("encryption: building the data key cipher: %w", err)
	}
	h := make([]byte, 0, len(sealedMagic)+2+len(wrapped))
	h = append(h, sealedMagic...)
	h = binary.BigEndian.AppendUint16(h, uint16(len(wrapped)))
	h = append(h, wrapped...)
	return &dataKey{aead: aead, header: h, expires: expires}, nil
}

// reserve counts one item of n bytes against k's bounds and reports
// whether k may still take it. A key that refuses once is spent.
func (k *dataKey) reserve(c *Client, n int) bool {
	return c.now().Before(k.expires) && k.uses.Add(1) <= c.maxItems && k.bytes.Add(int64(n)) <= c.maxBytes
}

// additionalData is what GCM authenticates besides the ciphertext.
func additionalData(scope string, header, aad []byte) []byte {
	ad := make([]byte, 0, len(sealedLabel)+len(scope)+1+len(header)+len(aad))
	ad = append(ad, sealedLabel...)
	ad = append(ad, scope...)
	ad = append(ad, 0)
	ad = append(ad, header...)
	return append(ad, aad...)
}

// Seal encrypts plaintext locally under the current data key of scope,
// fetching a new one from the server when there is none or it has reached
// its bounds, and returns the sealed item, which carries the wrapped data
// key. The caller must be a principal of the scope.
func (c *Client) Seal(ctx context.Context, scope string, plaintext, aad []byte) ([]byte, error) {
	if int64(len(plaintext)) > c.maxBytes {
		return nil, fmt.Errorf("encryption: the item is %d bytes, more than MaxBytesPerDataKey (%d)", len(plaintext), c.maxBytes)
	}
	k, err := c.sealKey(ctx, scope, len(plaintext))
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(k.header), len(k.header)+nonceLen+len(plaintext)+tagLen)
	copy(out, k.header)
	return k.aead.Seal(out, nil, plaintext, additionalData(scope, k.header, aad)), nil
}

// Open decrypts an item of Seal made in scope with the same aad. The first
// item of each data key costs one round trip to unwrap it; later ones are
// served from the cache within the data key bounds.
func (c *Client) Open(ctx context.Context, scope string, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < len(sealedMagic)+2 || string(sealed[:len(sealedMagic)]) != sealedMagic {
		return nil, ErrMalformed
	}
	n := int(binary.BigEndian.Uint16(sealed[len(sealedMagic):]))
	h := len(sealedMagic) + 2 + n
	if n == 0 || n > maxWrapped || len(sealed) < h+nonceLen+tagLen {
		return nil, ErrMalformed
	}
	header := sealed[:h]
	k, err := c.openKey(ctx, scope, header[len(sealedMagic)+2:])
	if err != nil {
		return nil, err
	}
	out, err := k.aead.Open(make([]byte, 0, len(sealed)-h-nonceLen-tagLen), nil, sealed[h:], additionalData(scope, header, aad))
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// flight is a data key fetch that concurrent callers wait for instead of
// fetching again; err is its outcome, set before done is closed.
type flight struct {
	done chan struct{}
	err  error
}

// wait waits for f or ctx.
func (f *flight) wait(ctx context.Context) error {
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sealSlot holds a scope's current data key for Seal.
type sealSlot struct {
	cur   atomic.Pointer[dataKey]
	mu    sync.Mutex
	fetch *flight
}

// sealKey returns a data key of scope that took one more item of n bytes.
// Concurrent callers that find the key spent wait for one fetch and share
// its failure.
func (c *Client) sealKey(ctx context.Context, scope string, n int) (*dataKey, error) {
	slot := c.keys.slot(scope)
	for {
		if k := slot.cur.Load(); k != nil && k.reserve(c, n) {
			return k, nil
		}
		slot.mu.Lock()
		if k := slot.cur.Load(); k != nil && k.reserve(c, n) {
			slot.mu.Unlock()
			return k, nil
		}
		if f := slot.fetch; f != nil {
			slot.mu.Unlock()
			if err := f.wait(ctx); err != nil {
				return nil, err
			}
			continue
		}
		f := &flight{done: make(chan struct{})}
		slot.fetch = f
		slot.mu.Unlock()
		k, err := c.newSealKey(ctx, scope)
		slot.mu.Lock()
		if err == nil {
			slot.cur.Store(k)
		}
		slot.fetch, f.err = nil, err
		close(f.done)
		slot.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
}

// newSealKey fetches a new data key of scope. Open finds it in its cache
// too, with counters of its own, so that items just sealed open without a
// round trip and opening does not spend the sealing budget.
func (c *Client) newSealKey(ctx context.Context, scope string) (*dataKey, error) {
	key, wrapped, err := c.fetchKey(ctx, scope, nil)
	if err != nil {
		return nil, err
	}
	k, err := newDataKey(key, wrapped, c.now().Add(c.lifetime))
	if err != nil {
		return nil, err
	}
	c.keys.put(openID(scope, wrapped), &dataKey{aead: k.aead, header: k.header, expires: k.expires}, c.now())
	return k, nil
}

// openKey returns the cached key of a wrapped data key of scope, with one
// use counted, or fetches it once however many callers ask at the same
// time.
func (c *Client) openKey(ctx context.Context, scope string, wrapped []byte) (*dataKey, error) {
	id := openID(scope, wrapped)
	for {
		k, f, leader := c.keys.lookup(id, c)
		if k != nil {
			return k, nil
		}
		if !leader {
			if err := f.wait(ctx); err != nil {
				return nil, err
			}
			continue
		}
		key, _, err := c.fetchKey(ctx, scope, wrapped)
		if err == nil {
			k, err = newDataKey(key, wrapped, c.now().Add(c.lifetime))
		}
		c.keys.done(id, f, k, err, c.now())
		if err != nil {
			return nil, err
		}
	}
}

// openKeyID names a wrapped data key of a scope in the cache.
type openKeyID struct {
	scope string
	hash  [sha256.Size]byte
}

func openID(scope string, wrapped []byte) openKeyID {
	return openKeyID{scope: scope, hash: sha256.Sum256(wrapped)}
}

// keyCache holds the seal slots of scopes and the data keys Open may use,
// at most max of the latter.
type keyCache struct {
	max   int
	slots sync.Map // scope -> *sealSlot; read on every Seal without a lock

	mu      sync.RWMutex
	keys    map[openKeyID]*dataKey
	fetches map[openKeyID]*flight
}

func newKeyCache(max int) *keyCache {
	return &keyCache{max: max, keys: map[openKeyID]*dataKey{}, fetches: map[openKeyID]*flight{}}
}

func (kc *keyCache) slot(scope string) *sealSlot {
	if s, ok := kc.slots.Load(scope); ok {
		return s.(*sealSlot)
	}
	s, _ := kc.slots.LoadOrStore(scope, &sealSlot{})
	return s.(*sealSlot)
}

// lookup returns a usable cached key with one use counted; or the fetch in
// flight to wait for; or a new fetch the caller is to make (leader) and end
// with done.
func (kc *keyCache) lookup(id openKeyID, c *Client) (k *dataKey, f *flight, leader bool) {
	kc.mu.RLock()
	k = kc.keys[id]
	kc.mu.RUnlock()
	if k != nil && k.reserve(c, 0) {
		return k, nil, false
	}
	kc.mu.Lock()
	defer kc.mu.Unlock()
	if k := kc.keys[id]; k != nil {
		if k.reserve(c, 0) {
			return k, nil, false
		}
		delete(kc.keys, id) // spent or expired
	}
	if f := kc.fetches[id]; f != nil {
		return nil, f, false
	}
	f = &flight{done: make(chan struct{})}
	kc.fetches[id] = f
	return nil, f, true
}

// done ends the fetch f of id with its outcome, caching k when it is not
// nil.
func (kc *keyCache) done(id openKeyID, f *flight, k *dataKey, err error, now time.Time) {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	if k != nil {
		kc.putLocked(id, k, now)
	}
	f.err = err
	close(f.done)
	delete(kc.fetches, id)
}

func (kc *keyCache) put(id openKeyID, k *dataKey, now time.Time) {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	kc.putLocked(id, k, now)
}

// putLocked caches k, making room by dropping expired keys and then the
// one that expires first.
func (kc *keyCache) putLocked(id openKeyID, k *dataKey, now time.Time) {
	if len(kc.keys) >= kc.max {
		var first openKeyID
		var firstExp time.Time
		for oid, ok := range kc.keys {
			if !now.Before(ok.expires) {
				delete(kc.keys, oid)
				continue
			}
			if firstExp.IsZero() || ok.expires.Before(firstExp) {
				first, firstExp = oid, ok.expires
			}
		}
		if len(kc.keys) >= kc.max {
			delete(kc.keys, first)
		}
	}
	kc.keys[id] = k
}
