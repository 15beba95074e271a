package scope

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
)

// scanPage bounds the records one read of the background work holds in
// memory.
const scanPage = 200

// rewrapAttempts bounds how often one scope's compare-and-set is retried
// against concurrent changes within one pass; the next pass tries again.
const rewrapAttempts = 3

// Keys is what the rewrap job asks of the data encryption policies.
// *dep.Service implements it.
type Keys interface {
	WrapScopeKey(ctx context.Context, ref dep.PolicyRef, key secret.Bytes, aad []byte) ([]byte, error)
	UnwrapScopeKey(ctx context.Context, tenantID string, wrapped []byte, aad []byte, p dep.Purpose) (secret.Bytes, error)
}

// Record is a workload's stored record of one scope, R being the record
// type itself: it names the scope and holds its wrapped key.
type Record[R any] interface {
	// Scope returns the tenant and the id of the scope.
	Scope() (tenantID, id string)
	// Key returns the wrapped scope key and the policy version it is
	// wrapped under.
	Key() (wrapped []byte, ref dep.PolicyRef)
	// WithKey returns the record with its key wrapped anew under ref.
	WithKey(wrapped []byte, ref dep.PolicyRef) R
}

// Names are the words a workload's rewrap job logs and fails with.
type Names struct {
	Workload string // "mail": the prefix of errors
	Scope    string // "mailbox"
	Scopes   string // "mailboxes"
	Target   string // "their effective policy": what keys are rewrapped onto
}

// RewrapOptions configures a Rewrapper; all but Log are required.
type RewrapOptions[R Record[R]] struct {
	Store storage.Backend
	Keys  Keys
	// Log receives the failures of Run; nil discards them.
	Log *slog.Logger
	// Prefix is where the records are: Prefix+tenant+"/"+id.
	Prefix string
	Names  Names
	// Target returns the policy version rec's key belongs under: the
	// workload's rule.
	Target func(ctx context.Context, rec R) (dep.PolicyRef, error)
	// Group returns what Target's answer for rec depends on; within one
	// pass, Target is asked once per group.
	Group func(rec R) string
	// AAD returns the additional data that binds a wrapped scope key to
	// its scope.
	AAD func(tenantID, id string) []byte
}

// Rewrapper is a workload's background job that rewraps the scope keys not
// under their target policy version: all of them on Sweep, one tenant's on
// Kick. It unwraps as system work, which may use the availability key while
// the customer's root keys are revoked. It is safe for concurrent use.
type Rewrapper[R Record[R]] struct {
	o     RewrapOptions[R]
	kicks *Kicks
}

// NewRewrapper returns a Rewrapper. It panics when a required option is
// missing, which is a wiring mistake.
func NewRewrapper[R Record[R]](o RewrapOptions[R]) *Rewrapper[R] {
	if o.Store == nil || o.Keys == nil || o.Prefix == "" || o.Target == nil || o.Group == nil || o.AAD == nil {
		panic("scope: RewrapOptions.Store, Keys, Prefix, Target, Group and AAD are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Rewrapper[R]{o: o, kicks: NewKicks(0)}
}

// answer is one memoized Target during a pass.
type answer struct {
	ref dep.PolicyRef
	err error
}

// target returns Target(rec), memoized per group in memo.
func (w *Rewrapper[R]) target(ctx context.Context, rec R, memo map[string]answer) (dep.PolicyRef, error) {
	k := w.o.Group(rec)
	if a, ok := memo[k]; ok {
		return a.ref, a.err
	}
	var a answer
	a.ref, a.err = w.o.Target(ctx, rec)
	memo[k] = a
	return a.ref, a.err
}

// Sweep rewraps every scope key whose policy version is not its target, in
// pages, and returns how many it rewrapped. A scope that fails is skipped
// and counted in the error; the next sweep retries it.
func (w *Rewrapper[R]) Sweep(ctx context.Context) (int, error) {
	return w.rewrapAll(ctx, w.o.Prefix)
}

// Kick asks Run to rewrap tenantID's scope keys now. It never blocks; kicks
// of one tenant that arrive while Run is busy are merged.
func (w *Rewrapper[R]) Kick(tenantID string) { w.kicks.Add(tenantID) }

// Run serves kicks until ctx ends, then returns nil; failures are logged.
// Kicks made while Run is not running wait for it.
func (w *Rewrapper[R]) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.kicks.Wake():
		}
		for _, tid := range w.kicks.Take() {
			n, err := w.rewrapAll(ctx, w.o.Prefix+tid+"/")
			if err != nil && ctx.Err() == nil {
				w.o.Log.Error("rewrapping "+w.o.Names.Scope+" keys onto "+w.o.Names.Target, "tenant", tid, "rewrapped", n, "err", err)
			} else if n > 0 {
				w.o.Log.Info("rewrapped "+w.o.Names.Scope+" keys onto "+w.o.Names.Target, "tenant", tid, "rewrapped", n)
			}
		}
	}
}

