// Package ckapi is customerkey's own control API under /customerkey/v1:
// tenants and licences for the operator, the audit log, onboarding
// requests, data encryption policies (multi-workload, Exchange, SharePoint
// geos) with their assignment and purge, and the workloads they protect
// (mailboxes and messages, sites and files, the general encryption API by
// scope). It translates HTTP to the domain packages and renders their
// errors in one format, {"error":{"code","message"}}. It builds on httpx
// (same level) and must not import storage implementations.
package ckapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/buildinfo"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/resources"
)

// Verifier checks access tokens.
type Verifier interface {
	Verify(ctx context.Context, token string, s identity.Surface) (identity.Principal, error)
}

// Subscriptions creates subscriptions; package resources implements it.
type Subscriptions interface {
	Create(ctx context.Context, c directory.Caller, spec resources.SubscriptionSpec) (resources.Subscription, error)
}

// Options configures the API.
type Options struct {
	Directory     *directory.Directory
	Subscriptions Subscriptions
	Onboarding    Onboarding
	Encryption    Encryption
	Policies      Policies
	Mail          Mail
	Files         Files
	Audit         *audit.Log
	Verifier      Verifier
	Log           *slog.Logger
	// PublicURL names the server in WWW-Authenticate challenges.
	PublicURL string
	// VaultDNSSuffix and VaultResource tell clients where vaults are
	// served and which token audience they take.
	VaultDNSSuffix string
	VaultResource  string
}

// API serves /customerkey/v1.
type API struct{ o Options }

// New returns the API.
func New(o Options) *API { return &API{o: o} }

// Register adds the routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	route := func(pattern string, maxBody int64, h httpx.HandlerFunc) {
		mux.Handle(pattern, httpx.Route{H: h, R: renderer{a.o.PublicURL}, Log: a.o.Log, MaxBody: maxBody, Timeout: 30 * time.Second})
	}
	const small = 64 << 10
	route("POST /customerkey/v1/tenants", small, a.createTenant)
	route("GET /customerkey/v1/tenants", small, a.listTenants)
	route("GET /customerkey/v1/tenants/{tenant}", small, a.getTenant)
	route("POST /customerkey/v1/tenants/{tenant}/licenses", small, a.addLicense)
	route("DELETE /customerkey/v1/tenants/{tenant}/licenses/{sku}", small, a.removeLicense)
	route("GET /customerkey/v1/tenants/{tenant}/audit", small, a.listAudit)
	route("GET /customerkey/v1/skus", small, a.listSKUs)
	route("GET /customerkey/v1/metadata", small, a.metadata)
	route("POST /customerkey/v1/subscriptions", small, a.createSubscription)
	a.registerOnboarding(route)
	a.registerEncryption(route)
	a.registerPolicies(route)
	a.registerMail(route)
	a.registerFiles(route)
	route("/customerkey/v1/", small, func(http.ResponseWriter, *http.Request) error {
		return errkind.New(errkind.NotFound, "no such operation; see the API reference in docs/api.md").WithCode("NotFound")
	})
}

// pathTenant returns the tenant id of the path, resolving a domain name
// when one is given (ids need no lookup: the encryption API's hot path
// reads nothing).
func (a *API) pathTenant(r *http.Request) (string, error) {
	v := r.PathValue("tenant")
	if directory.IsGUID(strings.ToLower(v)) {
		return v, nil
	}
	t, err := a.o.Directory.ResolveTenant(r.Context(), v)
	return t.ID, err
}

// tenantCaller authenticates the request of a route under
// /tenants/{tenant} and names the tenant.
func (a *API) tenantCaller(r *http.Request) (directory.Caller, string, error) {
	p, err := a.principal(r)
	if err != nil {
		return directory.Caller{}, "", err
	}
	tid, err := a.pathTenant(r)
	return p.Caller(), tid, err
}

