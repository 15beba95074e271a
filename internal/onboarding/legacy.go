package onboarding

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// Legacy request states.
const (
	Pending  = "Pending"
	Approved = "Approved"
	Rejected = "Rejected"
)

// Reasons for the legacy path.
const (
	ReasonGovernment = "Government"
	ReasonManagedHSM = "ManagedHSM"
	ReasonSharePoint = "SharePoint"
)

// legacyExpiry is the one expiry date the legacy path accepts (besides none).
var legacyExpiry = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// RuleLegacyKey is the rule of the legacy path's FailedValidations.
const RuleLegacyKey = "LegacyKeyAccepted"

// LegacyRequest is a request to onboard by the legacy path: the operator's
// administrators check it by hand and two different ones approve it.
type LegacyRequest struct {
	ID                string       `json:"ID"`
	CreatedDate       time.Time    `json:"CreatedDate"`
	Organization      string       `json:"Organization"`
	Scenario          string       `json:"Scenario"` // MDEP, EXO or SPO
	Reason            string       `json:"Reason"`   // Government, ManagedHSM or SharePoint
	KeyURIs           []string     `json:"KeyURIs"`
	State             string       `json:"State"`     // Pending, Approved or Rejected
	Approvals         []string     `json:"Approvals"` // object ids of the approving operators, in order
	FailedValidations []Validation `json:"FailedValidations"`
}

// LegacySpec is what a tenant's Global Administrator asks for.
type LegacySpec struct {
	Organization, Scenario, Reason string
	KeyURIs                        []string
}

func parseLegacy(spec LegacySpec) (LegacyRequest, error) {
	org, err := checkOrg(spec.Organization)
	if err != nil {
		return LegacyRequest{}, err
	}
	var sc Scenario
	for _, x := range []Scenario{MDEP, EXO, SPO} {
		if strings.EqualFold(strings.TrimSpace(spec.Scenario), string(x)) {
			sc = x
		}
	}
	if sc == "" {
		return LegacyRequest{}, errkind.Errorf(errkind.Invalid, "the scenario %q is not known; use MDEP, EXO or SPO", spec.Scenario)
	}
	var reason string
	for _, x := range []string{ReasonGovernment, ReasonManagedHSM, ReasonSharePoint} {
		if strings.EqualFold(strings.TrimSpace(spec.Reason), x) {
			reason = x
		}
	}
	if reason == "" {
		return LegacyRequest{}, errkind.Errorf(errkind.Invalid,
			"the reason %q is not known; the legacy path is for Government tenants, ManagedHSM keys and SharePoint (SharePoint/OneDrive); everything else uses customerkey onboarding new", spec.Reason)
	}
	if sc == SPO && reason != ReasonSharePoint && reason != ReasonGovernment {
		return LegacyRequest{}, errkind.New(errkind.Invalid, "the scenario SPO goes with the reason SharePoint (or Government)")
	}
	if reason == ReasonSharePoint && sc != SPO {
		return LegacyRequest{}, errkind.New(errkind.Invalid, "the reason SharePoint goes with the scenario SPO")
	}
	uris := make([]string, 0, len(spec.KeyURIs))
	for _, u := range spec.KeyURIs {
		u = strings.TrimSpace(u)
		if slices.ContainsFunc(uris, func(x string) bool { return strings.EqualFold(x, u) }) {
			return LegacyRequest{}, errkind.Errorf(errkind.Invalid, "the key URI %s is given twice; give two different keys", u)
		}
		uris = append(uris, u)
	}
	if len(uris) != 2 {
		return LegacyRequest{}, errkind.Errorf(errkind.Invalid, "give exactly two key URIs, one per subscription (got %d)", len(uris))
	}
	return LegacyRequest{Organization: org, Scenario: string(sc), Reason: reason, KeyURIs: uris, State: Pending,
		Approvals: []string{}, FailedValidations: []Validation{}}, nil
}