// rewrapAll walks the records under prefix and rewraps those whose key is
// not under its target.
func (w *Rewrapper[R]) rewrapAll(ctx context.Context, prefix string) (int, error) {
	memo := map[string]answer{}
	var n, failed int
	var firstErr error
	err := w.scan(ctx, prefix, func(e storage.Entry, rec R) error {
		target, err := w.target(ctx, rec, memo)
		if _, ref := rec.Key(); err == nil && ref.Same(target) {
			return nil
		}
		if err == nil {
			var done bool
			done, err = w.rewrap(ctx, e.Key, rec, e.Version, target)
			if done {
				n++
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failed++
			if firstErr == nil {
				_, id := rec.Scope()
				firstErr = fmt.Errorf("%s %s: %w", w.o.Names.Scope, id, err)
			}
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	if failed > 0 {
		return n, fmt.Errorf("%s: %d %s keys could not be rewrapped onto %s; the first: %w",
			w.o.Names.Workload, failed, w.o.Names.Scope, w.o.Names.Target, firstErr)
	}
	return n, nil
}

// errStale says the record changed between read and write.
var errStale = errors.New("scope: the record changed meanwhile")

// rewrap unwraps rec's scope key as system work, wraps it under target and
// stores it if the record is still the one read. A concurrent change makes
// it read the record again and recompute the target. It reports whether it
// rewrapped; a scope deleted meanwhile or already moved is no error.
func (w *Rewrapper[R]) rewrap(ctx context.Context, key string, rec R, ver int64, target dep.PolicyRef) (bool, error) {
	tid, id := rec.Scope()
	aad := w.o.AAD(tid, id)
	for range rewrapAttempts {
		ctx := audit.WithJobRequestID(ctx, "rewrap")
		old, _ := rec.Key()
		scope, err := w.o.Keys.UnwrapScopeKey(ctx, tid, old, aad, dep.Purpose{System: true, RequestID: audit.MetaFrom(ctx).RequestID})
		if err != nil {
			return false, err
		}
		wrapped, err := w.o.Keys.WrapScopeKey(ctx, target, scope, aad)
		scope.Wipe()
		if err != nil {
			return false, err
		}
		err = w.o.Store.Update(ctx, func(tx storage.Tx) error {
			var cur R
			v, err := storage.GetJSON(tx, key, &cur)
			if err != nil {
				return err
			}
			if v != ver {
				rec, ver = cur, v
				return errStale
			}
			return storage.PutJSON(tx, key, cur.WithKey(wrapped, target), v)
		})
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, storage.ErrNotFound):
			return false, nil
		case !errors.Is(err, errStale):
			return false, err
		}
		if target, err = w.o.Target(ctx, rec); err != nil {
			return false, err
		}
		if _, ref := rec.Key(); ref.Same(target) {
			return false, nil
		}
	}
	return false, errkind.Errorf(errkind.Conflict, "the %s %s kept changing while its key was rewrapped; the next pass retries", w.o.Names.Scope, id)
}

// Scan calls fn for every record of tenant tid (lowercase), a page at a
// time outside any transaction, so that fn may call dep and write.
func (w *Rewrapper[R]) Scan(ctx context.Context, tid string, fn func(R) error) error {
	return w.scan(ctx, w.o.Prefix+tid+"/", func(_ storage.Entry, rec R) error { return fn(rec) })
}

// scan calls fn for every record under prefix, as Scan does.
func (w *Rewrapper[R]) scan(ctx context.Context, prefix string, fn func(storage.Entry, R) error) error {
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var page []storage.Entry
		err := w.o.Store.View(ctx, func(tx storage.Tx) error {
			var err error
			page, err = tx.List(prefix, after, scanPage)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: listing %s: %w", w.o.Names.Workload, w.o.Names.Scopes, err)
		}
		if len(page) == 0 {
			return nil
		}
		after = page[len(page)-1].Key
		for _, e := range page {
			var rec R
			if err := json.Unmarshal(e.Value, &rec); err != nil {
				return fmt.Errorf("%s: decoding %s: %w", w.o.Names.Workload, e.Key, err)
			}
			if err := fn(e, rec); err != nil {
				return err
			}
		}
	}
}
