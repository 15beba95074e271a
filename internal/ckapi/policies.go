package ckapi

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
)

// Policies is the data encryption policy service: multi-workload and
// Exchange policies, the tenant's assignment, SharePoint geo policies and
// purges. Package dep implements it; it authorizes every call itself.
type Policies interface {
	Create(ctx context.Context, c directory.Caller, tenantID string, k dep.Kind, spec dep.Spec) (dep.Policy, error)
	Get(ctx context.Context, c directory.Caller, tenantID string, k dep.Kind, identity string) (dep.Policy, error)
	List(ctx context.Context, c directory.Caller, tenantID string, k dep.Kind) ([]dep.Policy, error)
	Set(ctx context.Context, c directory.Caller, tenantID string, k dep.Kind, identity string, ch dep.Change) (dep.Policy, error)
	Refresh(ctx context.Context, c directory.Caller, tenantID string, k dep.Kind, identity string) (dep.Policy, error)
	Replace(ctx context.Context, c directory.Caller, tenantID string, k dep.Kind, identity string, keyURIs []string) (dep.Policy, error)
	Test(ctx context.Context, c directory.Caller, tenantID string, k dep.Kind, identity string) (dep.TestResult, error)
	Assignment(ctx context.Context, c directory.Caller, tenantID string) (dep.Assignment, error)
	Assign(ctx context.Context, c directory.Caller, tenantID, identity string) (dep.Assignment, error)
	RequestPurge(ctx context.Context, c directory.Caller, tenantID string, k dep.Kind, identity string, req dep.PurgeRequest) (dep.Policy, error)
	ApprovePurge(ctx context.Context, c directory.Caller, tenantID, policyID string) (dep.Policy, error)
	SetRecovery(ctx context.Context, c directory.Caller, tenantID, policyID string, on bool, reason string) (dep.Policy, error)
	RegisterSharePoint(ctx context.Context, c directory.Caller, tenantID string, spec dep.SharePointSpec) (dep.Policy, error)
	SharePointPolicy(ctx context.Context, c directory.Caller, tenantID, geo string) (dep.Policy, error)
	UpdateSharePoint(ctx context.Context, c directory.Caller, tenantID, geo string, t dep.KeyType, keyURI string) (dep.Policy, error)
	RestoreSharePoint(ctx context.Context, c directory.Caller, tenantID string, spec dep.SharePointSpec) (dep.Policy, error)
}

var _ Policies = (*dep.Service)(nil)

// tenantBase is the prefix of every route of a tenant's policies and the
// workloads they protect.
const tenantBase = "/customerkey/v1/tenants/{tenant}"

// policyCollections are the path segments of the two kinds of policy that
// have names (Exchange Online PowerShell's two policy cmdlet families).
var policyCollections = map[dep.Kind]string{dep.M365: "m365-policies", dep.Exchange: "exchange-policies"}

