// Package barrier owns encryption at rest: a storage.Backend wrapper that
// encrypts every value with AES-256-GCM before it reaches the inner backend,
// under a keyring of data keys sealed by a root key (a Sealer: a key file by
// default, or a key held in a PKCS#11 HSM, see HSMSealer). No plaintext
// value and no key material reaches the inner backend. Seal and Open
// protect, with the same data keys, what other packages keep outside the
// store (the audit journal's files).
//
// The AAD of every value is its storage key, so a value copied to another
// key fails to decrypt instead of being read as that key's data. Keys
// themselves are stored in the clear, because List must see them in order:
// storage keys must never contain secrets (use IDs and hashes in keys). The
// prefix "core/" is reserved for the barrier's own records.
//
// It imports only storage, secret and errkind from this module (the HSM is
// reached through the small interface HSMKeys) and must not import a
// storage implementation: the composition root chooses the inner backend.
package barrier

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
)

// ReservedPrefix starts every key the barrier keeps for itself.
const ReservedPrefix = "core/"

// keyringKey holds the sealed keyring in the inner backend.
const keyringKey = ReservedPrefix + "keyring"

var (
	// ErrReservedKey: a caller used a key under ReservedPrefix. It matches
	// storage.ErrInvalidKey under errors.Is.
	ErrReservedKey = errkind.Wrap(errkind.Invalid, `barrier: keys under "core/" are reserved`, storage.ErrInvalidKey)
	// ErrUnseal: the keyring could not be unsealed or parsed.
	ErrUnseal = errkind.New(errkind.Internal, "barrier: cannot unseal the keyring: wrong root key or corrupted keyring")
)

// Barrier is an encrypting storage.Backend. It is safe for concurrent use.
type Barrier struct {
	inner  storage.Backend
	sealer Sealer
	rand   io.Reader

	mu sync.Mutex              // serialises replacing kr and Close
	kr atomic.Pointer[keyring] // nil once closed
}

var _ storage.Backend = (*Barrier)(nil)

// Open unseals the keyring stored in inner, creating it (term 1) on first
// use. rand supplies new data keys; nil means crypto/rand.Reader, and
// anything else is for tests only. Nonces always come from crypto/rand
// inside the AEAD, so a weak rand cannot repeat one. On success the Barrier
// owns inner and closes it on Close; the caller keeps the sealer, which
// must outlive the Barrier.
func Open(ctx context.Context, inner storage.Backend, sealer Sealer, rand io.Reader) (*Barrier, error) {
	if inner == nil || sealer == nil {
		return nil, errkind.New(errkind.Internal, "barrier: Open needs an inner backend and a sealer")
	}
	b := &Barrier{inner: inner, sealer: sealer, rand: rand}
	if b.rand == nil {
		b.rand = crand.Reader
	}
	var kr *keyring
	err := inner.Update(ctx, func(tx storage.Tx) error {
		kr.wipe() // Update may run fn again
		kr = nil
		e, err := tx.Get(keyringKey)
		if err == nil {
			kr, err = b.unsealKeyring(ctx, e)
			return err
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		fresh := &keyring{}
		if err := fresh.add(b.rand); err != nil {
			return err
		}
		if fresh.version, err = b.storeKeyring(ctx, tx, fresh, storage.MustNotExist); err != nil {
			fresh.wipe()
			return err
		}
		kr = fresh
		return nil
	})
	if err != nil {
		kr.wipe()
		return nil, err
	}
	b.kr.Store(kr)
	return b, nil
}

// unsealKeyring turns every failure except an unreachable sealer into
// ErrUnseal: a wrong root key and a damaged record cannot be told apart
// here, and no message may show key bytes.
func (b *Barrier) unsealKeyring(ctx context.Context, e storage.Entry) (*keyring, error) {
	p, err := b.sealer.Unseal(ctx, e.Value)
	if err != nil {
		if errkind.Is(err, errkind.Unavailable) {
			return nil, errkind.Wrap(errkind.Unavailable, "barrier: the root key is unavailable", err)
		}
		if errkind.Is(err, errkind.FailedPrecondition) {
			return nil, err // a keyring sealed by the other kind of sealer: the message says what to configure
		}
		return nil, fmt.Errorf("%w: %w", ErrUnseal, err)
	}
	kr, err := decodeKeyring(p)
	secret.Wipe(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnseal, err)
	}
	kr.version = e.Version
	return kr, nil
}

func (b *Barrier) storeKeyring(ctx context.Context, tx storage.Tx, kr *keyring, ifVersion int64) (int64, error) {
	p := kr.encode()
	sealed, err := b.sealer.Seal(ctx, p)
	secret.Wipe(p)
	if err != nil {
		return 0, errkind.Wrap(errkind.KindOf(err), "barrier: cannot seal the keyring", err)
	}
	return tx.Put(keyringKey, sealed, ifVersion)
}

// Rotate adds a new data key term, which encrypts every value written from
// then on; older terms keep decrypting what they wrote. It reads the stored
// keyring inside the transaction and writes it back with a version check,
// so rotations on several nodes cannot lose a term, and the in-memory
// keyring changes only once the new one is committed. It returns the new
// term.
func (b *Barrier) Rotate(ctx context.Context) (uint32, error) {
	if b.kr.Load() == nil {
		return 0, storage.ErrClosed
	}
	var next *keyring
	err := b.inner.Update(ctx, func(tx storage.Tx) error {
		next.wipe()
		next = nil
		e, err := tx.Get(keyringKey)
		if err != nil {
			return errkind.Wrap(errkind.Internal, "barrier: cannot read the keyring", err)
		}
		kr, err := b.unsealKeyring(ctx, e)
		if err != nil {
			return err
		}
		if err := kr.add(b.rand); err != nil {
			kr.wipe()
			return err
		}
		if kr.version, err = b.storeKeyring(ctx, tx, kr, e.Version); err != nil {
			kr.wipe()
			return err
		}
		next = kr
		return nil
	})
	if err != nil {
		next.wipe()
		return 0, err
	}
	term := next.newest()
	b.install(next)
	return term, nil
}

