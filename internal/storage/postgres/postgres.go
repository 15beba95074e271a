// Package postgres owns the PostgreSQL storage backend: the storage port
// over one table (key, value, version) in a database that any number of
// customerkey nodes share.
//
// Keys are text with the "C" collation, so the primary key index orders
// them bytewise as the port requires, whatever the database's default
// collation. Update runs SERIALIZABLE, which keeps the single-writer
// semantics the embedded store gives (no write skew between transactions
// that read one key and write another); a serialization failure or a
// deadlock is retried with a bounded, jittered backoff, so fn may run more
// than once, as storage.Backend allows. View runs REPEATABLE READ READ ONLY:
// a consistent snapshot that never blocks writers.
//
// Migrations are SQL files embedded in the binary and applied by Open under
// an advisory lock, so nodes starting together apply each one once. Open
// retries an unreachable database for a bounded time. A connection lost in
// the middle of a transaction fails that transaction: nothing of it is kept.
//
// It imports only storage and errkind from this module and must not import
// any package above level 1. Pool exposes the connection pool for the parts
// that need PostgreSQL itself (LISTEN/NOTIFY, advisory locks).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// Options configure Open. URL is required; the zero value of every other
// field is the production setting.
type Options struct {
	// URL is the connection string, postgres://user@host:port/db?sslmode=…
	// Everything libpq understands works, including search_path (the schema
	// the table lives in) and pool_max_conns. The password comes from
	// Password, the URL, PGPASSWORD or ~/.pgpass, in that order.
	URL string
	// Password, when not empty, overrides any other source of the password.
	// It is what `store-password-file` holds.
	Password string
	// ConnectTimeout bounds how long Open retries a database it cannot
	// reach. Zero means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Log receives a warning for each failed attempt to reach the
	// database; nil discards them.
	Log *slog.Logger
}

// DefaultConnectTimeout rides out a database that starts at the same time
// as the service (a container, a failover) without hiding one that is down.
const DefaultConnectTimeout = 30 * time.Second

// Retry bounds for a transaction that fails to serialize. The worst case
// adds up to about a second, far below any client's timeout, while twelve
// attempts make starvation of one writer vanishingly unlikely.
const (
	maxAttempts  = 12
	firstBackoff = 2 * time.Millisecond
	maxBackoff   = 250 * time.Millisecond
)

// Bounds of the retries in Open, and of one attempt to connect there.
const (
	firstConnectBackoff = 250 * time.Millisecond
	maxConnectBackoff   = 5 * time.Second
	maxConnectAttempt   = 10 * time.Second
)

// rollbackTimeout bounds the rollback that ends a failed transaction, which
// runs even when the caller's context is done.
const rollbackTimeout = 5 * time.Second

// applicationName tells operators which sessions in pg_stat_activity are
// customerkey's, unless the URL names another.
const applicationName = "customerkey"

var (
	errTxDone  = errkind.New(errkind.Internal, "storage: postgres: transaction used after its function returned")
	errBadCond = errkind.New(errkind.Invalid, "storage: invalid version condition")
)

// Backend is a storage.Backend on one PostgreSQL table.
type Backend struct {
	pool   *pgxpool.Pool
	target string // user@host:port/database, for messages; never the password
	closed atomic.Bool
}

var _ storage.Backend = (*Backend)(nil)

var (
	viewOptions   = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	updateOptions = pgx.TxOptions{IsoLevel: pgx.Serializable, AccessMode: pgx.ReadWrite}
)

// Open connects to the database, retrying for up to o.ConnectTimeout while
// it cannot be reached, and applies the migrations this binary carries. A
// failure that retrying cannot cure (a wrong password, a missing database)
// is returned at once.
func Open(ctx context.Context, o Options) (*Backend, error) {
	cfg, err := pgxpool.ParseConfig(o.URL)
	if err != nil {
		// pgx's message may quote the connection string, password included.
		return nil, errkind.New(errkind.Invalid,
			"storage: postgres: the store URL is not a valid connection string (expected postgres://user@host:port/database?sslmode=…)")
	}
	if o.Password != "" {
		cfg.ConnConfig.Password = o.Password // fallback hosts share it
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = applicationName
	}
	cc := cfg.ConnConfig
	target := fmt.Sprintf("%s@%s:%d/%s", cc.User, cc.Host, cc.Port, cc.Database)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, errkind.Wrap(errkind.Invalid, "storage: postgres: cannot configure the connection pool for "+target, err)
	}
	b := &Backend{pool: pool, target: target}
	if err := b.start(ctx, o); err != nil {
		pool.Close()
		return nil, err
	}
	return b, nil
}

