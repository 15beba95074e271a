package dep

import (
	"context"
	"strings"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// Recovery is the break-glass state of an Exchange or multi-workload policy
// whose customer lost both root keys (customer-key-spec.md §d.7): the
// customer asked the operator for help, and until the customer has moved
// its data to a new policy, user requests too may be served from the
// availability key when no root key answers. Every such use is audited as
// "Fallback to Availability Key". A revocation the customer means (a purge
// request) ends it, and it never applies to SharePoint, whose recovery is
// RestoreSharePoint.
type Recovery struct {
	Reason string      `json:"reason"`
	By     audit.Actor `json:"by"`
	Since  string      `json:"since"` // RFC 3339, UTC
}

// Audit actions of recovery.
const (
	actionRecoveryStart = "dep/policies/recoveryStart"
	actionRecoveryEnd   = "dep/policies/recoveryEnd"
)

// SetRecovery starts (on) or ends the recovery of an Exchange or
// multi-workload policy. Only the operator's Global Administrators may,
// and only for a policy that is neither purge-requested nor purged; reason
// is required to start (what the customer reported).
func (s *Service) SetRecovery(ctx context.Context, c directory.Caller, tenantID, policyID string, on bool, reason string) (Policy, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return Policy{}, err
	}
	what := "end the recovery of a policy"
	if on {
		what = "put a policy into recovery"
	}
	if err := s.authorizeOperator(ctx, c, true, what); err != nil {
		return Policy{}, err
	}
	reason = strings.TrimSpace(reason)
	if on && (reason == "" || len(reason) > 1024) {
		return Policy{}, errkind.New(errkind.Invalid,
			"say why the policy goes into recovery (what the customer reported, 1 to 1024 characters)").WithCode("InvalidReason")
	}
	id := lower(policyID)
	notFound := errkind.Errorf(errkind.NotFound, "tenant %s has no encryption policy %s", tid, policyID).WithCode("PolicyNotFound")
	if !directory.IsGUID(id) {
		return Policy{}, notFound
	}
	by := actorOf(c, tid)
	var out Policy
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		var p Policy
		ver, err := storage.GetJSON(tx, policyKey(tid, id), &p)
		if errkind.Is(err, errkind.NotFound) {
			return notFound
		}
		if err != nil {
			return err
		}
		if p.Kind != Exchange && p.Kind != M365 {
			return errkind.Errorf(errkind.FailedPrecondition,
				"the %s cannot go into recovery: only Exchange and multi-workload policies fall back to their availability key; "+
					"a SharePoint geo is recovered with Restore-SPODataEncryptionPolicy", p.label()).WithCode("RecoveryNotSupported")
		}
		if on && (p.State == PurgeRequested || p.State == Purging || p.State == Purged) {
			return errkind.Errorf(errkind.FailedPrecondition,
				"the %s is %s: the customer asked for its data to be purged, so it cannot be recovered", p.label(), p.State).WithCode("PurgeRequested")
		}
		if on == (p.Recovery != nil) {
			out = p
			return nil // already so; nothing to record
		}
		now := s.now().UTC()
		action, why := actionRecoveryEnd, "recovery ended"
		if on {
			p.Recovery = &Recovery{Reason: reason, By: by, Since: now.Format("2006-01-02T15:04:05Z")}
			action, why = actionRecoveryStart, "recovery started: "+reason
		} else {
			p.Recovery = nil
		}
		p.UpdatedAt = now
		if err := storage.PutJSON(tx, policyKey(tid, id), p, ver); err != nil {
			return err
		}
		out = p
		return s.audit.RecordTx(ctx, tx, audit.Event{TenantID: tid, Actor: by, Action: action, Target: id,
			Result: audit.Success, Reason: why})
	})
	return out, err
}
