package mail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// scanPage bounds the mailbox records one read of the background work
// holds in memory.
const scanPage = 200

// rewrapAttempts bounds how often one mailbox's compare-and-set is retried
// against concurrent changes within one pass; the next pass tries again.
const rewrapAttempts = 3

// answer is one memoized reply of dep during a pass.
type answer struct {
	ref dep.PolicyRef
	err error
}

// effective returns the ref m's key belongs under: its Exchange policy's
// current version if one is assigned, else the tenant's effective policy
// for Exchange (multi-workload, else the default). memo, when not nil,
// keeps dep's answers for the rest of a pass.
func (s *Service) effective(ctx context.Context, m Mailbox, memo map[string]answer) (dep.PolicyRef, error) {
	k := m.TenantID + "/" + m.DataEncryptionPolicy
	if a, ok := memo[k]; ok {
		return a.ref, a.err
	}
	var a answer
	if m.DataEncryptionPolicy != "" {
		a.ref, a.err = s.dep.Current(ctx, m.TenantID, m.DataEncryptionPolicy)
	} else {
		a.ref, a.err = s.dep.Effective(ctx, m.TenantID, dep.Mail)
	}
	if memo != nil {
		memo[k] = a
	}
	return a.ref, a.err
}

// Sweep rewraps every mailbox key whose policy version is not its
// effective one, in pages, and returns how many it rewrapped. A mailbox
// that fails is skipped and counted in the error; the next sweep retries
// it. The app calls it periodically; Kick makes Run do the same for one
// tenant at once.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	return s.rewrapAll(ctx, kMbx)
}

// Kick asks Run to rewrap tenantID's mailboxes onto their effective
// policies now. It never blocks; kicks of one tenant that arrive while Run
// is busy are merged.
func (s *Service) Kick(tenantID string) {
	tid := lower(tenantID)
	if !isGUID(tid) {
		return
	}
	s.kickMu.Lock()
	s.kicked[tid] = true
	s.kickMu.Unlock()
	select {
	case s.kickSig <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Run serves kicks until ctx ends, then returns nil. The app runs it in
// the background beside its periodic Sweep; kicks made while Run is not
// running wait for it (and Sweep covers them anyway).
func (s *Service) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.kickSig:
		}
		s.kickMu.Lock()
		tenants := make([]string, 0, len(s.kicked))
		for tid := range s.kicked {
			tenants = append(tenants, tid)
		}
		clear(s.kicked)
		s.kickMu.Unlock()
		slices.Sort(tenants)
		for _, tid := range tenants {
			n, err := s.rewrapAll(ctx, kMbx+tid+"/")
			if err != nil && ctx.Err() == nil {
				s.log.Error("rewrapping mailbox keys onto their effective policy", "tenant", tid, "rewrapped", n, "err", err)
			} else if n > 0 {
				s.log.Info("rewrapped mailbox keys onto their effective policy", "tenant", tid, "rewrapped", n)
			}
		}
	}
}

