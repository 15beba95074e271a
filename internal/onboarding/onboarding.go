// Package onboarding owns the Customer Key Onboarding Service: onboarding
// requests in the modes Validate, Prepare and Enable for the scenarios MDEP
// and EXO, the validation rules they run (MandatoryRetentionPeriodState,
// SubscriptionInRequestOrganization, VaultExistsinSubscription, RecoveryLevel,
// KeyNeverExpires, KeyAccessPermissions and the others of the setup guide),
// the record of which scenarios a tenant has enabled, and the legacy path
// (government tenants, Managed HSM, SharePoint/OneDrive) on which two
// different operator administrators approve a request.
//
// It owns the storage prefix "onboarding/" and records every request and
// every enablement in the audit log of the organization, in the same
// transaction. It imports errkind, the storage port, audit and resourceid,
// and of its own level the domain packages directory (Caller, Tenant, role
// and application ids, the Customer Key service plan), resources
// (Subscription, Feature and the mandatory retention feature's name), vault
// (Vault, Key, RecoveryLevel) and rbac (Principal and the action names). It
// reads and changes their state only through the small interfaces Directory,
// Resources, Vaults and RBAC declared here, which the real services satisfy.
// It must not import net/http or any storage implementation.
package onboarding

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/rbac"
	"github.com/customerkey/customerkey/internal/resourceid"
	"github.com/customerkey/customerkey/internal/resources"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/vault"
)

// Scenario is the workload a request onboards.
type Scenario string

// Scenarios. SPO is reachable only by the legacy path.
const (
	MDEP Scenario = "MDEP" // Customer Key for multiple workloads (M365DataAtRestEncryption)
	EXO  Scenario = "EXO"  // Customer Key for Exchange
	SPO  Scenario = "SPO"  // SharePoint and OneDrive (legacy path only)
)

// ParseScenario accepts MDEP and EXO in any case.
func ParseScenario(s string) (Scenario, error) {
	for _, sc := range []Scenario{MDEP, EXO} {
		if strings.EqualFold(strings.TrimSpace(s), string(sc)) {
			return sc, nil
		}
	}
	return "", errkind.Errorf(errkind.Invalid,
		"the scenario %q is not supported by the onboarding service; use MDEP (multiple workloads) or EXO (Exchange). "+
			"SharePoint/OneDrive, government tenants and Managed HSM use the legacy path (customerkey onboarding legacy-request)", s)
}

// Mode is what a request does besides validating.
type Mode string

// Modes.
const (
	Validate Mode = "Validate" // read-only, repeatable
	Prepare  Mode = "Prepare"  // registers the mandatory retention period on both subscriptions
	Enable   Mode = "Enable"   // enables the scenario when every rule passes
)

// ParseMode accepts the modes in any case.
func ParseMode(s string) (Mode, error) {
	for _, m := range []Mode{Validate, Prepare, Enable} {
		if strings.EqualFold(strings.TrimSpace(s), string(m)) {
			return m, nil
		}
	}
	return "", errkind.Errorf(errkind.Invalid, "the onboarding mode %q is not known; use Validate, Prepare or Enable", s)
}

// Results of ValidationResult and EnablementResult.
const (
	Success       = "Success"
	Failed        = "Failed"
	NotApplicable = "NotApplicable" // EnablementResult of Validate and Prepare
)

// Validation is one rule's outcome for one subscription, vault or key.
type Validation struct {
	RuleName      string `json:"RuleName"`
	Scope         string `json:"Scope"` // the first five characters of the subscription id (of the organization id for tenant-wide rules)
	ExpectedValue string `json:"ExpectedValue"`
	ActualValue   string `json:"ActualValue"`
	Details       string `json:"Details"`
}

