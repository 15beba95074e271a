// Package pgnotify is the notify.Bus of nodes that share a PostgreSQL
// store: Publish runs pg_notify on a pooled connection and Run listens on a
// dedicated one, delivering what other nodes published to this node's
// subscribers.
//
// The channel is named after the schema the store lives in, so that
// deployments (or tests) sharing one database in separate schemas do not
// hear each other. A payload is "node topic key": the node id lets a node
// skip its own notifications. PostgreSQL delivers a notification to every
// listening session once the publishing transaction commits, in commit
// order, in milliseconds; a session that is not listening at that moment
// never sees it. Run therefore reconnects with a backoff when its
// connection breaks and, every time it starts listening again, tells every
// subscriber to drop everything (notify.All): what was published meanwhile
// is lost, and the caches' TTLs would otherwise be the only bound.
//
// Run also pings the listening connection when it has heard nothing for a
// while, so that a connection that died without a word (a network
// partition, a failover) is noticed within PingInterval plus the ping's
// timeout, not after the operating system's TCP keepalive.
//
// It imports notify from this module and pgx; it must not import the
// storage packages (the composition root hands it the pool).
package pgnotify

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/customerkey/customerkey/internal/notify"
)

// Bounds of the listener's reconnection and liveness checks.
const (
	firstBackoff = 100 * time.Millisecond
	maxBackoff   = 5 * time.Second
	// PingInterval is how long the listener waits in silence before it
	// checks its connection.
	PingInterval = 10 * time.Second
	pingTimeout  = 5 * time.Second
	// publishTimeout bounds one pg_notify; a database that does not answer
	// within it costs one missed notification, not a stuck request.
	publishTimeout = 5 * time.Second
)

// maxChannel is PostgreSQL's identifier limit (NAMEDATALEN - 1).
const maxChannel = 63

// maxPayload is below PostgreSQL's 8000-byte limit on a payload.
const maxPayload = 7900

// Bus is a notify.Bus over LISTEN/NOTIFY. Its methods are safe for
// concurrent use.
type Bus struct {
	pool    *pgxpool.Pool
	log     *slog.Logger
	node    string
	channel string
	subs    notify.Subscribers

	listening atomic.Bool
}

var _ notify.Bus = (*Bus)(nil)

// New returns a Bus on pool's database, with its channel named after the
// current schema. It does not listen yet: call Run.
func New(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (*Bus, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var schema string
	if err := pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return nil, fmt.Errorf("notify: reading the store's schema for the invalidation channel: %w", err)
	}
	return &Bus{pool: pool, log: log, node: strings.ToLower(rand.Text()), channel: channelName(schema)}, nil
}

// channelName is "customerkey_<schema>", or a digest of the schema when
// that would exceed PostgreSQL's identifier limit.
func channelName(schema string) string {
	ch := "customerkey_" + schema
	if len(ch) <= maxChannel {
		return ch
	}
	sum := sha256.Sum256([]byte(schema))
	return "customerkey_" + hex.EncodeToString(sum[:16])
}

// Channel is the PostgreSQL channel the Bus uses.
func (b *Bus) Channel() string { return b.channel }

// Listening reports whether the listener is connected: while it is not,
// other nodes' changes reach this node's caches only through their TTLs.
func (b *Bus) Listening() bool { return b.listening.Load() }

// Subscribe registers fn for the topic's notifications from other nodes.
func (b *Bus) Subscribe(topic string, fn func(string)) { b.subs.Add(topic, fn) }

// Publish sends the notification on a pooled connection. It runs even when
// ctx is already cancelled (the change it announces is committed) and
// gives up after publishTimeout; a failure is logged.
func (b *Bus) Publish(ctx context.Context, topic, key string) {
	payload := b.node + " " + topic + " " + key
	if len(payload) > maxPayload {
		payload = b.node + " " + topic + " " + notify.All // too long to name: drop the whole topic
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if _, err := b.pool.Exec(pctx, "SELECT pg_notify($1, $2)", b.channel, payload); err != nil {
		b.log.WarnContext(ctx, "notify: could not tell the other nodes of a change; their caches catch up when their entries expire",
			"topic", topic, "err", err)
	}
}

// Run listens until ctx ends, reconnecting with a backoff when the
// connection breaks. It returns nil when ctx ends.
func (b *Bus) Run(ctx context.Context) error {
	wait := firstBackoff
	for {
		err := b.listen(ctx, func() { wait = firstBackoff })
		b.listening.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		b.log.WarnContext(ctx, "notify: the invalidation listener lost its connection to PostgreSQL; reconnecting (caches rely on their TTLs meanwhile)",
			"retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, maxBackoff)
	}
}

// listen holds one connection until it fails. Once LISTEN is in place it
// flushes every subscriber and calls up.
func (b *Bus) listen(ctx context.Context, up func()) error {
	pc, err := b.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection leaves the pool for good: a session that listens
	// must not serve transactions, and it is closed, not returned.
	conn := pc.Hijack()
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pingTimeout)
		_ = conn.Close(cctx)
		cancel()
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{b.channel}.Sanitize()); err != nil {
		return err
	}
	b.subs.Flush()
	b.listening.Store(true)
	up()
	for {
		wctx, cancel := context.WithTimeout(ctx, PingInterval)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			b.deliver(n.Payload)
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case !errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			return err
		}
		// Silence for PingInterval: make sure the connection still works.
		pctx, cancel := context.WithTimeout(ctx, pingTimeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("the listening connection stopped answering: %w", err)
		}
	}
}

// deliver hands a payload from another node to the subscribers.
func (b *Bus) deliver(payload string) {
	node, rest, ok := strings.Cut(payload, " ")
	if !ok || node == b.node {
		return
	}
	topic, key, ok := strings.Cut(rest, " ")
	if !ok {
		return // not ours: another program notifying on the channel
	}
	b.subs.Deliver(topic, key)
}
