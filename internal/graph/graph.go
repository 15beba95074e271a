// Package graph owns the Microsoft Graph v1.0 subset: organization,
// subscribedSkus, users, applications, service principals and directory
// role definitions and assignments, in Graph's JSON shapes and OData error
// format, so that the Azure CLI, Azure PowerShell and the Graph SDKs can
// drive customerkey's directory. It translates only: every rule and every
// authorization decision stays in package directory, and the caller is the
// verified principal of a Graph-audience token. It imports errkind, httpx,
// identity, directory and secret from this module and must not import a
// storage implementation or another API surface.
package graph

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/secret"
)

// Verifier checks an access token for a surface. It is declared here, by
// its consumer; identity.Service implements it.
type Verifier interface {
	Verify(ctx context.Context, token string, s identity.Surface) (identity.Principal, error)
}

// Directory is what the Graph surface needs of the directory service;
// *directory.Directory implements it. Every method that takes a Caller
// decides itself whether the caller may do it.
type Directory interface {
	Tenant(ctx context.Context, id string) (directory.Tenant, error)
	CanRead(c directory.Caller, tid string) error

	Users(ctx context.Context, c directory.Caller, tid string) ([]directory.User, error)
	User(ctx context.Context, c directory.Caller, tid, idOrUPN string) (directory.User, error)
	CreateUser(ctx context.Context, c directory.Caller, tid string, spec directory.UserSpec) (directory.User, error)

	Application(ctx context.Context, appID string) (directory.Application, error)
	Applications(ctx context.Context, c directory.Caller, tid string) ([]directory.Application, error)
	ApplicationInTenant(ctx context.Context, c directory.Caller, tid, id string) (directory.Application, error)
	CreateApplication(ctx context.Context, c directory.Caller, tid string, spec directory.AppSpec) (directory.Application, directory.ServicePrincipal, error)
	AddPassword(ctx context.Context, c directory.Caller, tid, id, displayName string, lifetime time.Duration) (directory.PasswordCredential, secret.String, error)
	RemovePassword(ctx context.Context, c directory.Caller, tid, id, keyID string) error

	ServicePrincipals(ctx context.Context, c directory.Caller, tid string) ([]directory.ServicePrincipal, error)
	ServicePrincipal(ctx context.Context, c directory.Caller, tid, id string) (directory.ServicePrincipal, error)
	ServicePrincipalByAppID(ctx context.Context, tid, appID string) (directory.ServicePrincipal, error)
	CreateServicePrincipal(ctx context.Context, c directory.Caller, tid, appID string) (directory.ServicePrincipal, error)
	DeleteServicePrincipal(ctx context.Context, c directory.Caller, tid, id string) error

	RoleAssignments(ctx context.Context, c directory.Caller, tid, principalID string) ([]directory.RoleAssignment, error)
	RoleAssignment(ctx context.Context, c directory.Caller, tid, id string) (directory.RoleAssignment, error)
	AssignRole(ctx context.Context, c directory.Caller, tid, roleID, principalID string) (directory.RoleAssignment, error)
	RemoveRoleAssignment(ctx context.Context, c directory.Caller, tid, id string) error
}

var _ Directory = (*directory.Directory)(nil)

// Options configures an API.
type Options struct {
	Directory Directory
	Verifier  Verifier
	Log       *slog.Logger // default: discard
	// PublicURL is the server's base URL (https://localhost:8443); it
	// prefixes @odata.context and @odata.nextLink. Empty derives it from
	// each request's Host.
	PublicURL string
	Now       func() time.Time // default time.Now
}

// API serves the Graph subset.
type API struct {
	dir       Directory
	verifier  Verifier
	log       *slog.Logger
	publicURL string
	now       func() time.Time
	render    renderer
}