// checkLegacyKeys checks that each key exists in a vault of the
// organization and has no expiry or exactly 9999-12-31.
func (s *Service) checkLegacyKeys(ctx context.Context, r LegacyRequest) ([]Validation, error) {
	var failed []Validation
	for _, uri := range r.KeyURIs {
		fail := func(actual, details string) {
			failed = append(failed, Validation{RuleName: RuleLegacyKey, Scope: uri, ExpectedValue: "no expiry, or 9999-12-31",
				ActualValue: actual, Details: details})
		}
		vn, kn, ver, err := ParseKeyIdentifier(uri)
		if err != nil {
			fail("not a key identifier", err.Error())
			continue
		}
		v, err := s.kv.ByName(ctx, vn)
		switch {
		case errkind.Is(err, errkind.NotFound):
			fail("vault not found", "No vault named "+vn+" exists; copy the key's kid (customerkey key show --vault-name VAULT --name KEY)")
			continue
		case err != nil:
			return nil, err
		}
		if !strings.EqualFold(v.TenantID, r.Organization) {
			// Say no more about another tenant's vault than that it isn't ours.
			fail("vault not found", "No vault named "+vn+" exists in the organization")
			continue
		}
		k, err := s.kv.GetKey(ctx, v.Name, kn, ver)
		switch {
		case errkind.Is(err, errkind.NotFound):
			fail("key not found", fmt.Sprintf("Vault %s has no key %s%s", v.Name, kn, versionSuffix(ver)))
			continue
		case err != nil:
			return nil, err
		}
		exp := k.Attributes.Expires
		if exp != nil && !sameDay(*exp, legacyExpiry) {
			fail(expiresActual(exp), fmt.Sprintf("Key %s of vault %s expires on %s; the legacy path accepts only keys without expiry or expiring on 9999-12-31: "+
				"customerkey key update --vault-name %s --name %s --expires 12/31/9999", kn, v.Name, expiresActual(exp), v.Name, kn))
		}
	}
	return failed, nil
}

func sameDay(a, b time.Time) bool {
	a = a.UTC()
	return a.Year() == b.Year() && a.Month() == b.Month() && a.Day() == b.Day()
}

// SubmitLegacy files a legacy onboarding request. The caller must be a
// Global Administrator of the organization. A key that does not exist in
// one of the organization's vaults, or that expires on a date other than
// 9999-12-31, refuses the request (FailedPrecondition) and nothing is stored.
func (s *Service) SubmitLegacy(ctx context.Context, c Caller, spec LegacySpec) (LegacyRequest, error) {
	r, err := parseLegacy(spec)
	if err != nil {
		return LegacyRequest{}, err
	}
	if err := s.authorizeAdmin(ctx, c, r.Organization, actionLegacyCreate); err != nil {
		return LegacyRequest{}, err
	}
	failed, err := s.checkLegacyKeys(ctx, r)
	if err != nil {
		return LegacyRequest{}, err
	}
	if len(failed) > 0 {
		return LegacyRequest{}, legacyRefusal(failed)
	}
	if r.ID, err = s.newID(); err != nil {
		return LegacyRequest{}, err
	}
	r.CreatedDate = s.now().UTC()
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		if err := storage.PutJSON(tx, kLegacy+r.Organization+"/"+r.ID, r, storage.MustNotExist); err != nil {
			return err
		}
		if _, err := tx.Put(kLegacyByID+r.ID, []byte(r.Organization), storage.MustNotExist); err != nil {
			return err
		}
		return s.audit.RecordTx(ctx, tx, audit.Event{TenantID: r.Organization, Actor: c.actor(r.Organization), Action: actionLegacyCreate,
			Target: r.ID, Result: audit.Success, Reason: fmt.Sprintf("%s by the legacy path (%s)", r.Scenario, r.Reason)})
	})
	if err != nil {
		return LegacyRequest{}, err
	}
	return r, nil
}

func legacyRefusal(failed []Validation) error {
	parts := make([]string, len(failed))
	for i, f := range failed {
		parts[i] = f.Scope + ": " + f.Details
	}
	return errkind.Errorf(errkind.FailedPrecondition, "the legacy path cannot accept these keys: %s", strings.Join(parts, "; ")).
		WithCode("KeyNotAccepted")
}

