package app

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Background jobs (feature registration, scheduled purges and key
// rotations, data purges, rewrap sweeps, signing key rotation, sign-in
// state sweeps) run on one node at a time: the one that holds the jobs
// lock. With the embedded store there is one node, and it always holds it.
//
// With PostgreSQL the lock is a session-level advisory lock
// (pg_try_advisory_lock) held by a connection kept for it alone, rather
// than a lease record in the store. A lease would need renewals and an
// expiry chosen against the nodes' clocks; the advisory lock is released
// by PostgreSQL the moment the holder's session ends, so when a node dies
// the next attempt of another node (every jobLockRetry) takes the jobs
// over. A holder that loses its connection notices within
// jobLockCheck + jobLockCheckTimeout and stops its jobs; the server side
// notices a holder that vanished without closing its connection through
// the TCP keepalives set on the session (about 25 s). The price is that
// engines which only speak PostgreSQL's protocol without advisory locks
// cannot share the jobs; docs/operations.md says so.
//
// Work that is safe to run on every node stays outside the lock: the
// workloads' rewrap loops (Run), which serve the Kick of the node that
// made a policy change and rewrap each scope with a compare-and-set write,
// so two nodes rewrapping one scope at once leave one result and the
// loser sees it; and the token signing key check of token issuance, a
// versioned write of one record that two nodes cannot both win.
const (
	jobLockRetry        = 5 * time.Second
	jobLockCheck        = 5 * time.Second
	jobLockCheckTimeout = 5 * time.Second
)

// jobLock runs fn while this node holds the jobs lock, until ctx ends.
type jobLock interface {
	run(ctx context.Context, fn func(context.Context))
}

// soleNode is the jobs lock of a node alone on its store.
type soleNode struct{}

func (soleNode) run(ctx context.Context, fn func(context.Context)) { fn(ctx) }

// advisoryLock is the jobs lock of nodes sharing a PostgreSQL store. key
// is derived from the store's schema, so deployments in separate schemas
// of one database do not exclude each other.
type advisoryLock struct {
	pool *pgxpool.Pool
	key  int64
	log  *slog.Logger
}

func newAdvisoryLock(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (*advisoryLock, error) {
	var schema string
	if err := pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return nil, err
	}
	h := fnv.New64a()
	h.Write([]byte("customerkey background jobs\x00" + schema))
	return &advisoryLock{pool: pool, key: int64(h.Sum64()), log: log}, nil
}

func (l *advisoryLock) run(ctx context.Context, fn func(context.Context)) {
	waiting := false
	for {
		held, err := l.hold(ctx, fn)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			l.log.Warn("background jobs: cannot hold the jobs lock in PostgreSQL; retrying", "retry_in", jobLockRetry, "err", err)
			waiting = false
		case held:
			l.log.Warn("background jobs: lost the jobs lock (its connection to PostgreSQL broke); another node may take them over")
			waiting = false
		case !waiting:
			l.log.Info("background jobs: another node runs them; this node takes over if it stops", "check_every", jobLockRetry)
			waiting = true
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(jobLockRetry):
		}
	}
}

// hold makes one attempt: on its own connection, it takes the lock if it
// is free and runs fn until ctx ends or the connection fails. held reports
// whether it got the lock.
func (l *advisoryLock) hold(ctx context.Context, fn func(context.Context)) (held bool, err error) {
	pc, err := l.pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	// Out of the pool for good: the lock lives as long as this session.
	conn := pc.Hijack()
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jobLockCheckTimeout)
		_ = conn.Close(cctx) // ends the session, and with it the lock
		cancel()
	}()
	// Let the server notice a holder that vanished without a word.
	for _, set := range []string{"SET tcp_keepalives_idle = 10", "SET tcp_keepalives_interval = 5", "SET tcp_keepalives_count = 3"} {
		if _, err := conn.Exec(ctx, set); err != nil {
			return false, err
		}
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", l.key).Scan(&ok); err != nil || !ok {
		return false, err
	}
	l.log.Info("background jobs: this node holds the jobs lock and runs them")
	jctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(jctx)
	}()
	err = watch(jctx, conn)
	stop()
	<-done
	return true, err
}

// watch pings conn until ctx ends (nil) or a ping fails (its error).
func watch(ctx context.Context, conn *pgx.Conn) error {
	t := time.NewTicker(jobLockCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, jobLockCheckTimeout)
		err := conn.Ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			return errors.Join(errors.New("the jobs lock's connection stopped answering"), err)
		}
	}
}
