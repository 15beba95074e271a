package encryption

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// sweepPage is how many records Sweep reads per transaction.
const sweepPage = 256

// maxSweepErrors bounds the failures Sweep returns; the rest are logged.
const maxSweepErrors = 10

// stale names a scope whose key is wrapped under a ref.
type stale struct {
	tid, name string
	ref       dep.PolicyRef
}

// scan calls fn for every record under prefix, a page per transaction, so
// that fn may do slow work (vault calls) outside any transaction.
func (s *Service) scan(ctx context.Context, prefix string, fn func(scopeRecord) error) error {
	after := ""
	for {
		var page []scopeRecord
		err := s.store.View(ctx, func(tx storage.Tx) error {
			entries, err := tx.List(prefix, after, sweepPage)
			if err != nil {
				return err
			}
			for _, e := range entries {
				var rec scopeRecord
				if err := json.Unmarshal(e.Value, &rec); err != nil {
					return fmt.Errorf("encryption: decoding %s: %w", e.Key, err)
				}
				page = append(page, rec)
				after = e.Key
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, rec := range page {
			if err := fn(rec); err != nil {
				return err
			}
		}
		if len(page) < sweepPage {
			return nil
		}
	}
}

// Sweep rewraps every scope key of every tenant that is not wrapped under
// its tenant's effective policy, and returns how many it rewrapped. A
// failure of one scope does not stop the others; up to maxSweepErrors of
// them are returned joined, the rest logged.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	effective := map[string]dep.PolicyRef{}
	var todo []stale
	var errs []error
	fail := func(err error) {
		if len(errs) < maxSweepErrors {
			errs = append(errs, err)
		} else {
			s.log.WarnContext(ctx, "encryption sweep", "err", err)
		}
	}
	err := s.scan(ctx, kScope, func(rec scopeRecord) error {
		eff, ok := effective[rec.TenantID]
		if !ok {
			var err error
			if eff, err = s.dep.Effective(ctx, rec.TenantID, dep.Encryption); err != nil {
				fail(fmt.Errorf("encryption: effective policy of tenant %s: %w", rec.TenantID, err))
			}
			effective[rec.TenantID] = eff
		}
		if eff.PolicyID != "" && !rec.Policy.Same(eff) {
			todo = append(todo, stale{rec.TenantID, rec.Name, eff})
		}
		return ctx.Err()
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range todo {
		ok, err := s.rewrap(ctx, t)
		if err != nil {
			fail(err)
		}
		if ok {
			n++
		}
		if ctx.Err() != nil {
			break
		}
	}
	return n, errors.Join(errs...)
}

// rewrapTenant rewraps the stale scope keys of one tenant.
func (s *Service) rewrapTenant(ctx context.Context, tid string) (int, error) {
	eff, err := s.dep.Effective(ctx, tid, dep.Encryption)
	if err != nil {
		return 0, err
	}
	var todo []stale
	err = s.scan(ctx, kScope+tid+"/", func(rec scopeRecord) error {
		if !rec.Policy.Same(eff) {
			todo = append(todo, stale{tid, rec.Name, eff})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, t := range todo {
		ok, err := s.rewrap(ctx, t)
		if err != nil && len(errs) < maxSweepErrors {
			errs = append(errs, err)
		}
		if ok {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// rewrap wraps one scope's key under t.ref, as system work: the
// availability key may stand in for revoked root keys until the old
// policy is purged. The key itself is unchanged, so every item stays
// readable. It reports false when there was nothing to do: the scope was
// deleted, recreated or rewrapped meanwhile.
func (s *Service) rewrap(ctx context.Context, t stale) (bool, error) {
	ctx = audit.WithJobRequestID(ctx, "rewrap")
	rec, _, err := s.read(ctx, t.tid, t.name)
	if errkind.Is(err, errkind.NotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if rec.Policy.Same(t.ref) {
		return false, nil
	}
	aad := scopeKeyAAD(t.tid, t.name, rec.KeyVersion)
	key, err := s.dep.UnwrapScopeKey(ctx, t.tid, rec.WrappedKey, aad,
		dep.Purpose{System: true, RequestID: audit.MetaFrom(ctx).RequestID})
	if err != nil {
		return false, fmt.Errorf("encryption: unwrapping the key of scope %s of tenant %s to rewrap it: %w", t.name, t.tid, err)
	}
	wrapped, err := s.dep.WrapScopeKey(ctx, t.ref, key, aad)
	key.Wipe()
	if err != nil {
		return false, fmt.Errorf("encryption: wrapping the key of scope %s of tenant %s under policy %s: %w", t.name, t.tid, t.ref.PolicyID, err)
	}
	done := false
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		var cur scopeRecord
		ver, err := storage.GetJSON(tx, scopeKey(t.tid, t.name), &cur)
		if errkind.Is(err, errkind.NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		// Only the key that was unwrapped above may be replaced: a scope
		// deleted and created again has another key.
		if !bytes.Equal(cur.WrappedKey, rec.WrappedKey) {
			return nil
		}
		from := cur.Policy
		cur.Policy, cur.WrappedKey, cur.UpdatedAt = t.ref, wrapped, s.now().UTC()
		if err := storage.PutJSON(tx, scopeKey(t.tid, t.name), cur, ver); err != nil {
			return err
		}
		done = true
		return s.record(ctx, tx, directory.System.Actor, t.tid, actionRewrap, t.name,
			fmt.Sprintf("scope key rewrapped from %s policy %s version %d to %s policy %s version %d",
				from.Kind, from.PolicyID, from.KeyVersion, t.ref.Kind, t.ref.PolicyID, t.ref.KeyVersion))
	})
	if err != nil {
		return false, err
	}
	if done {
		s.invalidate(ctx, cacheKey{t.tid, t.name})
	}
	return done, nil
}

// Kick asks Run to rewrap tenantID's scopes onto their effective policy
// now. It never blocks; kicks of one tenant that arrive while Run is busy
// are merged, and beyond maxKicked waiting tenants the next sweep catches
// up.
func (s *Service) Kick(tenantID string) { s.kicks.Add(tenantID) }

// Run rewraps the tenants given to Kick as they come, and sweeps every
// tenant each SweepInterval, until ctx ends. Failures are logged; a
// failed tenant is tried again by the next sweep.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.sweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if n, err := s.Sweep(ctx); err != nil {
				s.log.WarnContext(ctx, "encryption scope sweep", "rewrapped", n, "err", err)
			}
			continue
		case <-s.kicks.Wake():
		}
		for _, tid := range s.kicks.Take() {
			if n, err := s.rewrapTenant(ctx, tid); err != nil {
				s.log.WarnContext(ctx, "rewrapping encryption scopes", "tenant", tid, "rewrapped", n, "err", err)
			}
		}
	}
}

// Progress reports how many of a tenant's scopes have their key wrapped
// under ref, of how many. Scopes have no geo: geo must be empty.
func (s *Service) Progress(ctx context.Context, tenantID, geo string, ref dep.PolicyRef) (done, total int, err error) {
	if geo != "" {
		return 0, 0, errkind.Errorf(errkind.Invalid, "encryption scopes have no geo; ask for the progress of geo %q from the SharePoint workload", geo)
	}
	tid, err := checkTenant(tenantID)
	if err != nil {
		return 0, 0, err
	}
	err = s.scan(ctx, kScope+tid+"/", func(rec scopeRecord) error {
		total++
		if rec.Policy.Same(ref) {
			done++
		}
		return nil
	})
	return done, total, err
}

// PurgePolicy deletes every scope of tenantID whose key is wrapped under
// policyID, with its key: their items can never be decrypted again. It
// returns how many scopes it deleted.
func (s *Service) PurgePolicy(ctx context.Context, tenantID, policyID string) (int, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return 0, err
	}
	if policyID == "" {
		return 0, errkind.New(errkind.Invalid, "encryption: PurgePolicy needs a policy id")
	}
	var names []string
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		names = names[:0]
		entries, err := tx.List(kScope+tid+"/", "", 0)
		if err != nil {
			return err
		}
		for _, e := range entries {
			var rec scopeRecord
			if err := json.Unmarshal(e.Value, &rec); err != nil {
				return fmt.Errorf("encryption: decoding %s: %w", e.Key, err)
			}
			if rec.Policy.PolicyID != policyID {
				continue
			}
			if err := tx.Delete(e.Key, e.Version); err != nil {
				return err
			}
			if err := s.record(ctx, tx, directory.System.Actor, tid, actionPurge, rec.Name,
				"policy "+policyID+" was purged; the scope key is destroyed and its items cannot be decrypted"); err != nil {
				return err
			}
			names = append(names, rec.Name)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, n := range names {
		s.invalidate(ctx, cacheKey{tid, n})
	}
	return len(names), nil
}
