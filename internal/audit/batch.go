package audit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// ErrBatcherClosed is returned by Record after Close has begun.
var ErrBatcherClosed = errkind.New(errkind.Unavailable, "audit: the batcher is closed")

// Defaults of BatchOptions.
const (
	DefaultMaxBatch = 512
	DefaultQueue    = 8 * DefaultMaxBatch
)

// BatchOptions tunes a Batcher. The zero value is the production setting.
type BatchOptions struct {
	// MaxBatch is the most events one transaction holds. Zero means
	// DefaultMaxBatch.
	MaxBatch int
	// Queue bounds the events accepted but not yet committed; Record waits
	// (honouring its context) while the queue is full. Zero means
	// DefaultQueue; it is raised to MaxBatch when smaller.
	Queue int
}

// Batcher records events with group commit: events that arrive while a
// transaction is being written wait together and go into the next one, so
// that many concurrent callers share one storage.Update (one fsync with the
// bolt backend) instead of paying one each. There is no timer: an idle
// batcher commits a lone event at once, and a busy one commits as fast as
// the store allows with batches of up to MaxBatch events.
//
// Record returns only once the transaction holding the event has
// committed, so an acknowledged record survives a crash exactly as one
// written by Log.Record does. Use Log.RecordTx, not a Batcher, for records
// that must commit together with the change they describe.
type Batcher struct {
	log   *Log
	max   int
	slots chan struct{} // one token per accepted, uncommitted event
	wake  chan struct{} // capacity 1: "there is work"
	stop  chan struct{} // closed by Close
	done  chan struct{} // closed when the writer has drained and exited

	mu     sync.Mutex
	closed bool
	open   *batch   // accepting events; nil when none is open
	full   []*batch // reached max, waiting for the writer, oldest first

	batches, events atomic.Uint64
	stopOnce        sync.Once
}

// batch is the unit of one transaction. err is written before done is
// closed and read only after.
type batch struct {
	ctx  context.Context // values of the first caller, without its cancellation
	recs []prepared
	done chan struct{}
	err  error
}

// prepared is an event already validated, identified and encoded by its
// caller, so the writer only copies bytes into the transaction and a bad
// event never fails the batch of others.
type prepared struct {
	key string
	val []byte
}

// NewBatcher starts the writer goroutine of a Batcher over l's store. Call
// Close to flush and stop it.
func NewBatcher(l *Log, o BatchOptions) *Batcher {
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	o.Queue = max(o.Queue, o.MaxBatch)
	b := &Batcher{
		log:   l,
		max:   o.MaxBatch,
		slots: make(chan struct{}, o.Queue),
		wake:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go b.write()
	return b
}

// Record appends ev to the current batch and waits until that batch has
// committed. It fills ID, Time, RequestID and ClientIP as Log.RecordTx
// does. A nil error means the record is durable; the error of a failed
// transaction is returned to every caller whose event it held.
//
// When ctx ends first, Record returns ctx.Err() without knowing the
// outcome: the event may still commit (a shared batch is never abandoned
// for one caller), as a timed-out request may still have been served.
func (b *Batcher) Record(ctx context.Context, ev Event) error {
	p, err := b.log.prepare(ctx, ev)
	if err != nil {
		return err
	}
	select {
	case b.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.stop:
		return ErrBatcherClosed
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		<-b.slots
		return ErrBatcherClosed
	}
	bt := b.open
	if bt == nil {
		bt = &batch{ctx: context.WithoutCancel(ctx), recs: make([]prepared, 0, min(b.max, 64)), done: make(chan struct{})}
		b.open = bt
	}
	bt.recs = append(bt.recs, p)
	if len(bt.recs) >= b.max {
		b.full = append(b.full, bt)
		b.open = nil
	}
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default: // the writer already has a wake-up pending
	}
	select {
	case <-bt.done:
		return bt.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting events, waits until every accepted event has been
// committed (or its batch has failed), and stops the writer. It returns
// ctx.Err() if ctx ends first; the writer then still finishes in the
// background. Close is safe to call more than once.
func (b *Batcher) Close(ctx context.Context) error {
	b.stopOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		close(b.stop)
	})
	select {
	case <-b.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// BatchStats counts what a Batcher has committed or failed.
type BatchStats struct {
	Batches uint64 // transactions run
	Events  uint64 // events those transactions held
}

// Stats returns the counts so far; Events/Batches is the mean batch size.
func (b *Batcher) Stats() BatchStats {
	return BatchStats{Batches: b.batches.Load(), Events: b.events.Load()}
}

// write is the single writer: it commits one batch at a time, oldest
// first. Events that arrive meanwhile form the next batch, which is the
// whole of group commit.
func (b *Batcher) write() {
	defer close(b.done)
	for {
		select {
		case <-b.wake:
		case <-b.stop:
			// Close set closed before closing stop, so no event can join
			// after this drain.
			for bt := b.next(); bt != nil; bt = b.next() {
				b.commit(bt)
			}
			return
		}
		for bt := b.next(); bt != nil; bt = b.next() {
			b.commit(bt)
		}
	}
}

// next takes the oldest batch waiting: a full one, else the open one.
func (b *Batcher) next() *batch {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.full) > 0 {
		bt := b.full[0]
		b.full[0] = nil
		b.full = b.full[1:]
		return bt
	}
	bt := b.open
	b.open = nil
	return bt
}

func (b *Batcher) commit(bt *batch) {
	bt.err = b.log.store.Update(bt.ctx, func(tx storage.Tx) error {
		for _, p := range bt.recs {
			if _, err := tx.Put(p.key, p.val, storage.MustNotExist); err != nil {
				return fmt.Errorf("audit: writing record %s: %w", p.key, err)
			}
		}
		return nil
	})
	b.batches.Add(1)
	b.events.Add(uint64(len(bt.recs)))
	close(bt.done)
	for range bt.recs {
		<-b.slots
	}
}

// prepare runs RecordTx against a transaction that only captures the
// write, so the batched record is validated, identified and encoded exactly
// as a direct one. The id is fixed here, before any transaction, so a
// backend that retries a transaction writes the same keys again.
func (l *Log) prepare(ctx context.Context, ev Event) (prepared, error) {
	var c captureTx
	if err := l.RecordTx(ctx, &c, ev); err != nil {
		return prepared{}, err
	}
	return c.p, nil
}

// captureTx keeps the one Put of RecordTx.
type captureTx struct{ p prepared }

var errCaptureOnly = errkind.New(errkind.Internal, "audit: a prepared record can only be written")

func (c *captureTx) Put(key string, value []byte, ifVersion int64) (int64, error) {
	if c.p.key != "" || ifVersion != storage.MustNotExist {
		return 0, errCaptureOnly
	}
	c.p = prepared{key: key, val: value}
	return 1, nil
}

func (*captureTx) Get(string) (storage.Entry, error)                 { return storage.Entry{}, errCaptureOnly }
func (*captureTx) Delete(string, int64) error                        { return errCaptureOnly }
func (*captureTx) List(string, string, int) ([]storage.Entry, error) { return nil, errCaptureOnly }
