package files

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

// scanPage bounds the site records one read of the background work holds in
// memory.
const scanPage = 200

// rewrapAttempts bounds how often one site's compare-and-set is retried
// against concurrent changes within one pass; the next pass tries again.
const rewrapAttempts = 3

// answer is one memoized reply of dep during a pass.
type answer struct {
	ref dep.PolicyRef
	err error
}

// effective returns the ref site's key belongs under: its geo's effective
// policy. memo, when not nil, keeps dep's answers for the rest of a pass.
func (s *Service) effective(ctx context.Context, site Site, memo map[string]answer) (dep.PolicyRef, error) {
	k := site.TenantID + "/" + site.Geo
	if a, ok := memo[k]; ok {
		return a.ref, a.err
	}
	var a answer
	a.ref, a.err = s.dep.EffectiveGeo(ctx, site.TenantID, site.Geo)
	if memo != nil {
		memo[k] = a
	}
	return a.ref, a.err
}

// Sweep rewraps every site key whose policy version is not its geo's
// effective one, in pages, and returns how many it rewrapped. A site that
// fails is skipped and counted in the error; the next sweep retries it. The
// app calls it periodically; Kick makes Run do the same for one tenant at
// once.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	return s.rewrapAll(ctx, kSite)
}

// Kick asks Run to rewrap tenantID's sites onto their effective policies
// now. It never blocks; kicks of one tenant that arrive while Run is busy
// are merged.
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
			n, err := s.rewrapAll(ctx, kSite+tid+"/")
			if err != nil && ctx.Err() == nil {
				s.log.Error("rewrapping site keys onto their geo's effective policy", "tenant", tid, "rewrapped", n, "err", err)
			} else if n > 0 {
				s.log.Info("rewrapped site keys onto their geo's effective policy", "tenant", tid, "rewrapped", n)
			}
		}
	}
}

// rewrapAll walks the sites under prefix and rewraps those whose key is not
// under their geo's effective policy version.
func (s *Service) rewrapAll(ctx context.Context, prefix string) (int, error) {
	memo := map[string]answer{}
	var n, failed int
	var firstErr error
	err := s.scan(ctx, prefix, func(e storage.Entry, rec siteRecord) error {
		target, err := s.effective(ctx, rec.Site, memo)
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
				firstErr = fmt.Errorf("site %s: %w", rec.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	if failed > 0 {
		return n, fmt.Errorf("files: %d site keys could not be rewrapped onto their geo's effective policy; the first: %w", failed, firstErr)
	}
	return n, nil
}

// errStale says the site record changed between read and write.
var errStale = errors.New("files: the site changed meanwhile")

// rewrap unwraps rec's site key as system work, wraps it under target and
// stores it if the record is still the one read. A concurrent change makes
// it read the record again and recompute the target. It reports whether it
// rewrapped; a site deleted meanwhile or already moved is no error.
func (s *Service) rewrap(ctx context.Context, key string, rec siteRecord, ver int64, target dep.PolicyRef) (bool, error) {
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
			var cur siteRecord
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
		if target, err = s.effective(ctx, rec.Site, nil); err != nil {
			return false, err
		}
		if rec.Ref.Same(target) {
			return false, nil
		}
	}
	return false, errkind.Errorf(errkind.Conflict, "the site %s kept changing while its key was rewrapped; the next pass retries", rec.ID)
}

// scan calls fn for every site record under prefix, a page at a time
// outside any transaction, so that fn may call dep and write.
func (s *Service) scan(ctx context.Context, prefix string, fn func(storage.Entry, siteRecord) error) error {
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
			return fmt.Errorf("files: listing sites: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		after = page[len(page)-1].Key
		for _, e := range page {
			var rec siteRecord
			if err := json.Unmarshal(e.Value, &rec); err != nil {
				return fmt.Errorf("files: decoding %s: %w", e.Key, err)
			}
			if err := fn(e, rec); err != nil {
				return err
			}
		}
	}
}

// Progress counts tenantID's sites in geo (every geo when geo is empty):
// total, and done, those whose key is wrapped under exactly ref. dep shows
// it as the percentage of a Registering or Rolling geo policy.
func (s *Service) Progress(ctx context.Context, tenantID, geo string, ref dep.PolicyRef) (done, total int, err error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return 0, 0, err
	}
	if geo != "" {
		if geo, err = dep.ParseGeo(geo); err != nil {
			return 0, 0, err
		}
	}
	err = s.scan(ctx, kSite+tid+"/", func(_ storage.Entry, rec siteRecord) error {
		if geo != "" && rec.Geo != geo {
			return nil
		}
		total++
		if rec.Ref.Same(ref) {
			done++
		}
		return nil
	})
	return done, total, err
}

// PurgePolicy destroys every site of tenantID whose key is wrapped under
// any version of policyID, with its files and chunks. dep calls it when it
// runs an approved purge; it returns how many sites it deleted.
// Interrupted, it can be run again.
func (s *Service) PurgePolicy(ctx context.Context, tenantID, policyID string) (int, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return 0, err
	}
	if policyID == "" {
		return 0, errkind.New(errkind.Invalid, "files: PurgePolicy needs a policy id")
	}
	n := 0
	err = s.scan(ctx, kSite+tid+"/", func(_ storage.Entry, rec siteRecord) error {
		if rec.Ref.PolicyID != policyID {
			return nil
		}
		if err := s.destroy(ctx, rec.Site, "files/sites/purge"); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}

// destroyPage bounds the files one transaction of destroy deletes (each
// with all its chunks).
const destroyPage = 100

// destroy deletes a site's files a page per transaction, then, in the last
// transaction, whatever files remain, the site record (with its wrapped
// key) and its URL index. A file written meanwhile either lands before the
// last transaction, which deletes it, or finds the site gone. Interrupted,
// it leaves the site in place, so running it again finishes the job.
func (s *Service) destroy(ctx context.Context, site Site, action string) error {
	tid, files := site.TenantID, kFile+site.TenantID+"/"+site.ID+"/"
	for {
		last := false
		err := s.store.Update(ctx, func(tx storage.Tx) error {
			entries, err := tx.List(files, "", destroyPage+1)
			if err != nil {
				return err
			}
			last = len(entries) <= destroyPage
			for _, e := range entries[:min(len(entries), destroyPage)] {
				var f fileRecord
				if err := jsonUnmarshal(e, &f); err != nil {
					return err
				}
				if err := deleteChunks(tx, tid, site.ID, f.Chunks); err != nil {
					return err
				}
				if err := tx.Delete(e.Key, storage.AnyVersion); err != nil {
					return err
				}
			}
			if !last {
				return nil
			}
			if err := tx.Delete(kSite+tid+"/"+site.ID, storage.AnyVersion); err != nil {
				return err
			}
			if err := tx.Delete(urlKey(tid, site.URL), storage.AnyVersion); err != nil {
				return err
			}
			return s.record(ctx, tx, directory.System, tid, action, site.URL)
		})
		if err != nil {
			return fmt.Errorf("files: deleting site %s: %w", site.ID, err)
		}
		if last {
			return nil
		}
	}
}