// Request is an onboarding request, with the fields the seed's cmdlet returns.
type Request struct {
	ID                string       `json:"ID"`
	CreatedDate       time.Time    `json:"CreatedDate"`
	Organization      string       `json:"Organization"`
	Scenario          Scenario     `json:"Scenario"`
	Subscription1     string       `json:"Subscription1"`
	VaultName1        string       `json:"VaultName1"`
	KeyName1          string       `json:"KeyName1"`
	Subscription2     string       `json:"Subscription2"`
	VaultName2        string       `json:"VaultName2"`
	KeyName2          string       `json:"KeyName2"`
	KeyIdentifier1    string       `json:"KeyIdentifier1,omitempty"`
	KeyIdentifier2    string       `json:"KeyIdentifier2,omitempty"`
	OnboardingMode    Mode         `json:"OnboardingMode"`
	ValidationResult  string       `json:"ValidationResult"`
	EnablementResult  string       `json:"EnablementResult"`
	PassedValidations []Validation `json:"PassedValidations"`
	FailedValidations []Validation `json:"FailedValidations"`
	Messages          []string     `json:"Messages,omitempty"`
}

// Spec is what a caller asks for; strings as given on the wire.
type Spec struct {
	Organization, Scenario, Mode        string
	Subscription1, VaultName1, KeyName1 string
	Subscription2, VaultName2, KeyName2 string
	KeyIdentifier1, KeyIdentifier2      string
}

// Caller is the verified subject of the token that asks.
type Caller struct {
	TenantID string
	ObjectID string
	Type     string // "user" or "servicePrincipal"
	Name     string // UPN or application id, for the audit log
}

func (c Caller) principal() rbac.Principal {
	t := rbac.PrincipalUser
	if strings.EqualFold(c.Type, "servicePrincipal") {
		t = rbac.PrincipalServicePrincipal
	}
	return rbac.Principal{TenantID: c.TenantID, ObjectID: c.ObjectID, Type: t, Name: c.Name}
}

func (c Caller) directory() directory.Caller {
	return directory.Caller{Actor: c.actor(c.TenantID), TenantID: c.TenantID}
}

func (c Caller) actor(recordTenant string) audit.Actor {
	t := "user"
	if strings.EqualFold(c.Type, "servicePrincipal") {
		t = "servicePrincipal"
	}
	a := audit.Actor{Type: t, ID: c.ObjectID, Name: c.Name}
	if !strings.EqualFold(c.TenantID, recordTenant) {
		a.TenantID = c.TenantID
	}
	return a
}

// Directory is what this package asks of the directory.
// *directory.Directory implements it.
type Directory interface {
	Tenant(ctx context.Context, id string) (directory.Tenant, error)
	RolesOf(ctx context.Context, tid, principalID string) ([]string, error)
	ServicePrincipalByAppID(ctx context.Context, tid, appID string) (directory.ServicePrincipal, error)
	// IsOperator returns nil when c is a Global Administrator of the
	// operator tenant (or the system).
	IsOperator(ctx context.Context, c directory.Caller) error
}

// Resources is what this package asks of the resource manager.
// *resources.Service implements it.
type Resources interface {
	Get(ctx context.Context, id string) (resources.Subscription, error)
	Feature(ctx context.Context, sub, ns, name string) (resources.Feature, error)
	RegisterFeature(ctx context.Context, c directory.Caller, sub, ns, name string) (resources.Feature, error)
}

// Vaults is what this package asks of the key vaults. *vault.Service
// implements it.
type Vaults interface {
	ListBySubscription(ctx context.Context, sub string) ([]vault.Vault, error)
	ByName(ctx context.Context, name string) (vault.Vault, error)
	GetKey(ctx context.Context, vault, name, version string) (vault.Key, error)
}

// RBAC decides management and data actions. *rbac.Service implements it.
type RBAC interface {
	Check(ctx context.Context, p rbac.Principal, action string, scope resourceid.ID) error
	CheckData(ctx context.Context, p rbac.Principal, dataAction string, scope resourceid.ID) error
}

var (
	_ Directory = (*directory.Directory)(nil)
	_ Resources = (*resources.Service)(nil)
	_ Vaults    = (*vault.Service)(nil)
	_ RBAC      = (*rbac.Service)(nil)
)