func (a *API) registerPolicies(route func(string, int64, httpx.HandlerFunc)) {
	const small = 64 << 10
	for _, k := range []dep.Kind{dep.M365, dep.Exchange} {
		coll := tenantBase + "/" + policyCollections[k]
		route("POST "+coll, small, a.createPolicy(k))
		route("GET "+coll, small, a.listPolicies(k))
		route("GET "+coll+"/{identity}", small, a.getPolicy(k))
		route("PATCH "+coll+"/{identity}", small, a.setPolicy(k))
		route("POST "+coll+"/{identity}/refresh", small, a.refreshPolicy(k))
		route("POST "+coll+"/{identity}/replace", small, a.replacePolicy(k))
	}
	m365 := tenantBase + "/" + policyCollections[dep.M365]
	route("POST "+m365+"/{identity}/test", small, a.testPolicy)
	route("GET "+tenantBase+"/m365-policy-assignment", small, a.getAssignment)
	route("PUT "+tenantBase+"/m365-policy-assignment", small, a.setAssignment)
	exo := tenantBase + "/" + policyCollections[dep.Exchange]
	route("POST "+exo+"/{identity}/purge-request", small, a.requestExchangePurge)
	route("POST "+exo+"/{identity}/purge-approvals", small, a.approveExchangePurge)
	for _, k := range []dep.Kind{dep.M365, dep.Exchange} {
		coll := tenantBase + "/" + policyCollections[k]
		route("PUT "+coll+"/{identity}/recovery", small, a.setRecovery(k, true))
		route("DELETE "+coll+"/{identity}/recovery", small, a.setRecovery(k, false))
	}

	spo := tenantBase + "/sharepoint/policies"
	route("GET "+spo, small, a.listSharePoint)
	route("GET "+spo+"/{geo}", small, a.getSharePoint)
	route("PUT "+spo+"/{geo}", small, a.registerSharePoint)
	route("PATCH "+spo+"/{geo}", small, a.updateSharePoint)
	route("POST "+spo+"/{geo}/restore", small, a.restoreSharePoint)
	route("POST "+spo+"/{geo}/purge-request", small, a.requestSharePointPurge)
	route("POST "+spo+"/{geo}/purge-approvals", small, a.approveSharePointPurge)
}

// Policy is a multi-workload or Exchange policy as this API shows it, in
// the names of Get-M365DataAtRestEncryptionPolicy and
// Get-DataEncryptionPolicy. It carries key identifiers, never a key.
type Policy struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Kind        string `json:"kind"`
	Enabled     bool   `json:"enabled"`
	// AzureKeyIDs are the root keys as given (versionless).
	AzureKeyIDs []string `json:"azureKeyIds"`
	// RootKeys are the versioned root keys that wrap the current policy
	// key version.
	RootKeys     []string  `json:"rootKeys"`
	KeyVersion   int       `json:"keyVersion"`
	State        string    `json:"state"`
	CreatedTime  time.Time `json:"createdTime"`
	ModifiedTime time.Time `json:"modifiedTime"`
	// Recovery is set while the operator serves the policy from its
	// availability key because the customer lost both root keys.
	Recovery *PolicyRecovery `json:"recovery,omitempty"`
}

// PolicyRecovery says since when, by whom and why a policy is in recovery.
type PolicyRecovery struct {
	Reason string `json:"reason"`
	By     string `json:"by"`
	Since  string `json:"since"`
}

// ExchangePolicy is an Exchange policy: a Policy and its purge status.
type ExchangePolicy struct {
	Policy
	PurgeStatus
}

// PurgeStatus is where a purgeable policy (Exchange, SharePoint) stands
// on the way to a permanent data purge.
type PurgeStatus struct {
	PermanentDataPurgeRequested bool            `json:"permanentDataPurgeRequested"`
	PermanentDataPurgeReason    string          `json:"permanentDataPurgeReason"`
	PermanentDataPurgeContact   string          `json:"permanentDataPurgeContact"`
	PurgeRequestedTime          *time.Time      `json:"purgeRequestedTime,omitempty"`
	PurgeApprovals              []PurgeApproval `json:"purgeApprovals"`
	PurgedTime                  *time.Time      `json:"purgedTime,omitempty"`
}

// PurgeApproval is one operator administrator's approval of a purge.
type PurgeApproval struct {
	ApprovedBy   string    `json:"approvedBy"`
	ApprovedTime time.Time `json:"approvedTime"`
}

// SharePointPolicy is a geo's policy as Get-SPODataEncryptionPolicy shows
// it: its pinned key versions, its state and, while Registering or
// Rolling, the share of the geo's sites already on its key.
type SharePointPolicy struct {
	ID              string    `json:"id"`
	Geo             string    `json:"geo"`
	PrimaryKeyID    string    `json:"primaryKeyId"`
	SecondaryKeyID  string    `json:"secondaryKeyId"`
	State           string    `json:"state"`
	PercentComplete *int      `json:"percentComplete,omitempty"`
	KeyVersion      int       `json:"keyVersion"`
	CreatedTime     time.Time `json:"createdTime"`
	ModifiedTime    time.Time `json:"modifiedTime"`
	PurgeStatus
}