// principal authenticates the request with a Resource Manager token.
func (a *API) principal(r *http.Request) (identity.Principal, error) {
	tok, ok := httpx.BearerToken(r)
	if !ok {
		return identity.Principal{}, errkind.New(errkind.Unauthenticated, "the request has no bearer token; sign in with `customerkey login` or send Authorization: Bearer <token>")
	}
	return a.o.Verifier.Verify(r.Context(), tok, identity.ResourceManager)
}

// Tenant is a tenant as this API shows it.
type Tenant struct {
	TenantID      string    `json:"tenantId"`
	DisplayName   string    `json:"displayName"`
	DefaultDomain string    `json:"defaultDomain"`
	Licenses      []License `json:"licenses"`
	Operator      bool      `json:"operator,omitempty"`
	CreatedAt     time.Time `json:"createdDateTime"`
	// CustomerKeyScenarios are the workloads enabled for Customer Key.
	CustomerKeyScenarios []string `json:"customerKeyScenarios"`
}

// License is a subscribed SKU.
type License struct {
	Name                string   `json:"name"`
	SkuPartNumber       string   `json:"skuPartNumber"`
	SkuID               string   `json:"skuId"`
	PrepaidUnits        int      `json:"prepaidUnits"`
	ServicePlans        []string `json:"servicePlans"`
	QualifiesForCustKey bool     `json:"customerKeyEligible"`
}

func tenantOut(t directory.Tenant) Tenant {
	out := Tenant{TenantID: t.ID, DisplayName: t.DisplayName, DefaultDomain: t.DefaultDomain, Licenses: []License{},
		Operator: t.Operator, CreatedAt: t.CreatedAt, CustomerKeyScenarios: []string{}}
	for _, l := range t.Licenses {
		out.Licenses = append(out.Licenses, licenseOut(l.SKU, l.PrepaidUnits))
	}
	return out
}

func licenseOut(k directory.SKU, units int) License {
	l := License{Name: k.Name, SkuPartNumber: k.PartNumber, SkuID: k.ID, PrepaidUnits: units, ServicePlans: []string{}}
	for _, p := range k.ServicePlans {
		l.ServicePlans = append(l.ServicePlans, p.Name)
		if p.ID == directory.CustomerKeyPlan.ID {
			l.QualifiesForCustKey = true
		}
	}
	return l
}

type createTenantIn struct {
	DisplayName string   `json:"displayName"`
	Domain      string   `json:"domain,omitempty"`
	Licenses    []string `json:"licenses,omitempty"`
}

// CreatedTenant is the answer to a tenant creation: the only time the
// administrator's password and the automation app's secret are shown.
type CreatedTenant struct {
	TenantID      string      `json:"tenantId"`
	DefaultDomain string      `json:"defaultDomain"`
	GlobalAdmin   GlobalAdmin `json:"globalAdmin"`
	AdminApp      AdminApp    `json:"adminApp"`
}

// GlobalAdmin is the tenant's first Global Administrator.
type GlobalAdmin struct {
	UserPrincipalName string `json:"userPrincipalName"`
	Password          string `json:"password"`
}

// AdminApp is the tenant's automation application.
type AdminApp struct {
	ClientID     string `json:"clientId"`
	ClientSecret string `json:"clientSecret"`
}

func (a *API) createTenant(w http.ResponseWriter, r *http.Request) error {
	p, err := a.principal(r)
	if err != nil {
		return err
	}
	var in createTenantIn
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	pr, err := a.o.Directory.ProvisionTenant(r.Context(), p.Caller(),
		directory.TenantSpec{DisplayName: in.DisplayName, Domain: in.Domain, Licenses: in.Licenses})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/customerkey/v1/tenants/"+pr.Tenant.ID)
	return httpx.JSON(w, http.StatusCreated, CreatedTenant{
		TenantID: pr.Tenant.ID, DefaultDomain: pr.Tenant.DefaultDomain,
		GlobalAdmin: GlobalAdmin{UserPrincipalName: pr.Admin.UserPrincipalName, Password: pr.AdminPassword.Reveal()},
		AdminApp:    AdminApp{ClientID: pr.AdminApp.AppID, ClientSecret: pr.ClientSecret.Reveal()},
	})
}