// start waits for the database and migrates it.
func (b *Backend) start(ctx context.Context, o Options) error {
	timeout := o.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	deadline := time.Now().Add(timeout)
	wait := firstConnectBackoff
	for attempt := 1; ; attempt++ {
		conn, err := b.connect(ctx, deadline)
		if err == nil {
			err = migrate(ctx, conn.Conn())
			conn.Release()
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !transient(err) {
			return errkind.Wrap(errkind.FailedPrecondition, fmt.Sprintf(
				"storage: postgres: the database %s refused the connection; check the user, the password (store-password-file or PGPASSWORD) and that the database exists", b.target), err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return errkind.Wrap(errkind.Unavailable, fmt.Sprintf(
				"storage: postgres: cannot reach the database %s after %d attempts in %s; check that PostgreSQL is running and that the store URL names the right host and port",
				b.target, attempt, timeout), err)
		}
		wait = min(wait, left)
		log.Warn("PostgreSQL is not reachable yet; retrying", "target", b.target, "attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, maxConnectBackoff)
	}
}

// connect makes one attempt, bounded so that a host that drops packets
// does not use up the whole retry budget in a single dial.
func (b *Backend) connect(ctx context.Context, deadline time.Time) (*pgxpool.Conn, error) {
	if d := time.Now().Add(maxConnectAttempt); d.Before(deadline) {
		deadline = d
	}
	actx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, err := b.pool.Acquire(actx)
	if err != nil {
		return nil, err
	}
	if err := conn.Ping(actx); err != nil {
		conn.Release()
		return nil, err
	}
	return conn, nil
}

// transient reports whether a failure to connect may go away by itself:
// the network, a server that is starting or shutting down, or one that has
// no connection slot free. Authentication and a missing database do not.
func transient(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return true
	}
	return unavailableState(pe.Code)
}

// unavailableState reports whether SQLSTATE code means the server or the
// connection, rather than the statement, failed: connection exceptions
// (08), insufficient resources (53), operator intervention such as
// pg_terminate_backend or a shutdown (57P), and system errors (58).
func unavailableState(code string) bool {
	if len(code) != 5 {
		return false
	}
	switch code[:2] {
	case "08", "53", "58":
		return true
	case "57":
		return code[2] == 'P'
	}
	return false
}

// retryable reports whether err is a serialization failure or a deadlock,
// after which the whole transaction can run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// Pool is the connection pool, for features that need PostgreSQL itself:
// LISTEN/NOTIFY and advisory locks. Storage goes through View and Update.
func (b *Backend) Pool() *pgxpool.Pool { return b.pool }

// View runs fn in a read-only transaction on a consistent snapshot.
func (b *Backend) View(ctx context.Context, fn func(storage.Tx) error) error {
	return b.run(ctx, false, fn)
}

// Update runs fn in a serializable transaction and commits it. When the
// database reports a serialization failure or a deadlock, the transaction
// is rolled back and fn runs again, up to maxAttempts times in all. If fn
// panics the transaction is rolled back and the panic continues up the
// stack.
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
	wait := firstBackoff
	for attempt := 1; ; attempt++ {
		again, err := b.attempt(ctx, writable, fn)
		if !again {
			return err
		}
		if attempt == maxAttempts {
			return errkind.Wrap(errkind.Unavailable, fmt.Sprintf(
				"storage: postgres: the transaction conflicted with concurrent ones %d times in a row; retry the request", maxAttempts), err)
		}
		// Full jitter: writers that collided do not collide again in step.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(rand.N(wait) + time.Millisecond):
		}
		wait = min(2*wait, maxBackoff)
	}
}

// attempt runs fn once in a new transaction. again reports a failure after
// which the whole transaction may run again: a serialization failure or a
// deadlock, or a connection that broke before BEGIN reached the server.
func (b *Backend) attempt(ctx context.Context, writable bool, fn func(storage.Tx) error) (again bool, err error) {
	opts := viewOptions
	if writable {
		opts = updateOptions
	}
	ptx, err := b.pool.BeginTx(ctx, opts)
	if err != nil {
		return pgconn.SafeToRetry(err) && ctx.Err() == nil, b.failure(ctx, "begin", err)
	}
	t := &tx{ctx: ctx, tx: ptx, writable: writable, b: b}
	finished := false
	defer func() {
		t.done = true
		if !finished { // fn failed or panicked
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
			_ = ptx.Rollback(rctx)
			cancel()
		}
	}()
	fnErr := fn(t)
	if t.failed != nil {
		// A failed statement has aborted the transaction in the server,
		// whatever fn made of the error it got.
		if retryable(t.failed) {
			return true, t.failed
		}
		if fnErr == nil {
			return false, b.failure(ctx, "statement", t.failed)
		}
	}
	if fnErr != nil {
		return false, fnErr
	}
	// A caller that gave up must not find its write committed later.
	if err := ctx.Err(); err != nil && writable {
		return false, err
	}
	finished = true
	if err := ptx.Commit(ctx); err != nil {
		return retryable(err), b.failure(ctx, "commit", err)
	}
	return false, nil
}

// failure classifies an error of the database or the connection; op says
// where it happened.
func (b *Backend) failure(ctx context.Context, op string, err error) error {
	var pe *pgconn.PgError
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case b.closed.Load():
		return storage.ErrClosed
	case retryable(err):
		return errkind.Wrap(errkind.Conflict, "storage: postgres: the transaction conflicted with a concurrent one", err)
	case errors.As(err, &pe) && !unavailableState(pe.Code):
		return errkind.Wrap(errkind.Internal, "storage: postgres: "+op+" failed (SQLSTATE "+pe.Code+")", err)
	case op == "commit":
		return errkind.Wrap(errkind.Unavailable, fmt.Sprintf(
			"storage: postgres: lost the connection to %s while committing; the transaction may or may not have been applied", b.target), err)
	default:
		return errkind.Wrap(errkind.Unavailable, fmt.Sprintf(
			"storage: postgres: lost the connection to %s during the transaction (%s); nothing of it was written", b.target, op), err)
	}
}

// Close waits for running transactions, then closes every connection. It
// is safe to call more than once.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.pool.Close()
	return nil
}

// String names the database without its password.
func (b *Backend) String() string { return "postgres " + b.target }