// Assignment is the tenant's assigned multi-workload policy; null when
// none is and the workloads use service-managed keys.
type Assignment struct {
	DataEncryptionPolicy *Policy `json:"dataEncryptionPolicy"`
}

// PolicyTest is the outcome of Test-M365DataAtRestEncryptionPolicy.
type PolicyTest struct {
	PolicyID string `json:"policyId"`
	Name     string `json:"name"`
	// Success: every root key passed.
	Success bool            `json:"success"`
	Results []KeyTestResult `json:"results"`
}

// KeyTestResult is one root key's test: unwrapping the stored copy of the
// policy key, then wrapping and unwrapping a test value, as the workload.
type KeyTestResult struct {
	// KeyURI is the key as the policy names it; KeyID the version tested.
	KeyURI string `json:"keyUri"`
	KeyID  string `json:"keyId"`
	// Result is Success or Failed; Failure classifies a failure
	// (AccessDenied, KeyDisabled, KeyExpired, NotFound, Transient) and
	// Message says what to fix.
	Result  string `json:"result"`
	Failure string `json:"failure,omitempty"`
	Message string `json:"message,omitempty"`
}

func policyOut(p dep.Policy) Policy {
	out := Policy{ID: p.ID, Name: p.Name, Description: p.Description, Kind: string(p.Kind), Enabled: p.Enabled,
		AzureKeyIDs: nonNil(p.KeyURIs), RootKeys: nonNil(p.RootKeyIDs), KeyVersion: p.KeyVersion, State: string(p.State),
		CreatedTime: p.CreatedAt.UTC(), ModifiedTime: p.UpdatedAt.UTC()}
	if r := p.Recovery; r != nil {
		by := r.By.Name
		if by == "" {
			by = r.By.ID
		}
		out.Recovery = &PolicyRecovery{Reason: r.Reason, By: by, Since: r.Since}
	}
	return out
}

// policyView is p in the shape of its kind.
func policyView(p dep.Policy) any {
	switch p.Kind {
	case dep.Exchange:
		return ExchangePolicy{Policy: policyOut(p), PurgeStatus: purgeOut(p)}
	case dep.SharePoint:
		return sharePointOut(p)
	}
	return policyOut(p)
}

func purgeOut(p dep.Policy) PurgeStatus {
	s := PurgeStatus{PermanentDataPurgeRequested: p.PermanentDataPurgeRequested, PermanentDataPurgeReason: p.PermanentDataPurgeReason,
		PermanentDataPurgeContact: p.PermanentDataPurgeContact, PurgeRequestedTime: utcPtr(p.PurgeRequestedAt),
		PurgeApprovals: make([]PurgeApproval, 0, len(p.PurgeApprovals)), PurgedTime: utcPtr(p.PurgedAt)}
	for _, ap := range p.PurgeApprovals {
		by := ap.By.Name
		if by == "" {
			by = ap.By.ID
		}
		s.PurgeApprovals = append(s.PurgeApprovals, PurgeApproval{ApprovedBy: by, ApprovedTime: ap.At.UTC()})
	}
	return s
}

