package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// Drain tuning: one store transaction takes up to drainMax records; the
// drainer starts one when drainBytes of frames wait, or when the oldest
// waiting frame is drainInterval old. Both keep transactions large (a
// bbolt commit costs the same for one record or thousands) while the
// journal stays short.
const (
	drainMax           = 4096
	drainBytes         = 1 << 20
	defaultDrainPeriod = 200 * time.Millisecond
)

// drainer moves journaled records into the store, oldest first, and
// deletes the segments it has emptied. Records reach the store in the
// order of their frames, so List shows what was acknowledged before any
// later record; List itself waits for the drainer (sync), so that a
// record is listed as soon as Record has returned.
type drainer struct {
	j      *journal
	log    *Log
	period time.Duration

	wake chan struct{} // capacity 1: frames were appended
	reqs chan syncReq
	stop chan struct{} // closed by the writer once it has flushed
	done chan struct{} // closed when the drainer has finished
	err  error         // of the final drain; read after done

	// Set by Close before stop is closed: the context of the final drain.
	closeCtx context.Context

	mu sync.Mutex
	// ctx is that of the latest caller (without its cancellation): the
	// drainer works for callers and carries their values. It is nil until
	// the first caller, so frames left from before a restart are moved
	// once something records, lists or closes.
	ctx     context.Context
	backlog int64 // bytes appended since the last drain began
	full    bool  // backlog reached drainBytes and the drainer was woken

	// Owned by the drainer goroutine.
	at       pos       // everything before at is in the store
	replayTo pos       // frames before this were written before the journal was opened
	oldest   time.Time // when the drainer first saw the frames now waiting
	rf       *os.File  // read handle of segment at.seq
}

type syncReq struct {
	ctx    context.Context
	target pos
	done   chan error
}

func newDrainer(j *journal, l *Log, period time.Duration) *drainer {
	segs := j.snapshot()
	return &drainer{
		j: j, log: l, period: period,
		wake: make(chan struct{}, 1),
		reqs: make(chan syncReq),
		stop: make(chan struct{}),
		done: make(chan struct{}),
		at:   pos{seq: segs[0].seq, off: segHeaderLen},
		// The newest segment was just started, so everything before it
		// is from an earlier run.
		replayTo: pos{seq: segs[len(segs)-1].seq, off: segHeaderLen},
	}
}