// Options configures a Service. All but Now and Rand are required.
type Options struct {
	Store     storage.Backend
	Audit     *audit.Log
	Directory Directory
	Resources Resources
	Vaults    Vaults
	RBAC      RBAC
	Now       func() time.Time // default time.Now
	Rand      io.Reader        // default crypto/rand
}

// Service is the onboarding service. It is safe for concurrent use.
type Service struct {
	store storage.Backend
	audit *audit.Log
	dir   Directory
	res   Resources
	kv    Vaults
	rbac  RBAC
	now   func() time.Time
	rand  io.Reader
}

// New returns a Service. It panics when a required option is missing,
// which is a wiring mistake.
func New(o Options) *Service {
	if o.Store == nil || o.Audit == nil || o.Directory == nil || o.Resources == nil || o.Vaults == nil || o.RBAC == nil {
		panic("onboarding: Options.Store, Audit, Directory, Resources, Vaults and RBAC are required")
	}
	s := &Service{store: o.Store, audit: o.Audit, dir: o.Directory, res: o.Resources, kv: o.Vaults, rbac: o.RBAC,
		now: o.Now, rand: o.Rand}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	return s
}

// Storage layout; ids and tenant ids are lowercase GUIDs.
//
//	onboarding/request/{tid}/{id}        -> Request
//	onboarding/scenario/{tid}/{scenario} -> enablement
//	onboarding/legacy/{tid}/{id}         -> LegacyRequest
//	onboarding/legacyid/{id}             -> tid
const (
	pfx         = "onboarding/"
	kRequest    = pfx + "request/"
	kScenario   = pfx + "scenario/"
	kLegacy     = pfx + "legacy/"
	kLegacyByID = pfx + "legacyid/"
)

// enablement records that a tenant enabled a scenario.
type enablement struct {
	Scenario  Scenario    `json:"scenario"`
	EnabledAt time.Time   `json:"enabledAt"`
	RequestID string      `json:"requestId"`
	By        audit.Actor `json:"by"`
	Legacy    bool        `json:"legacy,omitempty"`
}

// Audit actions.
const (
	actionCreate        = "onboarding/requests/create"
	actionEnable        = "onboarding/scenarios/enable"
	actionLegacyCreate  = "onboarding/legacyRequests/create"
	actionLegacyApprove = "onboarding/legacyRequests/approve"
)

var errRequestNotFound = errkind.New(errkind.NotFound, "the onboarding request was not found").WithCode("RequestNotFound")

func (s *Service) newID() (string, error) {
	u, err := uuid.NewRandomFromReader(s.rand)
	if err != nil {
		return "", fmt.Errorf("onboarding: reading random: %w", err)
	}
	return u.String(), nil
}

func lower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// scope is the first five characters of id, as the seed's Scope column.
func scope(id string) string {
	if len(id) > 5 {
		return id[:5]
	}
	return id
}

// authorizeAdmin allows Global Administrators of org, in org.
func (s *Service) authorizeAdmin(ctx context.Context, c Caller, org, action string) error {
	if c.ObjectID == "" || !strings.EqualFold(c.TenantID, org) {
		err := errkind.Errorf(errkind.PermissionDenied,
			"the caller %s of tenant %s cannot act for organization %s: onboarding requests stay inside their own tenant; sign in to %s",
			c.ObjectID, c.TenantID, org, org).WithCode("AuthorizationFailed")
		s.recordDenied(ctx, c, org, action, err)
		return err
	}
	roles, err := s.dir.RolesOf(ctx, org, c.ObjectID)
	if err != nil {
		return err
	}
	if !slices.Contains(roles, directory.GlobalAdministrator.ID) {
		err := errkind.Errorf(errkind.PermissionDenied,
			"the caller %s needs the directory role Global Administrator in organization %s to use the onboarding service (customerkey directory-role assign --role \"Global Administrator\" --principal-id %s)",
			c.ObjectID, org, c.ObjectID).WithCode("AuthorizationFailed")
		s.recordDenied(ctx, c, org, action, err)
		return err
	}
	return nil
}

