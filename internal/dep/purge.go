package dep

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/envelope"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
)

// PurgeRequest is the customer's request to purge a policy's data
// (Set-DataEncryptionPolicy -PermanentDataPurgeRequested).
type PurgeRequest struct {
	Reason  string
	Contact string
	// Force accepts a root key whose whole vault is gone (NotFound) as
	// revoked; without it a missing vault is refused, in case it was
	// deleted by mistake.
	Force bool
}

// purgeJob is a purge in progress, persisted so that a crash resumes it.
type purgeJob struct {
	TenantID string     `json:"tenantId"`
	PolicyID string     `json:"policyId"`
	Done     []Workload `json:"done"`   // workloads whose data is deleted
	Scopes   int        `json:"scopes"` // scopes they deleted
	Started  time.Time  `json:"started"`
	// AKObject is the CKA_ID of the policy's availability key in the HSM,
	// set when the store deleted the keys: the job stays until the HSM
	// has destroyed the object.
	AKObject []byte `json:"akObject,omitempty"`
}

func jobKey(tid, id string) string { return kPurgeJob + tid + "/" + id }

// RequestPurge asks for the permanent purge of an Exchange policy's data,
// or of a SharePoint geo's (identity is then the geo). It is refused
// unless the workload identity has lost wrap and unwrap on every root key
// (rule V15), checked live: the stored copy must fail to unwrap, and a test
// value must fail to wrap, with AccessDenied, KeyDisabled or NotFound; a
// key whose vault is gone counts only with Force. Afterwards the policy
// takes no new assignments and waits for two operator approvals.
func (s *Service) RequestPurge(ctx context.Context, c directory.Caller, tenantID string, k Kind, identity string, req PurgeRequest) (Policy, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return Policy{}, err
	}
	switch k {
	case Exchange, SharePoint:
	case M365:
		return Policy{}, errkind.New(errkind.FailedPrecondition,
			"multi-workload policies cannot be purged; leaving Customer Key for multiple workloads goes through the operator (offboarding)").
			WithCode("PurgeNotSupported")
	default:
		return Policy{}, errkind.Errorf(errkind.Invalid, "only %s and %s policies can be purged", Exchange, SharePoint)
	}
	if err := s.authorize(ctx, c, tid, k, actionPurgeRequest); err != nil {
		return Policy{}, err
	}
	reason, contact := strings.TrimSpace(req.Reason), strings.TrimSpace(req.Contact)
	if reason == "" || contact == "" || len(reason) > MaxPurgeTextLen || len(contact) > MaxPurgeTextLen {
		return Policy{}, errkind.Errorf(errkind.Invalid,
			"a purge request needs a reason and a contact (who signs the purge), each at most %d characters", MaxPurgeTextLen)
	}
	var p Policy
	var ver int64
	var kv keyVersion
	err = s.store.View(ctx, func(tx storage.Tx) error {
		var err error
		if k == SharePoint {
			g, gerr := ParseGeo(identity)
			if gerr != nil {
				return gerr
			}
			p, ver, err = geoPolicyVer(tx, tid, g)
		} else {
			p, ver, err = find(tx, tid, k, identity)
		}
		if err != nil {
			return err
		}
		kv, err = loadVersion(tx, tid, p.ID, p.KeyVersion)
		return err
	})
	if err != nil {
		return Policy{}, err
	}
	if p.purgeStarted() {
		return Policy{}, errkind.Errorf(errkind.Conflict, "the %s is %s already", p.label(), p.State).WithCode("PurgeRequested")
	}
	if err := s.checkRevoked(ctx, p, kv, req.Force); err != nil {
		return Policy{}, err
	}
	now := s.now().UTC()
	by := actorOf(c, tid)
	p.State, p.Enabled, p.Recovery = PurgeRequested, false, nil
	p.PermanentDataPurgeRequested, p.PermanentDataPurgeReason, p.PermanentDataPurgeContact = true, reason, contact
	p.PurgeRequestedAt, p.PurgeRequestedBy, p.PurgeForced, p.UpdatedAt = &now, &by, req.Force, now
	p.PercentComplete = nil
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		if err := storage.PutJSON(tx, policyKey(tid, p.ID), p, ver); err != nil {
			if errkind.Is(err, errkind.Conflict) {
				return versionConflict(p)
			}
			return err
		}
		return s.audit.RecordTx(ctx, tx, audit.Event{TenantID: tid, Actor: by, Action: actionPurgeRequest, Target: p.ID,
			Result: audit.Success, Reason: fmt.Sprintf("reason %q, contact %q, force %v", reason, contact, req.Force)})
	})
	if err != nil {
		return Policy{}, err
	}
	return p, nil
}

