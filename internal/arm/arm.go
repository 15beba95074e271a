// Package arm is the Azure Resource Manager subset: subscriptions, resource
// groups, providers and features, Microsoft.KeyVault/vaults and
// Microsoft.Authorization role definitions and assignments, in the shapes
// the official arm* Go SDK clients speak. It authenticates every request
// with a Resource Manager token, authorizes it with rbac, translates it to
// the domain packages and renders their errors in ARM's format, once. It
// builds on httpx (same level) and must not import storage implementations.
//
// ARM paths are case-insensitive and their scopes nest (role assignments
// live under any scope), so this package routes by path segments itself
// instead of through http.ServeMux patterns.
package arm

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
	"github.com/customerkey/customerkey/internal/identity"
)

// Verifier checks access tokens.
type Verifier interface {
	Verify(ctx context.Context, token string, s identity.Surface) (identity.Principal, error)
}

// Options configures the API.
type Options struct {
	Verifier      Verifier
	RBAC          Authorizer
	Roles         Roles
	Subscriptions Resources
	Vaults        Vaults
	Log           *slog.Logger
	// PublicURL names the server in challenges.
	PublicURL string
	Now       func() time.Time
}

// API serves the Resource Manager subset.
type API struct {
	o      Options
	routes []route
}

// New returns the API.
func New(o Options) *API {
	if o.Now == nil {
		o.Now = time.Now
	}
	a := &API{o: o}
	a.routes = append(a.routes, a.resourceRoutes()...)
	a.routes = append(a.routes, a.vaultRoutes()...)
	a.routes = append(a.routes, a.authorizationRoutes()...)
	return a
}

// Owns reports whether path belongs to Resource Manager, so that the
// composition root can send it here before any ServeMux sees it.
func Owns(path string) bool {
	// Clients that join "/{scope}" with a scope that starts with a slash
	// send "//subscriptions/…"; ARM serves those too.
	p := strings.ToLower(strings.TrimLeft(path, "/"))
	return p == "subscriptions" || strings.HasPrefix(p, "subscriptions/") ||
		p == "providers" || strings.HasPrefix(p, "providers/")
}

// armHandler serves one matched route for a verified principal.
type armHandler func(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error

// route is one operation: a method, a pattern of path segments where
// "{name}" captures a segment and literals match without regard to case,
// and the api-versions it accepts.
type route struct {
	method   string
	pattern  []string
	versions []string
	maxBody  int64
	h        armHandler
	// scoped routes match pattern at the end of the path; what comes
	// before it is captured as "scope" ("/" when nothing does).
	scoped bool
}

// newRoute builds a route from a pattern such as
// "/subscriptions/{sub}/resourcegroups/{rg}".
func newRoute(method, pattern string, versions []string, h armHandler) route {
	return route{method: method, pattern: strings.Split(strings.Trim(pattern, "/"), "/"), versions: versions, h: h}
}

// match is what a route captured.
type match map[string]string

func (rt route) match(seg []string) (match, bool) {
	m := match{}
	if rt.scoped {
		if len(seg) < len(rt.pattern) {
			return nil, false
		}
		split := len(seg) - len(rt.pattern)
		m["scope"] = "/" + strings.Join(seg[:split], "/")
		seg = seg[split:]
	}
	if len(seg) != len(rt.pattern) {
		return nil, false
	}
	for i, p := range rt.pattern {
		if strings.HasPrefix(p, "{") {
			if seg[i] == "" {
				return nil, false
			}
			m[strings.Trim(p, "{}")] = seg[i]
			continue
		}
		if !strings.EqualFold(p, seg[i]) {
			return nil, false
		}
	}
	return m, true
}

// ServeHTTP finds the route, checks api-version and the token, and runs it.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	seg := strings.Split(strings.Trim(r.URL.EscapedPath(), "/"), "/")
	for i, s := range seg {
		if u, err := pathUnescape(s); err == nil {
			seg[i] = u
		}
	}
	var found *route
	var m match
	var allowed []string // methods of the routes whose path matched
	for i := range a.routes {
		mm, ok := a.routes[i].match(seg)
		if !ok {
			continue
		}
		if !slices.Contains(allowed, a.routes[i].method) {
			allowed = append(allowed, a.routes[i].method)
		}
		if a.routes[i].method == r.Method || (r.Method == http.MethodHead && a.routes[i].method == http.MethodGet) {
			found, m = &a.routes[i], mm
			break
		}
	}
	rt := httpx.Route{R: renderer{a.o.PublicURL}, Log: a.o.Log, Timeout: 30 * time.Second}
	switch {
	case found != nil:
		rt.MaxBody = found.maxBody
		rt.H = func(w http.ResponseWriter, r *http.Request) error {
			if err := checkAPIVersion(r, found.versions); err != nil {
				return err
			}
			p, err := a.principal(r)
			if err != nil {
				return err
			}
			return found.h(w, r, p, m)
		}
	case len(allowed) > 0:
		rt.H = func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			return errkind.Errorf(errkind.Invalid, "The requested HTTP method %s is not supported for this resource; it supports %s.",
				r.Method, strings.Join(allowed, ", ")).WithCode(codeMethodNotAllowed)
		}
	default:
		rt.H = func(http.ResponseWriter, *http.Request) error {
			return errkind.Errorf(errkind.NotFound, "No HTTP resource was found that matches the request URI '%s'.", r.URL.Path).WithCode("InvalidResourceType")
		}
	}
	rt.ServeHTTP(w, r)
}

func (a *API) principal(r *http.Request) (identity.Principal, error) {
	tok, ok := httpx.BearerToken(r)
	if !ok {
		return identity.Principal{}, errkind.New(errkind.Unauthenticated, "Authentication failed. The 'Authorization' header is missing.").WithCode("AuthenticationFailed")
	}
	p, err := a.o.Verifier.Verify(r.Context(), tok, identity.ResourceManager)
	if err != nil {
		return p, errkind.Wrap(errkind.Unauthenticated, errkind.Public(err), err).WithCode("InvalidAuthenticationToken")
	}
	return p, nil
}

func checkAPIVersion(r *http.Request, versions []string) error {
	v := r.URL.Query().Get("api-version")
	if v == "" {
		return errkind.New(errkind.Invalid, "The api-version query parameter (?api-version=) is required for all requests.").WithCode("MissingApiVersionParameter")
	}
	if len(versions) > 0 && !slices.Contains(versions, v) {
		return errkind.Errorf(errkind.Invalid, "The resource type does not support the api-version '%s'. The supported api-versions are '%s'.",
			v, strings.Join(versions, ", ")).WithCode("InvalidApiVersionParameter")
	}
	return nil
}