// ApproveLegacy records an operator administrator's approval. Only Global
// Administrators of the operator tenant may approve; an operator who has
// approved already is refused (Conflict), as is a request that is no longer
// Pending. The second approval checks the keys again: if they still pass,
// the request is Approved and the scenario enabled for the organization;
// if not, it is Rejected with the failures in FailedValidations.
func (s *Service) ApproveLegacy(ctx context.Context, c Caller, id string) (LegacyRequest, error) {
	dc := c.directory()
	if c.ObjectID == "" {
		return LegacyRequest{}, errkind.New(errkind.PermissionDenied, "only the operator's Global Administrators can approve legacy onboarding requests")
	}
	if err := s.dir.IsOperator(ctx, dc); err != nil {
		if errkind.Is(err, errkind.PermissionDenied) {
			return LegacyRequest{}, errkind.New(errkind.PermissionDenied,
				"only the operator's Global Administrators can approve legacy onboarding requests").WithCode("AuthorizationFailed")
		}
		return LegacyRequest{}, err
	}
	r, err := s.loadLegacy(ctx, id)
	if err != nil {
		return LegacyRequest{}, err
	}
	if r.State != Pending {
		return LegacyRequest{}, errkind.Errorf(errkind.Conflict, "the legacy request %s is %s, not Pending", r.ID, r.State)
	}
	if slices.ContainsFunc(r.Approvals, func(a string) bool { return strings.EqualFold(a, c.ObjectID) }) {
		return LegacyRequest{}, errkind.Errorf(errkind.Conflict,
			"the operator %s has approved request %s already; a second, different operator administrator must approve", c.ObjectID, r.ID)
	}
	final := len(r.Approvals) >= 1
	var failed []Validation
	if final {
		if failed, err = s.checkLegacyKeys(ctx, r); err != nil {
			return LegacyRequest{}, err
		}
	}
	now := s.now().UTC()
	by := c.actor(r.Organization)
	var out LegacyRequest
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		key := kLegacy + r.Organization + "/" + r.ID
		var cur LegacyRequest
		ver, err := storage.GetJSON(tx, key, &cur)
		if err != nil {
			return err
		}
		// Someone may have approved meanwhile: decide on what is stored.
		if cur.State != Pending || len(cur.Approvals) != len(r.Approvals) {
			return errkind.Errorf(errkind.Conflict, "the legacy request %s changed while approving; try again", r.ID)
		}
		cur.Approvals = append(cur.Approvals, lower(c.ObjectID))
		reason := fmt.Sprintf("approval %d of 2", len(cur.Approvals))
		if final {
			if len(failed) > 0 {
				cur.State, cur.FailedValidations = Rejected, failed
				reason = "rejected: the keys no longer pass"
			} else {
				cur.State = Approved
				reason = "approved by two operators"
			}
		}
		if err := storage.PutJSON(tx, key, cur, ver); err != nil {
			return err
		}
		if err := s.audit.RecordTx(ctx, tx, audit.Event{TenantID: r.Organization, Actor: by, Action: actionLegacyApprove,
			Target: r.ID, Result: audit.Success, Reason: reason}); err != nil {
			return err
		}
		out = cur
		if cur.State == Approved {
			return s.enableTx(ctx, tx, r.Organization, Scenario(cur.Scenario), cur.ID, by, true, now)
		}
		return nil
	})
	return out, err
}

func (s *Service) loadLegacy(ctx context.Context, id string) (LegacyRequest, error) {
	notFound := errkind.New(errkind.NotFound, "the legacy onboarding request was not found").WithCode("RequestNotFound")
	id = lower(id)
	var r LegacyRequest
	if id == "" || strings.Contains(id, "/") {
		return r, notFound
	}
	err := s.store.View(ctx, func(tx storage.Tx) error {
		e, err := tx.Get(kLegacyByID + id)
		if errkind.Is(err, errkind.NotFound) {
			return notFound
		}
		if err != nil {
			return err
		}
		_, err = storage.GetJSON(tx, kLegacy+string(e.Value)+"/"+id, &r)
		return err
	})
	return r, err
}

// LegacyRequests lists org's legacy requests, oldest first: to its Global
// Administrators and to the operator's. Another tenant's caller gets an
// empty list.
func (s *Service) LegacyRequests(ctx context.Context, c Caller, org string) ([]LegacyRequest, error) {
	org, err := checkOrg(org)
	if err != nil {
		return nil, err
	}
	if s.dir.IsOperator(ctx, c.directory()) != nil || c.ObjectID == "" {
		if !strings.EqualFold(c.TenantID, org) {
			return []LegacyRequest{}, nil
		}
		if err := s.authorizeAdmin(ctx, c, org, "onboarding/legacyRequests/read"); err != nil {
			return nil, err
		}
	}
	out := []LegacyRequest{}
	err = s.store.View(ctx, func(tx storage.Tx) error {
		entries, err := tx.List(kLegacy+org+"/", "", 0)
		if err != nil {
			return err
		}
		for _, e := range entries {
			var r LegacyRequest
			if err := jsonUnmarshal(e, &r); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b LegacyRequest) int {
		if c := a.CreatedDate.Compare(b.CreatedDate); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, err
}