// New returns an API.
func New(o Options) *API {
	a := &API{dir: o.Directory, verifier: o.Verifier, log: o.Log, publicURL: strings.TrimRight(o.PublicURL, "/"), now: o.Now}
	if a.log == nil {
		a.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.render = renderer{now: a.now, publicURL: a.publicURL}
	return a
}

// Limits per kind of route: reads carry no body worth the name; creates
// carry a few kilobytes at most (Graph itself caps requests at 4 MB, but
// none of our objects comes near it). User creation hashes a password, so
// writes get more time than reads.
const (
	readBody     = 4 << 10
	writeBody    = 64 << 10
	readTimeout  = 15 * time.Second
	writeTimeout = 30 * time.Second
)

// Register adds the Graph routes to mux.
//
// Each path is registered once, without a method, and the method is
// dispatched here, so that a wrong method gets a 405 in Graph's error
// shape rather than the mux's plain text. No pattern starts with a
// wildcard or claims the whole "/v1.0/" subtree: either would conflict
// with the identity surface's "/{tenant}/oauth2/..." patterns on the same
// mux (ServeMux panics on patterns that overlap with neither more
// specific). The one wildcard directly under /v1.0 ("/v1.0/{segment}",
// for alternate keys such as applications(appId='…')) overlaps only with
// two-segment "/{tenant}/word" patterns, which no other surface uses.
func (a *API) Register(mux *http.ServeMux) {
	type r = map[string]httpx.HandlerFunc
	resources := []struct {
		pattern string
		methods r
	}{
		{"/v1.0/organization", r{"GET": a.authed(a.listOrganization)}},
		{"/v1.0/organization/{id}", r{"GET": a.authed(a.getOrganization)}},
		{"/v1.0/subscribedSkus", r{"GET": a.authed(a.listSubscribedSkus)}},
		{"/v1.0/subscribedSkus/{id}", r{"GET": a.authed(a.getSubscribedSku)}},
		{"/v1.0/me", r{"GET": a.authed(a.getMe)}},
		{"/v1.0/users", r{"GET": a.authed(a.listUsers), "POST": a.authed(a.createUser)}},
		{"/v1.0/users/{id}", r{"GET": a.authed(a.getUser)}},
		{"/v1.0/applications", r{"GET": a.authed(a.listApplications), "POST": a.authed(a.createApplication)}},
		{"/v1.0/applications/{id}", r{"GET": a.authed(a.getApplication)}},
		{"/v1.0/applications/{id}/{action}", r{"POST": a.authed(a.applicationAction), "*": otherApplicationAction}},
		{"/v1.0/servicePrincipals", r{"GET": a.authed(a.listServicePrincipals), "POST": a.authed(a.createServicePrincipal)}},
		{"/v1.0/servicePrincipals/{id}", r{"GET": a.authed(a.getServicePrincipal), "DELETE": a.authed(a.deleteServicePrincipal)}},
		{"/v1.0/roleManagement/directory/roleDefinitions", r{"GET": a.authed(a.listRoleDefinitions)}},
		{"/v1.0/roleManagement/directory/roleDefinitions/{id}", r{"GET": a.authed(a.getRoleDefinition)}},
		{"/v1.0/roleManagement/directory/roleAssignments", r{"GET": a.authed(a.listRoleAssignments), "POST": a.authed(a.createRoleAssignment)}},
		{"/v1.0/roleManagement/directory/roleAssignments/{id}", r{"GET": a.authed(a.getRoleAssignment), "DELETE": a.authed(a.deleteRoleAssignment)}},
		// Alternate keys and unknown segments; see keyed.
		{"/v1.0/{segment}", r{"GET": a.authed(a.getKeyed), "DELETE": a.authed(a.deleteKeyed), "*": a.otherKeyed}},
	}
	for _, res := range resources {
		m := methods{routes: map[string]httpx.Route{}}
		for method, h := range res.methods {
			rt := httpx.Route{H: h, R: a.render, Log: a.log, MaxBody: readBody, Timeout: readTimeout}
			if method != http.MethodGet {
				rt.MaxBody, rt.Timeout = writeBody, writeTimeout
			}
			m.routes[method] = rt
			if method != "*" {
				m.allow = append(m.allow, method)
			}
		}
		slices.Sort(m.allow)
		m.refuse = httpx.Route{H: m.methodNotAllowed, R: a.render, Log: a.log, MaxBody: readBody, Timeout: readTimeout}
		mux.Handle(res.pattern, m)
	}
}

// methods dispatches one path by method; "*" takes any method not listed.
type methods struct {
	routes map[string]httpx.Route
	allow  []string
	refuse httpx.Route
}

func (m methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Graph names the request in every response, not only in errors.
	if id := httpx.RequestID(r.Context()); id != "" {
		w.Header().Set("request-id", id)
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	if rt, ok := m.routes[method]; ok {
		rt.ServeHTTP(w, r)
		return
	}
	if rt, ok := m.routes["*"]; ok {
		rt.ServeHTTP(w, r)
		return
	}
	m.refuse.ServeHTTP(w, r)
}

func (m methods) methodNotAllowed(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Allow", strings.Join(m.allow, ", "))
	return &statusError{status: http.StatusMethodNotAllowed, code: "Request_BadRequest",
		msg: "The HTTP method " + r.Method + " is not allowed for this resource; allowed: " + strings.Join(m.allow, ", ") + "."}
}

// authedFunc is a handler that runs for a verified principal.
type authedFunc func(w http.ResponseWriter, r *http.Request, p identity.Principal) error

var errNoToken = errkind.New(errkind.Unauthenticated, "Access token is empty.")

// authed verifies the bearer token for the Graph audience before h runs.
// Which principal may do what is decided by directory, not here.
func (a *API) authed(h authedFunc) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tok, ok := httpx.BearerToken(r)
		if !ok {
			return errNoToken
		}
		p, err := a.verifier.Verify(r.Context(), tok, identity.Graph)
		if err != nil {
			return err
		}
		return h(w, r, p)
	}
}