// recordDenied audits a refusal in org's log, when org is a tenant.
func (s *Service) recordDenied(ctx context.Context, c Caller, org, action string, why error) {
	if _, err := s.dir.Tenant(ctx, org); err != nil {
		return
	}
	_ = s.audit.Record(ctx, audit.Event{TenantID: org, Actor: c.actor(org), Action: action, Target: org,
		Result: audit.Denied, Reason: errkind.Public(why)})
}

// checkOrg normalizes and checks an organization id.
func checkOrg(org string) (string, error) {
	org = lower(org)
	if !directory.IsGUID(org) {
		return "", errkind.Errorf(errkind.Invalid, "the organization %q is not a tenant id (a GUID such as abcd1234-abcd-efgh-hijk-abcdef123456)", org)
	}
	return org, nil
}

// Get returns one of org's requests. Requests of another tenant are not
// found.
func (s *Service) Get(ctx context.Context, c Caller, org, id string) (Request, error) {
	org, err := checkOrg(org)
	if err != nil {
		return Request{}, err
	}
	if !strings.EqualFold(c.TenantID, org) {
		return Request{}, errRequestNotFound
	}
	if err := s.authorizeAdmin(ctx, c, org, "onboarding/requests/read"); err != nil {
		return Request{}, err
	}
	if !directory.IsGUID(lower(id)) {
		return Request{}, errRequestNotFound
	}
	var r Request
	err = s.store.View(ctx, func(tx storage.Tx) error {
		_, err := storage.GetJSON(tx, kRequest+org+"/"+lower(id), &r)
		if errkind.Is(err, errkind.NotFound) {
			return errRequestNotFound
		}
		return err
	})
	return r, err
}

// List returns org's requests, oldest first. Another tenant's caller gets
// an empty list.
func (s *Service) List(ctx context.Context, c Caller, org string) ([]Request, error) {
	org, err := checkOrg(org)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(c.TenantID, org) {
		return []Request{}, nil
	}
	if err := s.authorizeAdmin(ctx, c, org, "onboarding/requests/read"); err != nil {
		return nil, err
	}
	out := []Request{}
	err = s.store.View(ctx, func(tx storage.Tx) error {
		entries, err := tx.List(kRequest+org+"/", "", 0)
		if err != nil {
			return err
		}
		for _, e := range entries {
			var r Request
			if err := jsonUnmarshal(e, &r); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b Request) int {
		if c := a.CreatedDate.Compare(b.CreatedDate); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, err
}

// EnabledScenarios lists the scenarios tenantID has enabled, by the
// onboarding service or the legacy path, in name order.
func (s *Service) EnabledScenarios(ctx context.Context, tenantID string) ([]Scenario, error) {
	tid := lower(tenantID)
	out := []Scenario{}
	if !directory.IsGUID(tid) {
		return out, nil
	}
	err := s.store.View(ctx, func(tx storage.Tx) error {
		entries, err := tx.List(kScenario+tid+"/", "", 0)
		if err != nil {
			return err
		}
		for _, e := range entries {
			var en enablement
			if err := jsonUnmarshal(e, &en); err != nil {
				return err
			}
			out = append(out, en.Scenario)
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

// enableTx records that tid enabled sc (idempotent) and audits it.
func (s *Service) enableTx(ctx context.Context, tx storage.Tx, tid string, sc Scenario, requestID string, by audit.Actor, legacy bool, now time.Time) error {
	key := kScenario + tid + "/" + lower(string(sc))
	reason := "enabled by request " + requestID
	if _, err := tx.Get(key); err == nil {
		reason = "already enabled; request " + requestID
	} else if !errkind.Is(err, errkind.NotFound) {
		return err
	} else if err := storage.PutJSON(tx, key, enablement{Scenario: sc, EnabledAt: now, RequestID: requestID, By: by, Legacy: legacy}, storage.MustNotExist); err != nil {
		return err
	}
	return s.audit.RecordTx(ctx, tx, audit.Event{TenantID: tid, Actor: by, Action: actionEnable, Target: string(sc),
		Result: audit.Success, Reason: reason})
}