// install makes kr current if it is newer than the current keyring, and
// wipes whichever of the two is no longer needed.
func (b *Barrier) install(kr *keyring) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.kr.Load()
	if cur == nil || kr.version <= cur.version {
		kr.wipe()
		return
	}
	b.kr.Store(kr)
	cur.wipe()
}

// reload reads the keyring through tx when the stored one is newer than
// cur, for a value written by another node after it rotated.
func (b *Barrier) reload(ctx context.Context, tx storage.Tx, cur *keyring) *keyring {
	e, err := tx.Get(keyringKey)
	if err != nil || e.Version <= cur.version {
		return nil
	}
	kr, err := b.unsealKeyring(ctx, e)
	if err != nil {
		return nil
	}
	b.install(kr)
	return b.kr.Load()
}

// View runs fn in a read-only transaction of the inner backend.
func (b *Barrier) View(ctx context.Context, fn func(storage.Tx) error) error {
	return b.run(ctx, false, fn)
}

// Update runs fn in a read-write transaction of the inner backend, with the
// inner backend's retry and panic behaviour.
func (b *Barrier) Update(ctx context.Context, fn func(storage.Tx) error) error {
	return b.run(ctx, true, fn)
}

func (b *Barrier) run(ctx context.Context, writable bool, fn func(storage.Tx) error) error {
	if b.kr.Load() == nil {
		return storage.ErrClosed
	}
	body := func(inner storage.Tx) error {
		kr := b.kr.Load()
		if kr == nil {
			return storage.ErrClosed
		}
		return fn(&tx{ctx: ctx, b: b, inner: inner, kr: kr, writable: writable})
	}
	if writable {
		return b.inner.Update(ctx, body)
	}
	return b.inner.View(ctx, body)
}

// Close closes the inner backend, waiting for its running transactions,
// then wipes the data keys. It is safe to call more than once.
func (b *Barrier) Close() error {
	b.mu.Lock()
	kr := b.kr.Swap(nil)
	b.mu.Unlock()
	if kr == nil {
		return nil
	}
	err := b.inner.Close()
	kr.wipe()
	return err
}

// tx encrypts on the way in and decrypts on the way out.
type tx struct {
	ctx      context.Context
	b        *Barrier
	inner    storage.Tx
	kr       *keyring
	writable bool
}

func checkKey(key string) error {
	if err := storage.CheckKey(key); err != nil {
		return err
	}
	if strings.HasPrefix(key, ReservedPrefix) {
		return ErrReservedKey
	}
	return nil
}

func (t *tx) Get(key string) (storage.Entry, error) {
	if err := checkKey(key); err != nil {
		return storage.Entry{}, err
	}
	e, err := t.inner.Get(key)
	if err != nil {
		return storage.Entry{}, err
	}
	if e.Value, err = t.open(key, e.Value); err != nil {
		return storage.Entry{}, err
	}
	return e, nil
}

func (t *tx) Put(key string, value []byte, ifVersion int64) (int64, error) {
	if !t.writable {
		return 0, storage.ErrReadOnly
	}
	if err := checkKey(key); err != nil {
		return 0, err
	}
	if len(value) > MaxValueLen {
		return 0, storage.ErrTooLarge
	}
	// Sealing copies value, which the port requires of Put.
	return t.inner.Put(key, t.kr.seal(key, value), ifVersion)
}

func (t *tx) Delete(key string, ifVersion int64) error {
	if !t.writable {
		return storage.ErrReadOnly
	}
	if err := checkKey(key); err != nil {
		return err
	}
	return t.inner.Delete(key, ifVersion)
}

// List hides the reserved keys; when it skips one it reads on, so that a
// page still holds limit entries whenever that many exist.
func (t *tx) List(prefix, after string, limit int) ([]storage.Entry, error) {
	if strings.HasPrefix(prefix, ReservedPrefix) {
		if err := storage.CheckKey(prefix); err != nil {
			return nil, err
		}
		return nil, ErrReservedKey
	}
	var out []storage.Entry
	for {
		want := limit
		if limit > 0 {
			want = limit - len(out)
		}
		es, err := t.inner.List(prefix, after, want)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if strings.HasPrefix(e.Key, ReservedPrefix) {
				continue
			}
			if e.Value, err = t.open(e.Key, e.Value); err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		if limit <= 0 || len(es) < want || len(out) >= limit {
			return out, nil
		}
		after = es[len(es)-1].Key
	}
}

// open decrypts v; a value from a term this node has not seen yet makes it
// reload the keyring once, inside the same transaction.
func (t *tx) open(key string, v []byte) ([]byte, error) {
	p, err := t.kr.open(key, v)
	if err == nil {
		return p, nil
	}
	if term, ok := termOf(v); !ok || term <= t.kr.newest() {
		return nil, err
	}
	kr := t.b.reload(t.ctx, t.inner, t.kr)
	if kr == nil {
		return nil, err
	}
	t.kr = kr
	return t.kr.open(key, v)
}
