package dep

import (
	"context"
	"fmt"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/envelope"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// Assignment is the multi-workload policy assigned to a tenant. The zero
// value (no PolicyID) means none is: the workloads use service-managed
// keys.
type Assignment struct {
	PolicyID   string       `json:"policyId,omitempty"`
	PolicyName string       `json:"policyName,omitempty"`
	AssignedAt *time.Time   `json:"assignedAt,omitempty"`
	AssignedBy *audit.Actor `json:"assignedBy,omitempty"`
}

func loadAssignment(tx storage.Tx, tid string) (Assignment, error) {
	var a Assignment
	_, err := storage.GetJSON(tx, kAssignment+tid, &a)
	if errkind.Is(err, errkind.NotFound) {
		return Assignment{}, nil
	}
	return a, err
}

// Assignment returns the tenant's assigned multi-workload policy
// (Get-M365DataAtRestEncryptionPolicyAssignment).
func (s *Service) Assignment(ctx context.Context, c directory.Caller, tenantID string) (Assignment, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return Assignment{}, err
	}
	if err := s.authorize(ctx, c, tid, M365, actionRead); err != nil {
		return Assignment{}, err
	}
	var a Assignment
	err = s.store.View(ctx, func(tx storage.Tx) error {
		var err error
		a, err = loadAssignment(tx, tid)
		return err
	})
	return a, err
}

// Assign makes a multi-workload policy the tenant's one assigned policy,
// replacing any other (rule V11); the policy must be enabled. The
// workloads then move their scopes onto it.
func (s *Service) Assign(ctx context.Context, c directory.Caller, tenantID, identity string) (Assignment, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return Assignment{}, err
	}
	if err := s.authorize(ctx, c, tid, M365, actionAssign); err != nil {
		return Assignment{}, err
	}
	var out Assignment
	changed := false
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		p, _, err := find(tx, tid, M365, identity)
		if err != nil {
			return err
		}
		if !p.Enabled {
			return errkind.Errorf(errkind.FailedPrecondition, "the %s is disabled; enable it before assigning it", p.label()).
				WithCode("PolicyDisabled")
		}
		cur, err := loadAssignment(tx, tid)
		if err != nil {
			return err
		}
		if cur.PolicyID == p.ID {
			out = cur
			return nil
		}
		now := s.now().UTC()
		by := actorOf(c, tid)
		out = Assignment{PolicyID: p.ID, PolicyName: p.Name, AssignedAt: &now, AssignedBy: &by}
		if err := storage.PutJSON(tx, kAssignment+tid, out, storage.AnyVersion); err != nil {
			return err
		}
		reason := "assigned " + p.Name
		if cur.PolicyID != "" {
			reason = fmt.Sprintf("assigned %s, replacing %s (%s)", p.Name, cur.PolicyName, cur.PolicyID)
		}
		changed = true
		return s.audit.RecordTx(ctx, tx, audit.Event{TenantID: tid, Actor: by, Action: actionAssign, Target: p.ID,
			Result: audit.Success, Reason: reason})
	})
	if err != nil {
		return Assignment{}, err
	}
	if changed {
		s.kick(tid)
	}
	return out, nil
}

func checkWorkload(w Workload) error {
	switch w {
	case Mail, Files, Encryption:
		return nil
	}
	return errkind.Errorf(errkind.Invalid, "dep: unknown workload %q", w)
}

// Effective is the policy that protects new scope keys of workload w: the
// tenant's assigned multi-workload policy, else w's service-managed
// default (created on first use).
func (s *Service) Effective(ctx context.Context, tenantID string, w Workload) (PolicyRef, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return PolicyRef{}, err
	}
	if err := checkWorkload(w); err != nil {
		return PolicyRef{}, err
	}
	ref, ok, err := s.assigned(ctx, tid)
	if err != nil || ok {
		return ref, err
	}
	return s.serviceDefault(ctx, tid, w)
}

// assigned returns the newest version of the assigned M365 policy.
func (s *Service) assigned(ctx context.Context, tid string) (PolicyRef, bool, error) {
	var ref PolicyRef
	var ok bool
	err := s.store.View(ctx, func(tx storage.Tx) error {
		a, err := loadAssignment(tx, tid)
		if err != nil || a.PolicyID == "" {
			return err
		}
		var p Policy
		if _, err := storage.GetJSON(tx, policyKey(tid, a.PolicyID), &p); err != nil {
			return err
		}
		ref, ok = p.Ref(), true
		return nil
	})
	return ref, ok, err
}

// EffectiveGeo is the policy that protects new site keys in a geo: the
// geo's SharePoint policy (its newest key version) while it is
// Registering, Registered or Rolling, else the assigned multi-workload
// policy, else the Files default.
func (s *Service) EffectiveGeo(ctx context.Context, tenantID, geo string) (PolicyRef, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return PolicyRef{}, err
	}
	g, err := ParseGeo(geo)
	if err != nil {
		return PolicyRef{}, err
	}
	var ref PolicyRef
	var ok bool
	err = s.store.View(ctx, func(tx storage.Tx) error {
		p, err := geoPolicy(tx, tid, g)
		if errkind.Is(err, errkind.NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		switch p.State {
		case Registering, Registered, Rolling:
			ref, ok = p.Ref(), true
		}
		return nil
	})
	if err != nil || ok {
		return ref, err
	}
	if ref, ok, err = s.assigned(ctx, tid); err != nil || ok {
		return ref, err
	}
	return s.serviceDefault(ctx, tid, Files)
}