// checkRevoked proves, live, that the policy's workload identity can no
// longer unwrap nor wrap with any root key.
func (s *Service) checkRevoked(ctx context.Context, p Policy, kv keyVersion, force bool) error {
	app, appName := appOf(p.Kind)
	var problems []error
	for i, w := range kv.Roots {
		uri := w.KeyID
		if i < len(p.KeyURIs) {
			uri = p.KeyURIs[i]
		}
		if err := s.revokedOne(ctx, app, appName, p.TenantID, uri, w, force); err != nil {
			problems = append(problems, err)
		}
	}
	if len(problems) > 0 {
		return joinProblems(problems)
	}
	return nil
}

func (s *Service) revokedOne(ctx context.Context, app, appName, tid, uri string, w WrappedRoot, force bool) error {
	stillWorks := func(op string) error {
		return errkind.Errorf(errkind.FailedPrecondition,
			"%s can still %s with the root key %s: remove its wrapKey and unwrapKey access on both keys first "+
				"(delete its Key Vault Crypto Service Encryption User role assignment or access policy) (rule V15)", appName, op, uri).
			WithCode("RootKeyNotRevoked")
	}
	key, err := s.roots.Unwrap(ctx, app, tid, w)
	if err == nil {
		secret.Wipe(key)
		return stillWorks("unwrap")
	}
	if err := s.acceptRevocation(ctx, appName, uri, err, force); err != nil {
		return err
	}
	test, err := envelope.NewKey()
	if err != nil {
		return err
	}
	defer test.Wipe()
	_, err = s.roots.Wrap(ctx, app, tid, uri, test.Reveal())
	if err == nil {
		return stillWorks("wrap")
	}
	return s.acceptRevocation(ctx, appName, uri, err, force)
}

// acceptRevocation accepts AccessDenied, KeyDisabled and NotFound as a
// revocation; NotFound because the vault itself is gone only with force.
func (s *Service) acceptRevocation(ctx context.Context, appName, uri string, err error, force bool) error {
	switch ClassOf(err) {
	case AccessDenied, KeyDisabled:
		return nil
	case NotFound:
		if force {
			return nil
		}
		k, perr := parseKeyURI(uri)
		if perr != nil {
			return perr
		}
		_, verr := s.vaults.ByName(ctx, k.vault)
		if verr == nil {
			return nil // the key is gone from a live vault: revoked
		}
		if !errkind.Is(verr, errkind.NotFound) {
			return verr
		}
		return errkind.Errorf(errkind.FailedPrecondition,
			"the key vault %s of root key %s no longer exists; if it was deleted on purpose, request the purge again with force "+
				"(-Force), otherwise recover the vault first", k.vault, uri).WithCode("VaultNotFound")
	case Transient:
		return keyProblem(appName, uri, err)
	}
	return errkind.Wrap(errkind.FailedPrecondition, fmt.Sprintf(
		"the root key %s failed with %s, which is not a revocation: remove %s's access to the key instead (rule V15)", uri, ClassOf(err), appName),
		err).WithCode("RootKeyNotRevoked")
}

