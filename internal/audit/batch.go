package audit

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

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

// maxBatchBytes bounds the encoded records of one batch (a single larger
// record still gets a batch of its own), which bounds a journal frame and
// a transaction alike.
const maxBatchBytes = 4 << 20

// BatchOptions tunes a Batcher. The zero value is the production setting.
type BatchOptions struct {
	// MaxBatch is the most events one transaction holds. Zero means
	// DefaultMaxBatch.
	MaxBatch int
	// Queue bounds the events accepted but not yet committed; Record waits
	// (honouring its context) while the queue is full. Zero means
	// DefaultQueue; it is raised to MaxBatch when smaller.
	Queue int
	// Journal, when not empty, is a directory for an append-only journal:
	// each batch is then made durable by one write and one fdatasync of a
	// segment file instead of a store transaction, and a background
	// drainer moves the journaled records into the store in large
	// transactions (every 200 ms, or sooner when 1 MiB of them wait).
	// Records left in the journal by a crash are moved into the store
	// after the Batcher next opens it, at the first Record, List or
	// Close (List never misses them). Empty means one store transaction
	// per batch. The directory is locked while open.
	Journal string
	// Sealer encrypts the journal's frames, which must not reach the disk
	// in the clear; it is required with Journal. The server uses its
	// barrier.
	Sealer Sealer

	// drainPeriod and segmentSize replace defaultDrainPeriod and
	// defaultSegmentSize in tests.
	drainPeriod time.Duration
	segmentSize int64
}

// Batcher records events with group commit: events that arrive while a
// transaction is being written wait together and go into the next one, so
// that many concurrent callers share one storage.Update (one fsync with the
// bolt backend) instead of paying one each. There is no timer: an idle
// batcher commits a lone event at once, and a busy one commits as fast as
// the store allows with batches of up to MaxBatch events.
//
// Record returns only once the transaction (or journal frame) holding the
// event is durable, so an acknowledged record survives a crash exactly as
// one written by Log.Record does. Use Log.RecordTx, not a Batcher, for
// records that must commit together with the change they describe.
//
// With a journal, a batch costs one write and one fdatasync of an
// append-only file, where a bbolt transaction costs two fdatasyncs and a
// copy-on-write of B+tree pages; the store then takes thousands of
// records per transaction from the drainer. Log.List waits for the drainer
// to catch up with every acknowledged record before it reads, so the
// journal is invisible to readers.
type Batcher struct {
	log   *Log
	max   int
	slots chan struct{} // one token per accepted, uncommitted event
	wake  chan struct{} // capacity 1: "there is work"
	stop  chan struct{} // closed by Close
	done  chan struct{} // closed when the writer (and drainer) have finished

	j *journal // nil without a journal
	d *drainer // nil without a journal
	// openErr is why the journal could not be opened. NewBatcher has no
	// error result, so every Record (and Close) returns it instead: no
	// record is accepted that could not be made durable as configured.
	openErr  error
	closeErr error // of the final drain; read after done

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
	size int // encoded bytes of recs, at most maxBatchBytes unless one record is larger
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

// size bounds the bytes p takes in a journal frame.
func (p prepared) size() int { return len(p.key) + len(p.val) + 2*binary.MaxVarintLen64 }

// NewBatcher starts the writer goroutine of a Batcher over l's store, and
// with o.Journal opens the journal (checking it and cutting off a torn
// tail) and starts its drainer. Call Close to flush and stop it. If the
// journal cannot be opened, every Record returns why.
func NewBatcher(l *Log, o BatchOptions) *Batcher {
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	o.Queue = max(o.Queue, o.MaxBatch)
	if o.drainPeriod <= 0 {
		o.drainPeriod = defaultDrainPeriod
	}
	if o.segmentSize <= 0 {
		o.segmentSize = defaultSegmentSize
	}
	b := &Batcher{
		log:   l,
		max:   o.MaxBatch,
		slots: make(chan struct{}, o.Queue),
		wake:  make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	switch {
	case o.Journal == "":
	case o.Sealer == nil:
		b.openErr = errkind.New(errkind.Internal, "audit: BatchOptions.Journal needs a Sealer to encrypt the journal")
	default:
		b.j, b.openErr = openJournal(o.Journal, o.Sealer, o.segmentSize)
		if b.openErr == nil {
			b.d = newDrainer(b.j, l, o.drainPeriod)
			l.addDrainer(b.d)
			go b.d.run()
		}
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
	if bt != nil && bt.size+p.size() > maxBatchBytes {
		b.full = append(b.full, bt)
		bt = nil
	}
	if bt == nil {
		bt = &batch{ctx: context.WithoutCancel(ctx), recs: make([]prepared, 0, min(b.max, 64)), done: make(chan struct{})}
		b.open = bt
	}
	bt.recs = append(bt.recs, p)
	bt.size += p.size()
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
// committed (or its batch has failed), and stops the writer. With a
// journal it then drains it into the store and deletes its segments, or
// returns why it could not (the records then stay in the journal for the
// next start). It returns ctx.Err() if ctx ends first; the rest then still
// finishes in the background. Close is safe to call more than once.
func (b *Batcher) Close(ctx context.Context) error {
	b.stopOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		if b.d != nil {
			b.d.closeCtx = context.WithoutCancel(ctx)
		}
		close(b.stop)
	})
	select {
	case <-b.done:
		if b.openErr != nil {
			return b.openErr
		}
		return b.closeErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// BatchStats counts what a Batcher has committed or failed.
type BatchStats struct {
	Batches uint64 // transactions run, or journal frames written
	Events  uint64 // events those batches held
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
			if b.d != nil {
				close(b.d.stop)
				<-b.d.done
				b.closeErr = b.d.err
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
	switch {
	case b.openErr != nil:
		bt.err = b.openErr
	case b.j != nil:
		var n int64
		if n, bt.err = b.j.append(bt.recs); bt.err == nil {
			b.d.appended(bt.ctx, n)
		}
	default:
		bt.err = b.log.store.Update(bt.ctx, func(tx storage.Tx) error {
			for _, p := range bt.recs {
				if _, err := tx.Put(p.key, p.val, storage.MustNotExist); err != nil {
					return fmt.Errorf("audit: writing record %s: %w", p.key, err)
				}
			}
			return nil
		})
	}
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

// Put checks the key as a backend would, so that a record no store would
// take fails alone here instead of failing its batch, or sitting in the
// journal that the drainer cannot empty.
func (c *captureTx) Put(key string, value []byte, ifVersion int64) (int64, error) {
	if c.p.key != "" || ifVersion != storage.MustNotExist {
		return 0, errCaptureOnly
	}
	if err := storage.CheckKey(key); err != nil {
		return 0, fmt.Errorf("audit: record key %q: %w", key, err)
	}
	c.p = prepared{key: key, val: value}
	return 1, nil
}

func (*captureTx) Get(string) (storage.Entry, error)                 { return storage.Entry{}, errCaptureOnly }
func (*captureTx) Delete(string, int64) error                        { return errCaptureOnly }
func (*captureTx) List(string, string, int) ([]storage.Entry, error) { return nil, errCaptureOnly }
