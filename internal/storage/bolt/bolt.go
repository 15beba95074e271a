// Package bolt owns the embedded storage backend: one bbolt file, one
// bucket, fsync on every commit. It is the default for a single process;
// storage/postgres serves several nodes.
//
// Each bbolt value is the key's version as 8 bytes big-endian followed by
// the stored value, so a versioned write costs one lookup and one put. The
// file is locked while open: a second process gets an error instead of
// waiting forever. It imports only storage and errkind from this module and
// must not import any package above level 1.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// Options tune Open. The zero value is the production setting.
type Options struct {
	// LockTimeout bounds how long Open waits for the file lock that another
	// process holds. Zero means DefaultLockTimeout.
	LockTimeout time.Duration
}

// DefaultLockTimeout is long enough to ride out a restart of the previous
// process and short enough that an operator sees the error at once.
const DefaultLockTimeout = 2 * time.Second

// fileMode keeps the data file private to the service account. Every value
// is encrypted by the barrier above, so this is defence in depth.
const fileMode = 0o600

// versionLen is the size of the version prefix in each bbolt value.
const versionLen = 8

// bucketName is versioned so that a change to the value layout can live in
// a new bucket beside the old one during a migration.
var bucketName = []byte("customerkey.kv.v1")

var (
	errTxDone  = errkind.New(errkind.Internal, "storage: bolt: transaction used after its function returned")
	errCorrupt = errkind.New(errkind.Internal, "storage: bolt: stored value is shorter than its version prefix")
	errBadCond = errkind.New(errkind.Invalid, "storage: invalid version condition")
)

// Backend is a storage.Backend on one bbolt file.
type Backend struct {
	db     *bbolt.DB
	path   string
	closed atomic.Bool
}

var _ storage.Backend = (*Backend)(nil)

// Open opens or creates the data file at path. The directory must exist.
func Open(path string, opts Options) (*Backend, error) {
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	db, err := bbolt.Open(path, fileMode, &bbolt.Options{
		Timeout:      timeout,
		NoSync:       false, // an acknowledged write must survive a crash
		FreelistType: bbolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, errkind.Wrap(errkind.Unavailable,
			fmt.Sprintf("storage: bolt: data file %s is locked by another customerkey process; stop it or choose another data directory", path), err)
	}
	if err != nil {
		return nil, errkind.Wrap(errkind.Internal, fmt.Sprintf("storage: bolt: cannot open data file %s", path), err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketName)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, errkind.Wrap(errkind.Internal, fmt.Sprintf("storage: bolt: cannot initialise data file %s", path), err)
	}
	return &Backend{db: db, path: path}, nil
}

// View runs fn in a read-only transaction on a consistent snapshot.
func (b *Backend) View(ctx context.Context, fn func(storage.Tx) error) error {
	return b.run(ctx, false, fn)
}

// Update runs fn in the single bbolt writer transaction and commits with an
// fsync. It never retries, so fn runs exactly once. If fn panics the
// transaction is rolled back and the panic continues up the stack.
func (b *Backend) Update(ctx context.Context, fn func(storage.Tx) error) error {
	return b.run(ctx, true, fn)
}

func (b *Backend) run(ctx context.Context, writable bool, fn func(storage.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.closed.Load() {
		return storage.ErrClosed
	}
	// fnErr tells the caller's own error, which is returned untouched, apart
	// from a failure of bbolt itself.
	var fnErr error
	body := func(btx *bbolt.Tx) error {
		t := &tx{b: btx.Bucket(bucketName), writable: writable}
		defer func() { t.done = true }()
		if fnErr = fn(t); fnErr != nil {
			return fnErr
		}
		// A caller that gave up must not find its write committed later.
		if writable {
			fnErr = ctx.Err()
		}
		return fnErr
	}
	var err error
	if writable {
		err = b.db.Update(body)
	} else {
		err = b.db.View(body)
	}
	switch {
	case err == nil:
		return nil
	case fnErr != nil && err == fnErr:
		return err
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return storage.ErrClosed
	default:
		return errkind.Wrap(errkind.Internal, "storage: bolt: transaction failed", err)
	}
}

// Close waits for running transactions, then releases the file and its lock.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	if err := b.db.Close(); err != nil {
		return errkind.Wrap(errkind.Internal, fmt.Sprintf("storage: bolt: closing %s", b.path), err)
	}
	return nil
}