func sharePointOut(p dep.Policy) SharePointPolicy {
	out := SharePointPolicy{ID: p.ID, Geo: p.Geo, State: string(p.State), PercentComplete: p.PercentComplete, KeyVersion: p.KeyVersion,
		CreatedTime: p.CreatedAt.UTC(), ModifiedTime: p.UpdatedAt.UTC(), PurgeStatus: purgeOut(p)}
	// A geo's policy pins exactly a primary and a secondary key version.
	if len(p.KeyURIs) == 2 {
		out.PrimaryKeyID, out.SecondaryKeyID = p.KeyURIs[0], p.KeyURIs[1]
	}
	return out
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// nonNil makes an absent list an empty JSON array.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// policyLocation is the path of a created policy.
func policyLocation(tenantID string, k dep.Kind, id string) string {
	return "/customerkey/v1/tenants/" + url.PathEscape(tenantID) + "/" + policyCollections[k] + "/" + id
}

type createPolicyIn struct {
	Name        string   `json:"name"`
	AzureKeyIDs []string `json:"azureKeyIds"`
	Description string   `json:"description"`
	Enabled     *bool    `json:"enabled"`
}

// createPolicy is New-M365DataAtRestEncryptionPolicy and
// New-DataEncryptionPolicy.
func (a *API) createPolicy(k dep.Kind) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, tid, err := a.tenantCaller(r)
		if err != nil {
			return err
		}
		var in createPolicyIn
		if err := httpx.DecodeJSON(r, &in); err != nil {
			return err
		}
		p, err := a.o.Policies.Create(r.Context(), c, tid, k,
			dep.Spec{Name: in.Name, Description: in.Description, KeyURIs: in.AzureKeyIDs, Enabled: in.Enabled})
		if err != nil {
			return err
		}
		w.Header().Set("Location", policyLocation(p.TenantID, k, p.ID))
		return httpx.JSON(w, http.StatusCreated, policyView(p))
	}
}

func (a *API) listPolicies(k dep.Kind) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, tid, err := a.tenantCaller(r)
		if err != nil {
			return err
		}
		ps, err := a.o.Policies.List(r.Context(), c, tid, k)
		if err != nil {
			return err
		}
		return writePolicies(w, ps)
	}
}

func writePolicies(w http.ResponseWriter, ps []dep.Policy) error {
	out := make([]any, 0, len(ps))
	for _, p := range ps {
		out = append(out, policyView(p))
	}
	return httpx.JSON(w, http.StatusOK, map[string][]any{"value": out})
}

func (a *API) getPolicy(k dep.Kind) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, tid, err := a.tenantCaller(r)
		if err != nil {
			return err
		}
		p, err := a.o.Policies.Get(r.Context(), c, tid, k, r.PathValue("identity"))
		if err != nil {
			return err
		}
		return httpx.JSON(w, http.StatusOK, policyView(p))
	}
}

type setPolicyIn struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Enabled     *bool   `json:"enabled"`
}

// setPolicy is Set-… -Name, -Description and -Enabled: only the fields
// present change.
func (a *API) setPolicy(k dep.Kind) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, tid, err := a.tenantCaller(r)
		if err != nil {
			return err
		}
		var in setPolicyIn
		if err := httpx.DecodeJSON(r, &in); err != nil {
			return err
		}
		if in.Name == nil && in.Description == nil && in.Enabled == nil {
			return errkind.New(errkind.Invalid,
				"nothing to change: give name, description or enabled (new key versions: POST …/refresh; other keys: POST …/replace)").
				WithCode("BadRequest")
		}
		p, err := a.o.Policies.Set(r.Context(), c, tid, k, r.PathValue("identity"),
			dep.Change{Name: in.Name, Description: in.Description, Enabled: in.Enabled})
		if err != nil {
			return err
		}
		return httpx.JSON(w, http.StatusOK, policyView(p))
	}
}

func (a *API) refreshPolicy(k dep.Kind) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, tid, err := a.tenantCaller(r)
		if err != nil {
			return err
		}
		p, err := a.o.Policies.Refresh(r.Context(), c, tid, k, r.PathValue("identity"))
		if err != nil {
			return err
		}
		return httpx.JSON(w, http.StatusOK, policyView(p))
	}
}

func (a *API) replacePolicy(k dep.Kind) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, tid, err := a.tenantCaller(r)
		if err != nil {
			return err
		}
		var in struct {
			AzureKeyIDs []string `json:"azureKeyIds"`
		}
		if err := httpx.DecodeJSON(r, &in); err != nil {
			return err
		}
		p, err := a.o.Policies.Replace(r.Context(), c, tid, k, r.PathValue("identity"), in.AzureKeyIDs)
		if err != nil {
			return err
		}
		return httpx.JSON(w, http.StatusOK, policyView(p))
	}
}