// ApprovePurge records an operator Global Administrator's approval of a
// requested purge. Two different operators must approve; the second
// approval starts the purge job and runs it: the workloads delete the data
// under the policy, then its wrapped key copies and availability key are
// deleted and it stays as a Purged tombstone; an availability key kept in
// the HSM is destroyed there after that commit. If the job is interrupted
// (the HSM being unreachable included) it stays persisted, and
// ResumePurges finishes it.
func (s *Service) ApprovePurge(ctx context.Context, c directory.Caller, tenantID, policyID string) (Policy, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return Policy{}, err
	}
	if err := s.authorizeOperator(ctx, c, true, "approve a data purge"); err != nil {
		return Policy{}, err
	}
	id := lower(policyID)
	notFound := errkind.Errorf(errkind.NotFound, "tenant %s has no encryption policy %s", tid, policyID).WithCode("PolicyNotFound")
	if !directory.IsGUID(id) {
		return Policy{}, notFound
	}
	by := actorOf(c, tid)
	now := s.now().UTC()
	var out Policy
	var job *purgeJob
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		job = nil
		var p Policy
		ver, err := storage.GetJSON(tx, policyKey(tid, id), &p)
		if errkind.Is(err, errkind.NotFound) {
			return notFound
		}
		if err != nil {
			return err
		}
		if p.State != PurgeRequested {
			return errkind.Errorf(errkind.FailedPrecondition, "the %s is %s, not PurgeRequested; only a requested purge can be approved", p.label(), p.State)
		}
		if slices.ContainsFunc(p.PurgeApprovals, func(a Approval) bool { return strings.EqualFold(a.By.ID, c.ID) }) {
			return errkind.Errorf(errkind.Conflict,
				"the operator %s approved the purge of the %s already; a second, different operator administrator must approve", c.ID, p.label())
		}
		p.PurgeApprovals = append(p.PurgeApprovals, Approval{By: by, At: now})
		p.UpdatedAt = now
		reason := fmt.Sprintf("approval %d of 2", len(p.PurgeApprovals))
		if len(p.PurgeApprovals) >= 2 {
			p.State = Purging
			job = &purgeJob{TenantID: tid, PolicyID: id, Done: []Workload{}, Started: now}
			if err := storage.PutJSON(tx, jobKey(tid, id), job, storage.MustNotExist); err != nil {
				return err
			}
			reason += "; the purge starts"
		}
		if err := storage.PutJSON(tx, policyKey(tid, id), p, ver); err != nil {
			return err
		}
		out = p
		return s.audit.RecordTx(ctx, tx, audit.Event{TenantID: tid, Actor: by, Action: actionPurgeApprove, Target: id,
			Result: audit.Success, Reason: reason})
	})
	if err != nil || job == nil {
		return out, err
	}
	return s.runPurge(ctx, *job)
}