// tx adapts one bbolt transaction. bbolt memory is only valid inside the
// transaction, so every value leaving it is copied.
type tx struct {
	b        *bbolt.Bucket
	writable bool
	done     bool
}

func (t *tx) Get(key string) (storage.Entry, error) {
	if t.done {
		return storage.Entry{}, errTxDone
	}
	if err := storage.CheckKey(key); err != nil {
		return storage.Entry{}, err
	}
	v := t.b.Get([]byte(key))
	if v == nil {
		return storage.Entry{}, storage.ErrNotFound
	}
	return decode(key, v)
}

func (t *tx) Put(key string, value []byte, ifVersion int64) (int64, error) {
	if err := t.checkWrite(key, ifVersion); err != nil {
		return 0, err
	}
	if len(value) > storage.MaxValueLen {
		return 0, storage.ErrTooLarge
	}
	k := []byte(key)
	cur, err := t.version(k)
	if err != nil {
		return 0, err
	}
	if !holds(cur, ifVersion) {
		return 0, storage.ErrConflict
	}
	// bbolt keeps a reference to the slice until commit, so the fresh buffer
	// is also what makes later changes to value invisible.
	next := cur + 1
	buf := make([]byte, versionLen+len(value))
	binary.BigEndian.PutUint64(buf, uint64(next))
	copy(buf[versionLen:], value)
	if err := t.b.Put(k, buf); err != nil {
		return 0, errkind.Wrap(errkind.Internal, "storage: bolt: put failed", err)
	}
	return next, nil
}

func (t *tx) Delete(key string, ifVersion int64) error {
	if err := t.checkWrite(key, ifVersion); err != nil {
		return err
	}
	k := []byte(key)
	cur, err := t.version(k)
	if err != nil {
		return err
	}
	if !holds(cur, ifVersion) {
		return storage.ErrConflict
	}
	if cur == 0 {
		return nil
	}
	if err := t.b.Delete(k); err != nil {
		return errkind.Wrap(errkind.Internal, "storage: bolt: delete failed", err)
	}
	return nil
}

func (t *tx) List(prefix, after string, limit int) ([]storage.Entry, error) {
	if t.done {
		return nil, errTxDone
	}
	if err := checkBound(prefix); err != nil {
		return nil, err
	}
	if err := checkBound(after); err != nil {
		return nil, err
	}
	p := []byte(prefix)
	start := p
	if after > prefix {
		start = []byte(after)
	}
	var out []storage.Entry
	c := t.b.Cursor()
	for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if after != "" && string(k) <= after {
			continue
		}
		e, err := decode(string(k), v)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out, nil
}

func (t *tx) checkWrite(key string, ifVersion int64) error {
	switch {
	case t.done:
		return errTxDone
	case !t.writable:
		return storage.ErrReadOnly
	case ifVersion < storage.AnyVersion:
		return errBadCond
	}
	return storage.CheckKey(key)
}

// version returns the current version of k, 0 when it does not exist.
func (t *tx) version(k []byte) (int64, error) {
	v := t.b.Get(k)
	if v == nil {
		return 0, nil
	}
	if len(v) < versionLen {
		return 0, errCorrupt
	}
	return int64(binary.BigEndian.Uint64(v)), nil
}

func holds(cur, ifVersion int64) bool {
	switch ifVersion {
	case storage.AnyVersion:
		return true
	case storage.MustNotExist:
		return cur == 0
	default:
		return cur == ifVersion
	}
}

func decode(key string, v []byte) (storage.Entry, error) {
	if len(v) < versionLen {
		return storage.Entry{}, errCorrupt
	}
	return storage.Entry{
		Key:     key,
		Value:   bytes.Clone(v[versionLen:]),
		Version: int64(binary.BigEndian.Uint64(v)),
	}, nil
}

// checkBound validates a List prefix or cursor: empty is allowed, anything
// else must be a valid key so that no backend has to define an order for
// strings that can never be stored.
func checkBound(s string) error {
	if s == "" {
		return nil
	}
	return storage.CheckKey(s)
}
