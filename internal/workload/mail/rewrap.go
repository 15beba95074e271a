package mail

import (
	"context"

	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/workload/scope"
)

// effective returns the ref m's key belongs under: its Exchange policy's
// current version if one is assigned, else the tenant's effective policy
// for Exchange (multi-workload, else the default).
func (s *Service) effective(ctx context.Context, m Mailbox) (dep.PolicyRef, error) {
	if m.DataEncryptionPolicy != "" {
		return s.dep.Current(ctx, m.TenantID, m.DataEncryptionPolicy)
	}
	return s.dep.Effective(ctx, m.TenantID, dep.Mail)
}

// newRewrapper returns the job that moves mailbox keys onto their
// effective policy: within one pass it asks dep once per tenant and
// assigned policy.
func (s *Service) newRewrapper() *scope.Rewrapper[mailboxRecord] {
	return scope.NewRewrapper(scope.RewrapOptions[mailboxRecord]{
		Store: s.store, Keys: s.dep, Log: s.log, Prefix: kMbx, AAD: scopeAAD,
		Names: scope.Names{Workload: "mail", Scope: "mailbox", Scopes: "mailboxes", Target: "their effective policy"},
		Target: func(ctx context.Context, rec mailboxRecord) (dep.PolicyRef, error) {
			return s.effective(ctx, rec.Mailbox)
		},
		Group: func(rec mailboxRecord) string { return rec.TenantID + "/" + rec.DataEncryptionPolicy },
	})
}

// Scope, Key and WithKey make a mailbox record a scope.Record.
func (r mailboxRecord) Scope() (tenantID, id string) { return r.TenantID, r.ID }
func (r mailboxRecord) Key() ([]byte, dep.PolicyRef) { return r.WrappedKey, r.Ref }
func (r mailboxRecord) WithKey(wrapped []byte, ref dep.PolicyRef) mailboxRecord {
	r.WrappedKey, r.Ref = wrapped, ref
	return r
}

// Sweep rewraps every mailbox key whose policy version is not its
// effective one, in pages, and returns how many it rewrapped. A mailbox
// that fails is skipped and counted in the error; the next sweep retries
// it. The app calls it periodically; Kick makes Run do the same for one
// tenant at once.
func (s *Service) Sweep(ctx context.Context) (int, error) { return s.rewrapper.Sweep(ctx) }

// Kick asks Run to rewrap tenantID's mailboxes onto their effective
// policies now. It never blocks; kicks of one tenant that arrive while Run
// is busy are merged.
func (s *Service) Kick(tenantID string) { s.rewrapper.Kick(tenantID) }

// Run serves kicks until ctx ends, then returns nil. The app runs it in
// the background beside its periodic Sweep; kicks made while Run is not
// running wait for it (and Sweep covers them anyway).
func (s *Service) Run(ctx context.Context) error { return s.rewrapper.Run(ctx) }

// Progress counts tenantID's mailboxes: total, and done, those whose key is
// wrapped under exactly ref. Mailboxes have no geo: geo must be empty.
func (s *Service) Progress(ctx context.Context, tenantID, geo string, ref dep.PolicyRef) (done, total int, err error) {
	if geo != "" {
		return 0, 0, errkind.Errorf(errkind.Invalid, "mailboxes have no geo; ask for the progress of geo %q from the SharePoint workload", geo)
	}
	tid, err := scope.CheckTenant(tenantID)
	if err != nil {
		return 0, 0, err
	}
	err = s.rewrapper.Scan(ctx, tid, func(rec mailboxRecord) error {
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
	tid, err := scope.CheckTenant(tenantID)
	if err != nil {
		return 0, err
	}
	if policyID == "" {
		return 0, errkind.New(errkind.Invalid, "mail: PurgePolicy needs a policy id")
	}
	n := 0
	err = s.rewrapper.Scan(ctx, tid, func(rec mailboxRecord) error {
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
