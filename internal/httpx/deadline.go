package httpx

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// withDeadline is context.WithDeadline for a request's timeout, except
// that it arms no timer until something waits on Done. Most requests end
// without waiting on anything (a cached key, one item sealed), and for
// them the runtime timer and the registration with the parent context
// that context.WithDeadline makes up front cost more than their work.
// Once Done is asked for, the context is a real context.WithDeadline, so
// everything derived from it from then on behaves as with the standard
// library, children attached without a goroutine included.
func withDeadline(parent context.Context, d time.Time) (context.Context, context.CancelFunc) {
	if pd, ok := parent.Deadline(); ok && pd.Before(d) {
		d = pd
	}
	c := &deadlineCtx{parent: parent, deadline: d}
	return c, c.release
}

// armedCtx is the standard context a deadlineCtx becomes.
type armedCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

type deadlineCtx struct {
	parent   context.Context
	deadline time.Time

	armed atomic.Pointer[armedCtx]
	mu    sync.Mutex
	ended error // why it ended while unarmed; then it is never armed
}

// closed is the Done channel of a context that ended before anything
// waited on it.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// lockUnarmed returns the armed context if there is one; otherwise it
// returns nil with c.mu held, and the context stays unarmed until the
// caller unlocks.
func (c *deadlineCtx) lockUnarmed() *armedCtx {
	if a := c.armed.Load(); a != nil {
		return a
	}
	c.mu.Lock()
	if a := c.armed.Load(); a != nil {
		c.mu.Unlock()
		return a
	}
	return nil
}

func (c *deadlineCtx) Done() <-chan struct{} {
	if a := c.lockUnarmed(); a != nil {
		return a.ctx.Done()
	}
	defer c.mu.Unlock()
	if c.endedLocked() != nil {
		return closed
	}
	ctx, cancel := context.WithDeadline(c.parent, c.deadline)
	c.armed.Store(&armedCtx{ctx: ctx, cancel: cancel})
	return ctx.Done()
}

func (c *deadlineCtx) Err() error {
	if a := c.lockUnarmed(); a != nil {
		return a.ctx.Err()
	}
	defer c.mu.Unlock()
	return c.endedLocked()
}

// endedLocked reports whether an unarmed context has ended, and if it
// has, keeps the reason so that Err never changes afterwards.
func (c *deadlineCtx) endedLocked() error {
	if c.ended == nil {
		if err := c.parent.Err(); err != nil {
			c.ended = err
		} else if !time.Now().Before(c.deadline) {
			c.ended = context.DeadlineExceeded
		}
	}
	return c.ended
}

func (c *deadlineCtx) Value(key any) any {
	if a := c.armed.Load(); a != nil {
		return a.ctx.Value(key)
	}
	return c.parent.Value(key)
}

// release is the context's CancelFunc.
func (c *deadlineCtx) release() {
	if a := c.lockUnarmed(); a != nil {
		a.cancel()
		return
	}
	defer c.mu.Unlock()
	if c.endedLocked() == nil {
		c.ended = context.Canceled
	}
}

func (c *deadlineCtx) String() string {
	return "httpx.withDeadline(" + c.deadline.String() + ")"
}
