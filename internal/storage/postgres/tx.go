package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/customerkey/customerkey/internal/storage"
)

// The statements of a transaction. pgx prepares each once per connection.
const (
	sqlGet = `SELECT value, version FROM customerkey_kv WHERE key = $1`
	// A blind write: create at version 1 or bump whatever is there.
	sqlPutAny = `INSERT INTO customerkey_kv (key, value, version) VALUES ($1, $2, 1)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = customerkey_kv.version + 1
RETURNING version`
	// A create: no row comes back when the key exists.
	sqlPutNew = `INSERT INTO customerkey_kv (key, value, version) VALUES ($1, $2, 1)
ON CONFLICT (key) DO NOTHING RETURNING version`
	// A compare-and-set: no row comes back unless the version matches.
	sqlPutIf = `UPDATE customerkey_kv SET value = $2, version = version + 1
WHERE key = $1 AND version = $3 RETURNING version`
	sqlDeleteAny = `DELETE FROM customerkey_kv WHERE key = $1`
	sqlDeleteIf  = `DELETE FROM customerkey_kv WHERE key = $1 AND version = $2 RETURNING version`
	sqlExists    = `SELECT EXISTS (SELECT 1 FROM customerkey_kv WHERE key = $1)`
)

// tx adapts one pgx transaction. Statements run one at a time; the first
// that fails is remembered because the server has then aborted the whole
// transaction, and run decides from it whether to run fn again.
type tx struct {
	ctx      context.Context // of View or Update: the port's Tx methods take none
	tx       pgx.Tx
	b        *Backend
	writable bool
	done     bool
	failed   error
}

// fail records a failed statement and returns the error fn gets.
func (t *tx) fail(op string, err error) error {
	if t.failed == nil {
		t.failed = err
	}
	return t.b.failure(t.ctx, op, err)
}

func (t *tx) Get(key string) (storage.Entry, error) {
	if t.done {
		return storage.Entry{}, errTxDone
	}
	if err := storage.CheckKey(key); err != nil {
		return storage.Entry{}, err
	}
	e := storage.Entry{Key: key}
	err := t.tx.QueryRow(t.ctx, sqlGet, key).Scan(&e.Value, &e.Version)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return storage.Entry{}, storage.ErrNotFound
	case err != nil:
		return storage.Entry{}, t.fail("get", err)
	}
	return e, nil
}

func (t *tx) Put(key string, value []byte, ifVersion int64) (int64, error) {
	if err := t.checkWrite(key, ifVersion); err != nil {
		return 0, err
	}
	if len(value) > storage.MaxValueLen {
		return 0, storage.ErrTooLarge
	}
	if value == nil {
		value = []byte{} // nil would be sent as NULL
	}
	var row pgx.Row
	switch ifVersion {
	case storage.AnyVersion:
		row = t.tx.QueryRow(t.ctx, sqlPutAny, key, value)
	case storage.MustNotExist:
		row = t.tx.QueryRow(t.ctx, sqlPutNew, key, value)
	default:
		row = t.tx.QueryRow(t.ctx, sqlPutIf, key, value, ifVersion)
	}
	// pgx encodes value before the call returns, so the caller may reuse
	// its slice at once.
	var v int64
	err := row.Scan(&v)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, storage.ErrConflict
	case err != nil:
		return 0, t.fail("put", err)
	}
	return v, nil
}

func (t *tx) Delete(key string, ifVersion int64) error {
	if err := t.checkWrite(key, ifVersion); err != nil {
		return err
	}
	switch ifVersion {
	case storage.AnyVersion:
		if _, err := t.tx.Exec(t.ctx, sqlDeleteAny, key); err != nil {
			return t.fail("delete", err)
		}
		return nil
	case storage.MustNotExist:
		// Deleting what must not exist holds only when it does not.
		var exists bool
		if err := t.tx.QueryRow(t.ctx, sqlExists, key).Scan(&exists); err != nil {
			return t.fail("delete", err)
		}
		if exists {
			return storage.ErrConflict
		}
		return nil
	default:
		var v int64
		err := t.tx.QueryRow(t.ctx, sqlDeleteIf, key, ifVersion).Scan(&v)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return storage.ErrConflict
		case err != nil:
			return t.fail("delete", err)
		}
		return nil
	}
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
	q, args := listQuery(prefix, after, limit)
	rows, err := t.tx.Query(t.ctx, q, args...)
	if err != nil {
		return nil, t.fail("list", err)
	}
	out := []storage.Entry{}
	var e storage.Entry
	_, err = pgx.ForEachRow(rows, []any{&e.Key, &e.Value, &e.Version}, func() error {
		out = append(out, e) // pgx scans each value into a new slice
		return nil
	})
	if err != nil {
		return nil, t.fail("list", err)
	}
	return out, nil
}

// listQuery builds the range scan for List. Every condition is a range on
// the primary key, so the index both bounds the scan and orders it: keys
// with prefix p lie in [p, successor(p)), and a cursor that sorts after p
// replaces the lower bound.
func listQuery(prefix, after string, limit int) (string, []any) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	switch {
	case after != "" && after >= prefix:
		where = append(where, "key > "+arg(after))
	case prefix != "":
		where = append(where, "key >= "+arg(prefix))
	}
	if end, ok := successor(prefix); ok {
		where = append(where, "key < "+arg(end))
	}
	q := "SELECT key, value, version FROM customerkey_kv"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY key"
	if limit > 0 {
		q += " LIMIT " + arg(int64(limit))
	}
	return q, args
}

// successor returns the smallest valid key that sorts after every key
// starting with prefix, or false when there is none (an empty prefix, or
// one made only of U+10FFFF). It replaces the last code point by the next
// one: UTF-8 orders bytewise like code points and no encoding is a prefix
// of another, so every key starting with prefix sorts below the result.
// The result stays valid UTF-8, which a text parameter must be.
func successor(prefix string) (string, bool) {
	for prefix != "" {
		r, size := utf8.DecodeLastRuneInString(prefix)
		prefix = prefix[:len(prefix)-size]
		switch {
		case r == utf8.MaxRune:
			continue // no next code point: carry into the one before
		case r == 0xD7FF:
			r = 0xE000 // skip the surrogates, which UTF-8 cannot encode
		default:
			r++
		}
		return prefix + string(r), true
	}
	return "", false
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

// checkBound validates a List prefix or cursor: empty is allowed, anything
// else must be a valid key, as in every backend.
func checkBound(s string) error {
	if s == "" {
		return nil
	}
	return storage.CheckKey(s)
}