// testPolicy answers 200 whatever the keys' results: the test ran, and
// its results say which key failed and why.
func (a *API) testPolicy(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	res, err := a.o.Policies.Test(r.Context(), c, tid, dep.M365, r.PathValue("identity"))
	if err != nil {
		return err
	}
	out := PolicyTest{PolicyID: res.PolicyID, Name: res.Name, Success: res.Success, Results: make([]KeyTestResult, 0, len(res.Keys))}
	for _, k := range res.Keys {
		out.Results = append(out.Results, KeyTestResult{KeyURI: k.KeyURI, KeyID: k.KeyID, Result: k.Result, Failure: k.Failure, Message: k.Message})
	}
	return httpx.JSON(w, http.StatusOK, out)
}

func (a *API) getAssignment(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	as, err := a.o.Policies.Assignment(r.Context(), c, tid)
	if err != nil {
		return err
	}
	return a.writeAssignment(w, r, c, tid, as)
}

// writeAssignment shows the assigned policy in full, read after the
// assignment.
func (a *API) writeAssignment(w http.ResponseWriter, r *http.Request, c directory.Caller, tid string, as dep.Assignment) error {
	var out Assignment
	if as.PolicyID != "" {
		p, err := a.o.Policies.Get(r.Context(), c, tid, dep.M365, as.PolicyID)
		if err != nil {
			return err
		}
		po := policyOut(p)
		out.DataEncryptionPolicy = &po
	}
	return httpx.JSON(w, http.StatusOK, out)
}

func (a *API) setAssignment(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	var in struct {
		DataEncryptionPolicy string `json:"dataEncryptionPolicy"`
	}
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	as, err := a.o.Policies.Assign(r.Context(), c, tid, in.DataEncryptionPolicy)
	if err != nil {
		return err
	}
	return a.writeAssignment(w, r, c, tid, as)
}

type purgeRequestIn struct {
	Reason  string `json:"reason"`
	Contact string `json:"contact"`
	Force   bool   `json:"force"`
}

// requestPurge is Set-DataEncryptionPolicy -PermanentDataPurgeRequested
// and its SharePoint counterpart; identity is a policy's name or id, or a
// geo.
func (a *API) requestPurge(w http.ResponseWriter, r *http.Request, k dep.Kind, identity string) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	var in purgeRequestIn
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	p, err := a.o.Policies.RequestPurge(r.Context(), c, tid, k, identity,
		dep.PurgeRequest{Reason: in.Reason, Contact: in.Contact, Force: in.Force})
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, policyView(p))
}

func (a *API) requestExchangePurge(w http.ResponseWriter, r *http.Request) error {
	return a.requestPurge(w, r, dep.Exchange, r.PathValue("identity"))
}

func (a *API) requestSharePointPurge(w http.ResponseWriter, r *http.Request) error {
	return a.requestPurge(w, r, dep.SharePoint, r.PathValue("geo"))
}

// approvePurge records the operator's approval of a requested purge. The
// path names the policy as the customer does (a name, an id or a geo)
// while dep approves by id; so the operator, and only the operator, has it
// resolved first, which also keeps an id of another kind of policy from
// being approved under this path.
func (a *API) approvePurge(w http.ResponseWriter, r *http.Request, resolve func(ctx context.Context, tid string) (dep.Policy, error)) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if err := a.o.Directory.IsOperator(ctx, c); err != nil {
		if errkind.Is(err, errkind.PermissionDenied) {
			return errkind.New(errkind.PermissionDenied, "only the operator's Global Administrators can approve a data purge").
				WithCode("AuthorizationFailed")
		}
		return err
	}
	target, err := resolve(ctx, tid)
	if err != nil {
		return err
	}
	p, err := a.o.Policies.ApprovePurge(ctx, c, tid, target.ID)
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, policyView(p))
}

type recoveryIn struct {
	Reason string `json:"reason"`
}