// rewrapAll walks the mailboxes under prefix and rewraps those whose key is
// not under their effective policy version.
func (s *Service) rewrapAll(ctx context.Context, prefix string) (int, error) {
	memo := map[string]answer{}
	var n, failed int
	var firstErr error
	err := s.scan(ctx, prefix, func(e storage.Entry, rec mailboxRecord) error {
		target, err := s.effective(ctx, rec.Mailbox, memo)
		if err == nil && rec.Ref.Same(target) {
			return nil
		}
		if err == nil {
			var done bool
			done, err = s.rewrap(ctx, e.Key, rec, e.Version, target)
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
				firstErr = fmt.Errorf("mailbox %s: %w", rec.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	if failed > 0 {
		return n, fmt.Errorf("mail: %d mailbox keys could not be rewrapped onto their effective policy; the first: %w", failed, firstErr)
	}
	return n, nil
}

// errStale says the mailbox record changed between read and write.
var errStale = errors.New("mail: the mailbox changed meanwhile")

// rewrap unwraps rec's mailbox key as system work (which may use the
// availability key while the customer's root keys are revoked), wraps it
// under target and stores it if the record is still the one read. A
// concurrent change makes it read the record again and recompute the
// target. It reports whether it rewrapped; a mailbox deleted meanwhile or
// already moved is no error.
func (s *Service) rewrap(ctx context.Context, key string, rec mailboxRecord, ver int64, target dep.PolicyRef) (bool, error) {
	aad := scopeAAD(rec.TenantID, rec.ID)
	for range rewrapAttempts {
		ctx := audit.WithJobRequestID(ctx, "rewrap")
		scope, err := s.dep.UnwrapScopeKey(ctx, rec.TenantID, rec.WrappedKey, aad, dep.Purpose{System: true, RequestID: audit.MetaFrom(ctx).RequestID})
		if err != nil {
			return false, err
		}
		wrapped, err := s.dep.WrapScopeKey(ctx, target, scope, aad)
		scope.Wipe()
		if err != nil {
			return false, err
		}
		err = s.store.Update(ctx, func(tx storage.Tx) error {
			var cur mailboxRecord
			v, err := storage.GetJSON(tx, key, &cur)
			if err != nil {
				return err
			}
			if v != ver {
				rec, ver = cur, v
				return errStale
			}
			cur.WrappedKey, cur.Ref = wrapped, target
			return storage.PutJSON(tx, key, cur, v)
		})
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, storage.ErrNotFound):
			return false, nil
		case !errors.Is(err, errStale):
			return false, err
		}
		if target, err = s.effective(ctx, rec.Mailbox, nil); err != nil {
			return false, err
		}
		if rec.Ref.Same(target) {
			return false, nil
		}
	}
	return false, errkind.Errorf(errkind.Conflict, "the mailbox %s kept changing while its key was rewrapped; the next pass retries", rec.ID)
}

// scan calls fn for every mailbox record under prefix, a page at a time
// outside any transaction, so that fn may call dep and write.
func (s *Service) scan(ctx context.Context, prefix string, fn func(storage.Entry, mailboxRecord) error) error {
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var page []storage.Entry
		err := s.store.View(ctx, func(tx storage.Tx) error {
			var err error
			page, err = tx.List(prefix, after, scanPage)
			return err
		})
		if err != nil {
			return fmt.Errorf("mail: listing mailboxes: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		after = page[len(page)-1].Key
		for _, e := range page {
			var rec mailboxRecord
			if err := json.Unmarshal(e.Value, &rec); err != nil {
				return fmt.Errorf("mail: decoding %s: %w", e.Key, err)
			}
			if err := fn(e, rec); err != nil {
				return err
			}
		}
	}
}

// Progress counts tenantID's mailboxes: total, and done, those whose key is
// wrapped under exactly ref. Mailboxes have no geo: geo must be empty.
func (s *Service) Progress(ctx context.Context, tenantID, geo string, ref dep.PolicyRef) (done, total int, err error) {
	if geo != "" {
		return 0, 0, errkind.Errorf(errkind.Invalid, "mailboxes have no geo; ask for the progress of geo %q from the SharePoint workload", geo)
	}
	tid, err := checkTenant(tenantID)
	if err != nil {
		return 0, 0, err
	}
	err = s.scan(ctx, kMbx+tid+"/", func(_ storage.Entry, rec mailboxRecord) error {
		total++
		if rec.Ref.Same(ref) {
			done++
		}
		return nil
	})
	return done, total, err
}

// PurgePolicy destroys every mailbox of tenantID whose key is wrapped under
// any version of policyID or that is assigned to it: the mailbox record
// with its wrapped key, its messages and indexes. dep calls it when it
// runs an approved purge; it returns how many mailboxes it deleted.
// Interrupted, it can be run again.
func (s *Service) PurgePolicy(ctx context.Context, tenantID, policyID string) (int, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return 0, err
	}
	if policyID == "" {
		return 0, errkind.New(errkind.Invalid, "mail: PurgePolicy needs a policy id")
	}
	n := 0
	err = s.scan(ctx, kMbx+tid+"/", func(_ storage.Entry, rec mailboxRecord) error {
		if rec.Ref.PolicyID != policyID && rec.DataEncryptionPolicy != policyID {
			return nil
		}
		if err := s.destroy(ctx, directory.System, rec.Mailbox, "mail/mailboxes/purge"); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}