// ResumePurges finishes purge jobs that a crash or an error interrupted;
// app calls it at start and may call it periodically. It returns how many
// it finished; the errors of the others are joined.
func (s *Service) ResumePurges(ctx context.Context) (int, error) {
	var jobs []purgeJob
	err := s.store.View(ctx, func(tx storage.Tx) error {
		entries, err := tx.List(kPurgeJob, "", 0)
		if err != nil {
			return err
		}
		for _, e := range entries {
			var j purgeJob
			if _, err := storage.GetJSON(tx, e.Key, &j); err != nil {
				return err
			}
			jobs = append(jobs, j)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, j := range jobs {
		if _, err := s.runPurge(ctx, j); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// runPurge runs the steps of a purge job that are not done yet, recording
// each step as it completes: first every workload deletes its data under
// the policy, then one transaction deletes the keys and leaves the
// tombstone.
func (s *Service) runPurge(ctx context.Context, job purgeJob) (Policy, error) {
	for _, w := range s.workloads() {
		name := w.Workload()
		if slices.Contains(job.Done, name) {
			continue
		}
		n, err := w.PurgePolicy(ctx, job.TenantID, job.PolicyID)
		if err != nil {
			return Policy{}, errkind.Wrap(errkind.Unavailable, fmt.Sprintf(
				"the purge of policy %s stopped while the %s workload deleted its data; it resumes on the next ResumePurges", job.PolicyID, name), err)
		}
		job.Done = append(job.Done, name)
		job.Scopes += n
		if err := s.store.Update(ctx, func(tx storage.Tx) error {
			return storage.PutJSON(tx, jobKey(job.TenantID, job.PolicyID), job, storage.AnyVersion)
		}); err != nil {
			return Policy{}, err
		}
	}
	var out Policy
	err := s.store.Update(ctx, func(tx storage.Tx) error {
		var p Policy
		ver, err := storage.GetJSON(tx, policyKey(job.TenantID, job.PolicyID), &p)
		if err != nil {
			return err
		}
		out = p
		if p.State == Purged {
			if job.AKObject != nil {
				return nil // the store is done; the HSM object is destroyed below
			}
			return tx.Delete(jobKey(job.TenantID, job.PolicyID), storage.AnyVersion)
		}
		versions, err := tx.List(keysPrefix(job.TenantID, job.PolicyID), "", 0)
		if err != nil {
			return err
		}
		for _, e := range versions {
			if err := tx.Delete(e.Key, storage.AnyVersion); err != nil {
				return err
			}
		}
		job.AKObject = nil
		switch e, err := tx.Get(akKey(job.TenantID, job.PolicyID)); {
		case err == nil:
			ak, err := parseAK(e.Value)
			if err != nil {
				return err
			}
			ak.Wipe()
			job.AKObject = ak.hsmID
		case !errkind.Is(err, errkind.NotFound):
			return err
		}
		if err := tx.Delete(akKey(job.TenantID, job.PolicyID), storage.AnyVersion); err != nil {
			return err
		}
		if err := s.dropIndexes(tx, p); err != nil {
			return err
		}
		now := s.now().UTC()
		p.State, p.Enabled, p.PurgedAt, p.PurgedScopes, p.UpdatedAt = Purged, false, &now, job.Scopes, now
		if err := storage.PutJSON(tx, policyKey(job.TenantID, job.PolicyID), p, ver); err != nil {
			return err
		}
		akDone := "the availability key deleted"
		if job.AKObject != nil {
			// The job stays until the HSM destroyed the key object.
			akDone = "the availability key deleted from the store (its HSM object is destroyed next)"
			err = storage.PutJSON(tx, jobKey(job.TenantID, job.PolicyID), job, storage.AnyVersion)
		} else {
			err = tx.Delete(jobKey(job.TenantID, job.PolicyID), storage.AnyVersion)
		}
		if err != nil {
			return err
		}
		out = p
		return s.audit.RecordTx(ctx, tx, audit.Event{TenantID: job.TenantID, Actor: systemActor, Action: actionPurge, Target: p.ID,
			Result: audit.Success, Reason: fmt.Sprintf(
				"data of %d scopes deleted by %v; %d wrapped policy key versions and %s; the policy is a tombstone",
				job.Scopes, job.Done, len(versions), akDone)})
	})
	if err != nil {
		return Policy{}, err
	}
	s.policyChanged(ctx, job.TenantID, job.PolicyID)
	if job.AKObject == nil {
		return out, nil
	}
	// Destroying the key object after the commit: were it destroyed first
	// and the commit failed, the policy would keep keys that no longer
	// open. Until it is destroyed, the job stays and ResumePurges retries.
	if err := s.destroyAK(ctx, job); err != nil {
		return Policy{}, err
	}
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		if err := tx.Delete(jobKey(job.TenantID, job.PolicyID), storage.AnyVersion); err != nil {
			return err
		}
		return s.audit.RecordTx(ctx, tx, audit.Event{TenantID: job.TenantID, Actor: systemActor, Action: actionPurgeAK,
			Target: job.PolicyID, Result: audit.Success,
			Reason: "the availability key object of the purged policy was destroyed in the HSM; what the store may still hold of its keys no longer opens"})
	})
	if err != nil {
		return Policy{}, err
	}
	return out, nil
}

// dropIndexes frees the purged policy's name or geo for a new policy.
func (s *Service) dropIndexes(tx storage.Tx, p Policy) error {
	var key string
	switch p.Kind {
	case SharePoint:
		key = geoKey(p.TenantID, p.Geo)
	default:
		key = nameKey(p.TenantID, p.Kind, p.Name)
	}
	e, err := tx.Get(key)
	if errkind.Is(err, errkind.NotFound) {
		return nil
	}
	if err != nil || string(e.Value) != p.ID {
		return err
	}
	return tx.Delete(key, storage.AnyVersion)
}