// appended tells the drainer that the writer made n more bytes of frames
// durable for a caller with ctx. It wakes the drainer only when the
// journal stops being empty and when a drain's worth has piled up: the
// timer takes care of the rest, so a busy writer does not wake it on
// every batch.
func (d *drainer) appended(ctx context.Context, n int64) {
	d.mu.Lock()
	d.ctx = ctx
	d.backlog += n
	wake := d.backlog == n
	if d.backlog >= drainBytes && !d.full {
		d.full, wake = true, true
	}
	d.mu.Unlock()
	if wake {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// sync returns once every record acknowledged before the call is in the
// store, draining at once rather than at the next period; or with the
// drain's error; or when ctx ends.
func (d *drainer) sync(ctx context.Context) error {
	r := syncReq{ctx: context.WithoutCancel(ctx), target: d.j.acked(), done: make(chan error, 1)}
	select {
	case d.reqs <- r:
	case <-d.done:
		return d.err
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *drainer) run() {
	defer close(d.done)
	timer := time.NewTimer(d.period)
	timer.Stop()
	for {
		select {
		case r := <-d.reqs:
			d.mu.Lock()
			d.ctx = r.ctx
			d.mu.Unlock()
			r.done <- d.drainTo(r.ctx, r.target)
		case <-d.wake:
		case <-timer.C:
		case <-d.stop:
			d.err = d.finish()
			return
		}
		ctx, wait, ok := d.due()
		switch {
		case !ok:
		case wait > 0:
			timer.Reset(wait)
		default:
			if d.drainTo(ctx, d.j.acked()) != nil {
				// The records are safe in the journal meanwhile; a
				// failing store is retried each period, and List and
				// Close report the error.
				timer.Reset(d.period)
			}
		}
	}
}

// due reports whether there is something to drain, and how long to wait
// before draining it.
func (d *drainer) due() (context.Context, time.Duration, bool) {
	d.mu.Lock()
	ctx := d.ctx
	d.mu.Unlock()
	if ctx == nil || !d.at.before(d.j.acked()) {
		d.oldest = time.Time{}
		return nil, 0, false
	}
	if d.oldest.IsZero() {
		d.oldest = time.Now()
	}
	if d.at.before(d.replayTo) || d.j.bytesAfter(d.at) >= drainBytes {
		return ctx, 0, true
	}
	return ctx, d.period - time.Since(d.oldest), true
}

// drainTo moves the frames before target into the store, in transactions
// of up to drainMax records.
func (d *drainer) drainTo(ctx context.Context, target pos) error {
	d.mu.Lock()
	d.backlog, d.full = 0, false
	d.mu.Unlock()
	for d.at.before(target) {
		recs, next, err := d.collect(target)
		if err != nil {
			return err
		}
		if next == d.at {
			return errkind.Errorf(errkind.Internal, "audit: the journal drain is stuck at segment %d offset %d", d.at.seq, d.at.off)
		}
		if len(recs) > 0 {
			if err := d.store(ctx, recs); err != nil {
				return err
			}
		}
		d.at = next
		if err := d.removeDrained(); err != nil {
			return err
		}
	}
	d.oldest = time.Time{}
	return nil
}

// collect reads frames from d.at on, until target or until it has at
// least drainMax records, and returns them with the position after them.
// A frame is never split between transactions.
func (d *drainer) collect(target pos) ([]prepared, pos, error) {
	at := d.at
	var recs []prepared
	for _, s := range d.j.snapshot() {
		if s.seq < at.seq {
			continue
		}
		if s.seq > at.seq {
			if !at.before(target) || len(recs) >= drainMax {
				break
			}
			at = pos{seq: s.seq, off: segHeaderLen}
		}
		end := s.end
		if s.seq == target.seq {
			end = min(end, target.off)
		}
		for at.off < end && len(recs) < drainMax {
			f, err := d.reader(s.seq)
			if err != nil {
				return nil, d.at, err
			}
			fr, n, err := d.j.readFrame(f, at)
			if err != nil {
				return nil, d.at, err
			}
			recs = append(recs, fr...)
			at.off += n
		}
		if at.off < s.end {
			break // stopped by target or by the transaction size
		}
	}
	return recs, at, nil
}

func (d *drainer) reader(seq uint64) (*os.File, error) {
	if d.rf != nil {
		if d.rf.Name() == d.j.path(seq) {
			return d.rf, nil
		}
		_ = d.rf.Close()
		d.rf = nil
	}
	f, err := os.Open(d.j.path(seq))
	if err != nil {
		return nil, errkind.Wrap(errkind.Internal, fmt.Sprintf("audit: cannot open journal segment %s", d.j.path(seq)), err)
	}
	d.rf = f
	return f, nil
}

// store writes recs in one transaction. A record already stored with the
// same bytes is skipped: it was drained before a crash that came before
// its segment was deleted, so replay is exactly-once.
func (d *drainer) store(ctx context.Context, recs []prepared) error {
	err := d.log.store.Update(ctx, func(tx storage.Tx) error {
		for _, p := range recs {
			e, err := tx.Get(p.key)
			switch {
			case errors.Is(err, storage.ErrNotFound):
				if _, err := tx.Put(p.key, p.val, storage.MustNotExist); err != nil {
					return fmt.Errorf("audit: writing record %s: %w", p.key, err)
				}
			case err != nil:
				return fmt.Errorf("audit: reading record %s: %w", p.key, err)
			case !bytes.Equal(e.Value, p.val):
				return errkind.Errorf(errkind.Internal, "audit: record %s is already stored with other content; two records were given one id", p.key)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("audit: moving journaled records into the store: %w", err)
	}
	return nil
}

// removeDrained deletes the segments before d.at, closing the read handle
// first when it is one of them.
func (d *drainer) removeDrained() error {
	if d.rf != nil && d.rf.Name() != d.j.path(d.at.seq) {
		_ = d.rf.Close()
		d.rf = nil
	}
	return d.j.removeBefore(d.at.seq)
}

// finish runs after the writer's last frame: it drains everything and
// closes the journal, deleting its segments when all are in the store. On
// success the Log no longer waits for this drainer.
func (d *drainer) finish() error {
	err := d.drainTo(d.closeCtx, d.j.acked())
	if d.rf != nil {
		_ = d.rf.Close()
		d.rf = nil
	}
	err = errors.Join(err, d.j.close(err == nil))
	if err == nil {
		d.log.removeDrainer(d)
		return nil
	}
	return fmt.Errorf("%w; the records stay in the journal %s and move into the store at the next start", err, d.j.dir)
}