// base is the URL that prefixes @odata.context and @odata.nextLink.
func (a *API) base(r *http.Request) string {
	if a.publicURL != "" {
		return a.publicURL
	}
	scheme := "https"
	if r.TLS == nil {
		scheme = "http"
	}
	return scheme + "://" + r.Host
}

// context returns the @odata.context of an entity set or of one entity.
func (a *API) context(r *http.Request, fragment string) string {
	return a.base(r) + "/v1.0/$metadata#" + fragment
}

// keyed is a path segment such as applications(appId='…').
type keyed struct {
	set   string // applications or servicePrincipals
	appID string
}

// parseKeyed accepts exactly "<set>(appId='<value>')", where a quote
// inside the value is written twice.
func parseKeyed(seg string) (keyed, bool) {
	set, rest, ok := strings.Cut(seg, "(")
	if !ok || (set != "applications" && set != "servicePrincipals") {
		return keyed{}, false
	}
	lit, ok := strings.CutPrefix(rest, "appId=")
	if !ok {
		return keyed{}, false
	}
	lit, ok = strings.CutSuffix(lit, ")")
	if !ok {
		return keyed{}, false
	}
	v, n, err := scanString(lit, 0)
	if err != nil || n != len(lit) {
		return keyed{}, false
	}
	return keyed{set: set, appID: v}, true
}

func errSegment(seg string) error {
	return errkind.Errorf(errkind.Invalid, "Resource not found for the segment '%s'.", seg).WithCode("BadRequest")
}

func (a *API) getKeyed(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	seg := r.PathValue("segment")
	k, ok := parseKeyed(seg)
	if !ok {
		return errSegment(seg)
	}
	if k.set == "applications" {
		return a.getApplicationByAppID(w, r, p, k.appID)
	}
	sp, err := a.servicePrincipalByAppID(r.Context(), p, k.appID)
	if err != nil {
		return err
	}
	return a.writeServicePrincipal(w, r, http.StatusOK, sp)
}

// otherKeyed answers the methods an alternate key does not support: an
// unknown segment stays a 400 whatever the method, as in Graph.
func (a *API) otherKeyed(w http.ResponseWriter, r *http.Request) error {
	seg := r.PathValue("segment")
	if _, ok := parseKeyed(seg); !ok {
		return errSegment(seg)
	}
	w.Header().Set("Allow", "DELETE, GET")
	return &statusError{status: http.StatusMethodNotAllowed, code: "Request_BadRequest",
		msg: "The HTTP method " + r.Method + " is not allowed for this resource; allowed: DELETE, GET."}
}

func (a *API) deleteKeyed(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	seg := r.PathValue("segment")
	k, ok := parseKeyed(seg)
	if !ok {
		return errSegment(seg)
	}
	if k.set != "servicePrincipals" {
		// Deleting applications is not part of this subset.
		return &statusError{status: http.StatusMethodNotAllowed, code: "Request_BadRequest",
			msg: "Deleting applications is not supported by this server."}
	}
	sp, err := a.servicePrincipalByAppID(r.Context(), p, k.appID)
	if err != nil {
		return err
	}
	if err := a.dir.DeleteServicePrincipal(r.Context(), p.Caller(), p.TenantID, sp.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// invalidID is Graph's answer for an object id that is not a GUID.
func invalidID(id string) error {
	return errkind.Errorf(errkind.Invalid, "Invalid object identifier '%s'.", id)
}

// errNotFound is Graph's answer for an id that names nothing.
func errNotFound(id string) error {
	return errkind.Errorf(errkind.NotFound, "Resource '%s' does not exist or one of its queried reference-property objects are not present.", id)
}

// asNotFound rewords a directory "not found" for id in Graph's words,
// which scripts match on; other errors pass unchanged.
func asNotFound(err error, id string) error {
	if errkind.Is(err, errkind.NotFound) {
		e := errkind.Errorf(errkind.NotFound, "Resource '%s' does not exist or one of its queried reference-property objects are not present.", id)
		e.Err = err
		return e
	}
	return err
}

// decode reads a JSON body strictly (unknown properties are refused, as
// Graph refuses them). When a field's own decoder refused its value, its
// message is more helpful than httpx's generic one, so it is kept.
func decode(r *http.Request, v any) error {
	err := httpx.DecodeJSON(r, v)
	if e, ok := errkind.As(err); ok && e.Err != nil {
		if inner, ok := errkind.As(e.Err); ok && inner.Kind == errkind.Invalid {
			return inner
		}
	}
	return err
}

// odataType lets a body name its type, as Graph's examples do; a body
// naming another type is refused.
type odataType string

func (t odataType) check(want string) error {
	if t != "" && string(t) != "#microsoft.graph."+want {
		return errkind.Errorf(errkind.Invalid, "the @odata.type %q does not match the resource; use #microsoft.graph.%s or leave it out", string(t), want)
	}
	return nil
}