func (a *API) listTenants(w http.ResponseWriter, r *http.Request) error {
	p, err := a.principal(r)
	if err != nil {
		return err
	}
	ts, err := a.o.Directory.Tenants(r.Context(), p.Caller())
	if err != nil {
		return err
	}
	out := make([]Tenant, 0, len(ts))
	for _, t := range ts {
		out = append(out, tenantOut(t))
	}
	return httpx.JSON(w, http.StatusOK, map[string][]Tenant{"value": out})
}

// readTenant lets the operator read any tenant and anyone read their own.
// The tenant may be named by id or by domain, so it is resolved before the
// caller's own tenant is compared with it.
func (a *API) readTenant(r *http.Request, p identity.Principal) (directory.Tenant, error) {
	t, err := a.o.Directory.ResolveTenant(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return t, err
	}
	if t.ID != p.TenantID {
		if err := a.o.Directory.IsOperator(r.Context(), p.Caller()); err != nil {
			return directory.Tenant{}, err
		}
	}
	return t, nil
}

func (a *API) getTenant(w http.ResponseWriter, r *http.Request) error {
	p, err := a.principal(r)
	if err != nil {
		return err
	}
	t, err := a.readTenant(r, p)
	if err != nil {
		return err
	}
	out := tenantOut(t)
	scenarios, err := a.o.Onboarding.EnabledScenarios(r.Context(), t.ID)
	if err != nil {
		return err
	}
	for _, sc := range scenarios {
		out.CustomerKeyScenarios = append(out.CustomerKeyScenarios, string(sc))
	}
	return httpx.JSON(w, http.StatusOK, out)
}

func (a *API) addLicense(w http.ResponseWriter, r *http.Request) error {
	p, err := a.principal(r)
	if err != nil {
		return err
	}
	var in struct {
		SKU string `json:"sku"`
	}
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	t, err := a.o.Directory.AddLicense(r.Context(), p.Caller(), r.PathValue("tenant"), in.SKU)
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, tenantOut(t))
}

func (a *API) removeLicense(w http.ResponseWriter, r *http.Request) error {
	p, err := a.principal(r)
	if err != nil {
		return err
	}
	t, err := a.o.Directory.RemoveLicense(r.Context(), p.Caller(), r.PathValue("tenant"), r.PathValue("sku"))
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, tenantOut(t))
}

func (a *API) listSKUs(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.principal(r); err != nil {
		return err
	}
	out := make([]License, 0, len(directory.SKUs))
	for _, k := range directory.SKUs {
		out = append(out, licenseOut(k, 0))
	}
	return httpx.JSON(w, http.StatusOK, map[string][]License{"value": out})
}

