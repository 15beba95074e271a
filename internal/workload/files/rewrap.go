package files

import (
	"context"
	"fmt"

	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/workload/scope"
)

// effective returns the ref site's key belongs under: its geo's effective
// policy.
func (s *Service) effective(ctx context.Context, site Site) (dep.PolicyRef, error) {
	return s.dep.EffectiveGeo(ctx, site.TenantID, site.Geo)
}

// newRewrapper returns the job that moves site keys onto their geo's
// effective policy: within one pass it asks dep once per tenant and geo.
func (s *Service) newRewrapper() *scope.Rewrapper[siteRecord] {
	return scope.NewRewrapper(scope.RewrapOptions[siteRecord]{
		Store: s.store, Keys: s.dep, Log: s.log, Prefix: kSite, AAD: scopeAAD,
		Names:  scope.Names{Workload: "files", Scope: "site", Scopes: "sites", Target: "their geo's effective policy"},
		Target: func(ctx context.Context, rec siteRecord) (dep.PolicyRef, error) { return s.effective(ctx, rec.Site) },
		Group:  func(rec siteRecord) string { return rec.TenantID + "/" + rec.Geo },
	})
}

// Scope, Key and WithKey make a site record a scope.Record.
func (r siteRecord) Scope() (tenantID, id string) { return r.TenantID, r.ID }
func (r siteRecord) Key() ([]byte, dep.PolicyRef) { return r.WrappedKey, r.Ref }
func (r siteRecord) WithKey(wrapped []byte, ref dep.PolicyRef) siteRecord {
	r.WrappedKey, r.Ref = wrapped, ref
	return r
}

// Sweep rewraps every site key whose policy version is not its geo's
// effective one, in pages, and returns how many it rewrapped. A site that
// fails is skipped and counted in the error; the next sweep retries it. The
// app calls it periodically; Kick makes Run do the same for one tenant at
// once.
func (s *Service) Sweep(ctx context.Context) (int, error) { return s.rewrapper.Sweep(ctx) }

// Kick asks Run to rewrap tenantID's sites onto their effective policies
// now. It never blocks; kicks of one tenant that arrive while Run is busy
// are merged.
func (s *Service) Kick(tenantID string) { s.rewrapper.Kick(tenantID) }

// Run serves kicks until ctx ends, then returns nil. The app runs it in
// the background beside its periodic Sweep; kicks made while Run is not
// running wait for it (and Sweep covers them anyway).
func (s *Service) Run(ctx context.Context) error { return s.rewrapper.Run(ctx) }

// Progress counts tenantID's sites in geo (every geo when geo is empty):
// total, and done, those whose key is wrapped under exactly ref. dep shows
// it as the percentage of a Registering or Rolling geo policy.
func (s *Service) Progress(ctx context.Context, tenantID, geo string, ref dep.PolicyRef) (done, total int, err error) {
	tid, err := scope.CheckTenant(tenantID)
	if err != nil {
		return 0, 0, err
	}
	if geo != "" {
		if geo, err = dep.ParseGeo(geo); err != nil {
			return 0, 0, err
		}
	}
	err = s.rewrapper.Scan(ctx, tid, func(rec siteRecord) error {
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
	tid, err := scope.CheckTenant(tenantID)
	if err != nil {
		return 0, err
	}
	if policyID == "" {
		return 0, errkind.New(errkind.Invalid, "files: PurgePolicy needs a policy id")
	}
	n := 0
	err = s.rewrapper.Scan(ctx, tid, func(rec siteRecord) error {
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
			return s.audit.Record(ctx, tx, directory.System, tid, action, site.URL)
		})
		if err != nil {
			return fmt.Errorf("files: deleting site %s: %w", site.ID, err)
		}
		if last {
			return nil
		}
	}
}