// ExchangePolicy resolves an Exchange policy for assignment to a mailbox
// (Set-Mailbox -DataEncryptionPolicy): by name or id, in the tenant,
// enabled, and not being purged (rule V16). It returns the newest key
// version.
func (s *Service) ExchangePolicy(ctx context.Context, tenantID, identity string) (PolicyRef, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return PolicyRef{}, err
	}
	var p Policy
	err = s.store.View(ctx, func(tx storage.Tx) error {
		var err error
		p, _, err = find(tx, tid, Exchange, identity)
		return err
	})
	switch {
	case err != nil:
		return PolicyRef{}, err
	case p.purgeStarted():
		return PolicyRef{}, errkind.Errorf(errkind.FailedPrecondition,
			"the %s is %s: a policy whose data purge was requested cannot be assigned to mailboxes (rule V16)", p.label(), p.State).
			WithCode("PolicyPurgeRequested")
	case !p.Enabled:
		return PolicyRef{}, errkind.Errorf(errkind.FailedPrecondition, "the %s is disabled; enable it before assigning it to mailboxes", p.label()).
			WithCode("PolicyDisabled")
	}
	return p.Ref(), nil
}

// Current returns the newest key version of any policy of the tenant;
// NotFound after a purge.
func (s *Service) Current(ctx context.Context, tenantID, policyID string) (PolicyRef, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return PolicyRef{}, err
	}
	id := lower(policyID)
	notFound := errkind.Errorf(errkind.NotFound, "tenant %s has no encryption policy %s (or it was purged)", tid, policyID).WithCode("PolicyNotFound")
	if !directory.IsGUID(id) {
		return PolicyRef{}, notFound
	}
	var p Policy
	err = s.store.View(ctx, func(tx storage.Tx) error {
		_, err := storage.GetJSON(tx, policyKey(tid, id), &p)
		return err
	})
	switch {
	case errkind.Is(err, errkind.NotFound) || (err == nil && p.State == Purged):
		return PolicyRef{}, notFound
	case err != nil:
		return PolicyRef{}, err
	}
	return p.Ref(), nil
}

// serviceDefault returns the service-managed default of a tenant's
// workload, creating it on first use: a policy key wrapped only by the
// operator key.
func (s *Service) serviceDefault(ctx context.Context, tid string, w Workload) (PolicyRef, error) {
	idx := kDefault + tid + "/" + string(w)
	var ref PolicyRef
	var ok bool
	read := func(tx storage.Tx) error {
		e, err := tx.Get(idx)
		if errkind.Is(err, errkind.NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var p Policy
		if _, err := storage.GetJSON(tx, policyKey(tid, string(e.Value)), &p); err != nil {
			return err
		}
		ref, ok = p.Ref(), true
		return nil
	}
	if err := s.store.View(ctx, read); err != nil || ok {
		return ref, err
	}
	if _, err := s.dir.Tenant(ctx, tid); err != nil {
		return PolicyRef{}, err
	}
	op, err := s.operatorKey(ctx)
	if err != nil {
		return PolicyRef{}, err
	}
	defer op.Wipe()
	key, err := newPolicyKey()
	if err != nil {
		return PolicyRef{}, err
	}
	defer key.Wipe()
	id, err := s.newID()
	if err != nil {
		return PolicyRef{}, err
	}
	now := s.now().UTC()
	p := Policy{ID: id, TenantID: tid, Kind: ServiceManaged, Name: "Service-managed " + string(w), Workload: w, Enabled: true,
		State: Active, KeyVersion: 1, CreatedAt: now, UpdatedAt: now}
	blob, err := envelope.Seal(op, "operator", operatorKeyV, key.Reveal(), operatorAAD(tid, id, 1))
	if err != nil {
		return PolicyRef{}, err
	}
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		// Another request may have created it meanwhile: use that one.
		if err := read(tx); err != nil || ok {
			return err
		}
		if _, err := tx.Put(idx, []byte(id), storage.MustNotExist); err != nil {
			return err
		}
		if err := storage.PutJSON(tx, versionKey(tid, id, 1), keyVersion{Version: 1, Operator: blob, CreatedAt: now}, storage.MustNotExist); err != nil {
			return err
		}
		if err := storage.PutJSON(tx, policyKey(tid, id), p, storage.MustNotExist); err != nil {
			return err
		}
		ref = p.Ref()
		return s.audit.RecordTx(ctx, tx, audit.Event{TenantID: tid, Actor: systemActor, Action: actionDefault, Target: id,
			Result: audit.Success, Reason: fmt.Sprintf("service-managed default policy of the %s workload", w)})
	})
	return ref, err
}