// setRecovery puts an Exchange or multi-workload policy into recovery (the
// customer lost both root keys and asked the operator for help) or ends
// it. Only the operator may; the path names the policy as the customer
// does, resolved for the operator as for a purge approval.
func (a *API) setRecovery(k dep.Kind, on bool) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, tid, err := a.tenantCaller(r)
		if err != nil {
			return err
		}
		ctx := r.Context()
		if err := a.o.Directory.IsOperator(ctx, c); err != nil {
			if errkind.Is(err, errkind.PermissionDenied) {
				return errkind.New(errkind.PermissionDenied, "only the operator's Global Administrators can put a policy into recovery or end it").
					WithCode("AuthorizationFailed")
			}
			return err
		}
		var in recoveryIn
		if on {
			if err := httpx.DecodeJSON(r, &in); err != nil {
				return err
			}
		}
		target, err := a.o.Policies.Get(ctx, directory.System, tid, k, r.PathValue("identity"))
		if err != nil {
			return err
		}
		p, err := a.o.Policies.SetRecovery(ctx, c, tid, target.ID, on, in.Reason)
		if err != nil {
			return err
		}
		return httpx.JSON(w, http.StatusOK, policyView(p))
	}
}

func (a *API) approveExchangePurge(w http.ResponseWriter, r *http.Request) error {
	return a.approvePurge(w, r, func(ctx context.Context, tid string) (dep.Policy, error) {
		return a.o.Policies.Get(ctx, directory.System, tid, dep.Exchange, r.PathValue("identity"))
	})
}

func (a *API) approveSharePointPurge(w http.ResponseWriter, r *http.Request) error {
	return a.approvePurge(w, r, func(ctx context.Context, tid string) (dep.Policy, error) {
		return a.o.Policies.SharePointPolicy(ctx, directory.System, tid, r.PathValue("geo"))
	})
}

func (a *API) listSharePoint(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	ps, err := a.o.Policies.List(r.Context(), c, tid, dep.SharePoint)
	if err != nil {
		return err
	}
	return writePolicies(w, ps)
}

func (a *API) getSharePoint(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	p, err := a.o.Policies.SharePointPolicy(r.Context(), c, tid, r.PathValue("geo"))
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, sharePointOut(p))
}

type keyPairIn struct {
	PrimaryKeyID   string `json:"primaryKeyId"`
	SecondaryKeyID string `json:"secondaryKeyId"`
}

// registerSharePoint is Register-SPODataEncryptionPolicy; the policy
// answered is Registering until the geo's sites are on its key.
func (a *API) registerSharePoint(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	var in keyPairIn
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	p, err := a.o.Policies.RegisterSharePoint(r.Context(), c, tid,
		dep.SharePointSpec{Geo: r.PathValue("geo"), PrimaryKeyURI: in.PrimaryKeyID, SecondaryKeyURI: in.SecondaryKeyID})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/customerkey/v1/tenants/"+url.PathEscape(p.TenantID)+"/sharepoint/policies/"+p.Geo)
	return httpx.JSON(w, http.StatusCreated, sharePointOut(p))
}

// updateSharePoint is Update-SPODataEncryptionPolicy -KeyType.
func (a *API) updateSharePoint(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	var in struct {
		KeyType string `json:"keyType"`
		KeyID   string `json:"keyId"`
	}
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	kt, err := dep.ParseKeyType(in.KeyType)
	if err != nil {
		return err
	}
	p, err := a.o.Policies.UpdateSharePoint(r.Context(), c, tid, r.PathValue("geo"), kt, in.KeyID)
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, sharePointOut(p))
}

// restoreSharePoint is the operator's Restore-SPODataEncryptionPolicy.
func (a *API) restoreSharePoint(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	var in keyPairIn
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	p, err := a.o.Policies.RestoreSharePoint(r.Context(), c, tid,
		dep.SharePointSpec{Geo: r.PathValue("geo"), PrimaryKeyURI: in.PrimaryKeyID, SecondaryKeyURI: in.SecondaryKeyID})
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, sharePointOut(p))
}
