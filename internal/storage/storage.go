// Package storage defines the port every persistent package writes through:
// an ordered, transactional key-value store with per-key versions.
//
// Keys are UTF-8 strings ordered bytewise; packages own prefixes ending in
// "/" (for example "directory/tenant/"). Values are opaque bytes. Every
// implementation (storage/bolt, later storage/postgres) must pass the
// conformance suite in storage/storagetest. It imports only errkind.
package storage

import (
	"context"
	"unicode/utf8"

	"github.com/customerkey/customerkey/internal/errkind"
)

// Version conditions for Put and Delete.
const (
	// AnyVersion writes or deletes whatever the current version is.
	AnyVersion int64 = -1
	// MustNotExist makes Put a create: it fails with ErrConflict if the key exists.
	MustNotExist int64 = 0
)

// MaxKeyLen bounds a key; MaxValueLen bounds a value.
const (
	MaxKeyLen   = 1024
	MaxValueLen = 16 << 20
)

var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errkind.New(errkind.NotFound, "storage: key not found")
	// ErrConflict: the version condition did not hold.
	ErrConflict = errkind.New(errkind.Conflict, "storage: version conflict")
	// ErrInvalidKey: the key is empty, too long or not valid UTF-8.
	ErrInvalidKey = errkind.New(errkind.Invalid, "storage: invalid key")
	// ErrTooLarge: the value exceeds MaxValueLen.
	ErrTooLarge = errkind.New(errkind.TooLarge, "storage: value too large")
	// ErrReadOnly: a write was attempted in a View transaction.
	ErrReadOnly = errkind.New(errkind.Internal, "storage: write in a read-only transaction")
	// ErrClosed: the backend was closed.
	ErrClosed = errkind.New(errkind.Unavailable, "storage: backend closed")
)

// Entry is one stored key with its value and version. Versions start at 1
// when a key is created and grow by one on every Put; a key deleted and
// created again starts at 1.
type Entry struct {
	Key     string
	Value   []byte
	Version int64
}

// Backend is a transactional store. A transaction sees a consistent snapshot
// and its writes become visible atomically when fn returns nil; when fn
// returns an error (or panics) nothing it wrote is kept. Implementations are
// safe for concurrent use.
type Backend interface {
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// Update runs fn in a read-write transaction. Update may run fn more than
	// once when the backend retries a serialization failure, so fn must not
	// have side effects outside the transaction.
	Update(ctx context.Context, fn func(Tx) error) error
	// Close releases the backend. It is safe to call more than once.
	Close() error
}

// Tx is one transaction. A Tx must not be used after its function returns.
type Tx interface {
	// Get returns the entry for key, or ErrNotFound.
	Get(key string) (Entry, error)
	// Put stores value under key when ifVersion holds (AnyVersion,
	// MustNotExist, or the exact current version) and returns the new
	// version; otherwise ErrConflict. The value is copied.
	Put(key string, value []byte, ifVersion int64) (int64, error)
	// Delete removes key when ifVersion holds. Deleting a missing key with
	// AnyVersion is not an error; with an exact version it is ErrConflict.
	Delete(key string, ifVersion int64) error
	// List returns up to limit entries whose keys start with prefix and sort
	// strictly after after (after=="" starts at the prefix), in key order.
	// limit <= 0 means no limit. Returned values must not be modified.
	List(prefix, after string, limit int) ([]Entry, error)
}

// CheckKey validates a key; backends call it on every operation.
func CheckKey(key string) error {
	if key == "" || len(key) > MaxKeyLen || !utf8.ValidString(key) {
		return ErrInvalidKey
	}
	for i := 0; i < len(key); i++ {
		if key[i] == 0 {
			return ErrInvalidKey
		}
	}
	return nil
}

// Get is a convenience for a single read in its own transaction.
func Get(ctx context.Context, b Backend, key string) (Entry, error) {
	var e Entry
	err := b.View(ctx, func(tx Tx) error {
		var err error
		e, err = tx.Get(key)
		return err
	})
	return e, err
}