var errAuditDenied = errkind.New(errkind.PermissionDenied, "only the operator and the tenant's Global Administrators can read its audit log").WithCode("Forbidden")

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) error {
	p, err := a.principal(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	t, err := a.o.Directory.ResolveTenant(ctx, r.PathValue("tenant"))
	if err != nil {
		return err
	}
	if a.o.Directory.IsOperator(ctx, p.Caller()) != nil {
		if t.ID != p.TenantID {
			return errAuditDenied
		}
		roles, err := a.o.Directory.RolesOf(ctx, t.ID, p.ObjectID)
		if err != nil {
			return err
		}
		if !slices.Contains(roles, directory.GlobalAdministrator.ID) {
			return errAuditDenied
		}
	}
	top := audit.MaxPage
	if s := r.URL.Query().Get("top"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > audit.MaxPage {
			return errkind.Errorf(errkind.Invalid, "top must be a whole number from 1 to %d", audit.MaxPage)
		}
		top = n
	}
	page, err := a.o.Audit.List(ctx, t.ID, r.URL.Query().Get("pageToken"), top)
	if err != nil {
		return err
	}
	if page.Events == nil {
		page.Events = []audit.Event{}
	}
	return httpx.JSON(w, http.StatusOK, page)
}

// Metadata tells clients how to reach the server's surfaces, as Azure's
// metadata endpoint does; it is public.
type Metadata struct {
	Endpoint       string `json:"endpoint"`
	VaultDNSSuffix string `json:"vaultDnsSuffix"`
	VaultResource  string `json:"vaultResource"`
	Version        string `json:"version"`
}

func (a *API) metadata(w http.ResponseWriter, _ *http.Request) error {
	return httpx.JSON(w, http.StatusOK, Metadata{Endpoint: a.o.PublicURL, VaultDNSSuffix: a.o.VaultDNSSuffix,
		VaultResource: a.o.VaultResource, Version: buildinfo.String()})
}

type createSubscriptionIn struct {
	TenantID    string   `json:"tenantId"`
	DisplayName string   `json:"displayName"`
	Offer       string   `json:"offer"`
	Owners      []string `json:"owners,omitempty"`
}

// Subscription is a created subscription.
type Subscription struct {
	SubscriptionID string `json:"subscriptionId"`
	TenantID       string `json:"tenantId"`
	DisplayName    string `json:"displayName"`
	Offer          string `json:"offer"`
	State          string `json:"state"`
}

// createSubscription is the billing side: the operator creates any offer,
// a tenant's Global Administrator a pay-as-you-go one (resources decides).
func (a *API) createSubscription(w http.ResponseWriter, r *http.Request) error {
	p, err := a.principal(r)
	if err != nil {
		return err
	}
	var in createSubscriptionIn
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	offer := resources.PayAsYouGo
	if in.Offer != "" {
		if offer, err = resources.ParseOffer(in.Offer); err != nil {
			return err
		}
	}
	s, err := a.o.Subscriptions.Create(r.Context(), p.Caller(), resources.SubscriptionSpec{TenantID: in.TenantID,
		DisplayName: in.DisplayName, Offer: offer, Owners: in.Owners})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/subscriptions/"+s.ID)
	return httpx.JSON(w, http.StatusCreated, Subscription{SubscriptionID: s.ID, TenantID: s.TenantID, DisplayName: s.DisplayName,
		Offer: string(s.Offer), State: string(s.State)})
}

// renderer writes {"error":{"code","message"}}, choosing status and code
// from the error kind in this one place.
type renderer struct{ publicURL string }

var codes = map[errkind.Kind]string{
	errkind.Invalid:            "BadRequest",
	errkind.NotFound:           "NotFound",
	errkind.AlreadyExists:      "Conflict",
	errkind.Conflict:           "Conflict",
	errkind.FailedPrecondition: "PreconditionFailed",
	errkind.Unauthenticated:    "InvalidAuthenticationToken",
	errkind.PermissionDenied:   "Forbidden",
	errkind.TooManyRequests:    "TooManyRequests",
	errkind.TooLarge:           "PayloadTooLarge",
	errkind.Unavailable:        "ServiceUnavailable",
	errkind.Internal:           "InternalError",
}

// ErrorBody is this API's error format.
type ErrorBody struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"requestId,omitempty"`
	} `json:"error"`
}

func (rd renderer) RenderError(w http.ResponseWriter, r *http.Request, err error) {
	k := errkind.KindOf(err)
	var body ErrorBody
	body.Error.Code = codes[k]
	// A domain's reason code refines the kind's, except for sign-in
	// failures, whose codes belong to the token service's surface.
	if e, ok := errkind.As(err); ok && e.Code != "" && k != errkind.Internal && k != errkind.Unauthenticated {
		body.Error.Code = e.Code
	}
	body.Error.Message = errkind.Public(err)
	body.Error.RequestID = httpx.RequestID(r.Context())
	if k == errkind.Unauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="`+rd.publicURL+`/organizations/oauth2/v2.0/authorize", resource="`+rd.publicURL+`"`)
	}
	if errors.Is(err, httpx.ErrBodyTooLarge) {
		w.Header().Set("Connection", "close")
	}
	_ = httpx.JSON(w, httpx.Status(k), body)
}
