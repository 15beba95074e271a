// Package oauthapi is the wire surface of the token service: the OpenID
// Connect discovery document and JWKS, the OAuth 2.0 token and device
// authorization endpoints, the authorization endpoint's sign-in page and
// the device code sign-in page, all in Microsoft Entra ID's shapes so that
// azidentity and MSAL work unchanged. It translates HTTP to identity calls
// and renders every OAuth error in one place, in Entra ID's error shape.
// It imports identity, httpx, errkind, secret and audit from this module;
// it holds no state of its own besides what the browser's cookie carries.
package oauthapi

import (
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/secret"
)

// Per-route limits. Forms are small: a client assertion is the largest
// legitimate field, at about 2 KiB.
const (
	formBody     = 64 << 10
	tokenTimeout = 15 * time.Second
	pageTimeout  = 15 * time.Second
	readTimeout  = 5 * time.Second
)

// serverName is shown on every page.
const serverName = "customerkey"

// handler serves the surface.
type handler struct {
	svc   *identity.Service
	log   *slog.Logger
	oauth oauthRenderer
	page  pageRenderer
}

// Register adds the token service's routes to mux.
func Register(mux *http.ServeMux, svc *identity.Service, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{svc: svc, log: log, oauth: oauthRenderer{svc: svc}, page: pageRenderer{svc: svc}}
	api := func(pattern string, maxBody int64, timeout time.Duration, fn httpx.HandlerFunc) {
		mux.Handle(pattern, withMeta(httpx.Route{H: fn, R: h.oauth, Log: log, MaxBody: maxBody, Timeout: timeout}))
	}
	page := func(pattern string, fn httpx.HandlerFunc) {
		mux.Handle(pattern, withMeta(httpx.Route{H: fn, R: h.page, Log: log, MaxBody: formBody, Timeout: pageTimeout}))
	}
	api("GET /{tenant}/v2.0/.well-known/openid-configuration", 1, readTimeout, h.openIDConfiguration)
	api("GET /{tenant}/discovery/v2.0/keys", 1, readTimeout, h.keys)
	api("POST /{tenant}/oauth2/v2.0/token", formBody, tokenTimeout, h.token)
	api("POST /{tenant}/oauth2/v2.0/devicecode", formBody, tokenTimeout, h.deviceCode)
	page("GET /{tenant}/oauth2/v2.0/authorize", h.authorizeForm)
	page("POST /{tenant}/oauth2/v2.0/authorize", h.authorizeSubmit)
	page("GET /devicelogin", h.deviceLoginForm)
	page("POST /devicelogin", h.deviceLoginSubmit)
}

// withMeta gives the request an id and the client's address when the
// server has not already done so (the app wraps everything in
// httpx.WithRequestID; tests and other embedders may not), because
// throttling and audit records need them.
func withMeta(next http.Handler) http.Handler {
	wrapped := httpx.WithRequestID(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if audit.MetaFrom(r.Context()).RequestID != "" {
			next.ServeHTTP(w, r)
			return
		}
		wrapped.ServeHTTP(w, r)
	})
}

// errDuplicate is Entra ID's answer to a parameter given twice.
func errDuplicate(name string) error {
	return identity.NewError(errkind.Invalid, identity.CodeInvalidRequest, 9000411,
		"The request is not properly formatted. The parameter '"+clip(name)+"' is duplicated.")
}

// parseForm parses a POST form within the route's limit and refuses
// duplicated parameters, which would otherwise be resolved silently (and
// differently by different parsers).
func parseForm(r *http.Request) (url.Values, error) {
	if err := httpx.ParseForm(r); err != nil {
		return nil, err
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			return nil, errDuplicate(k)
		}
	}
	return r.PostForm, nil
}

// query returns the URL query, refusing duplicates.
func query(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, errkind.New(errkind.Invalid, "the query string is malformed").WithCode(identity.CodeInvalidRequest)
	}
	for k, v := range q {
		if len(v) > 1 {
			return nil, errDuplicate(k)
		}
	}
	return q, nil
}

// secretParams must travel in a body, never in a URL, where proxies and
// logs keep them.
var secretParams = []string{"client_secret", "client_assertion", "password", "refresh_token", "code", "device_code", "code_verifier"}

func refuseSecretsInQuery(r *http.Request) error {
	q := r.URL.Query()
	for _, p := range secretParams {
		if q.Has(p) {
			return identity.NewError(errkind.Invalid, identity.CodeInvalidRequest, 900144,
				"The parameter '"+p+"' must be sent in the request body, not in the URL.")
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// openIDConfiguration is the discovery document MSAL reads first. Its
// endpoints name the tenant by id, as Entra ID's do.
func (h *handler) openIDConfiguration(w http.ResponseWriter, r *http.Request) error {
	t, err := h.svc.ResolveTenant(r.Context(), r.PathValue("tenant"))
	if err != nil {
		return err
	}
	base := h.svc.PublicURL() + "/" + t.ID
	return httpx.JSON(w, http.StatusOK, map[string]any{
		"issuer":                                           h.svc.Issuer(t.ID),
		"authorization_endpoint":                           base + "/oauth2/v2.0/authorize",
		"token_endpoint":                                   base + "/oauth2/v2.0/token",
		"device_authorization_endpoint":                    base + "/oauth2/v2.0/devicecode",
		"jwks_uri":                                         base + "/discovery/v2.0/keys",
		"response_types_supported":                         []string{"code"},
		"response_modes_supported":                         []string{"query"},
		"subject_types_supported":                          []string{"pairwise"},
		"id_token_signing_alg_values_supported":            []string{"RS256"},
		"scopes_supported":                                 []string{"openid", "profile", "email", "offline_access"},
		"token_endpoint_auth_methods_supported":            []string{"client_secret_post", "client_secret_basic", "private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS256", "PS256"},
		"grant_types_supported": []string{identity.GrantClientCredentials, identity.GrantAuthorizationCode,
			identity.GrantRefreshToken, identity.GrantDeviceCode},
		"code_challenge_methods_supported": []string{"S256"},
		"claims_supported": []string{"sub", "iss", "aud", "exp", "iat", "nbf", "nonce", "name", "preferred_username",
			"oid", "tid", "ver"},
		"request_uri_parameter_supported": false,
		"tenant_region_scope":             "WW",
		"cloud_instance_name":             hostOf(h.svc.PublicURL()),
		"msgraph_host":                    hostOf(identity.GraphResource),
	})
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Host
}

// keys is the JWKS: the current signing key and the retired ones whose
// tokens may still be valid, public parts only.
func (h *handler) keys(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.svc.ResolveTenant(r.Context(), r.PathValue("tenant")); err != nil {
		return err
	}
	set, err := h.svc.JWKS(r.Context())
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, set)
}

// token is the token endpoint.
func (h *handler) token(w http.ResponseWriter, r *http.Request) error {
	if err := refuseSecretsInQuery(r); err != nil {
		return err
	}
	f, err := parseForm(r)
	if err != nil {
		return err
	}
	req := identity.TokenRequest{
		Tenant:              r.PathValue("tenant"),
		GrantType:           f.Get("grant_type"),
		ClientID:            f.Get("client_id"),
		ClientSecret:        secret.NewString(f.Get("client_secret")),
		ClientAssertionType: f.Get("client_assertion_type"),
		ClientAssertion:     secret.NewString(f.Get("client_assertion")),
		Scope:               f.Get("scope"),
		DeviceCode:          secret.NewString(f.Get("device_code")),
		Code:                secret.NewString(f.Get("code")),
		CodeVerifier:        secret.NewString(f.Get("code_verifier")),
		RedirectURI:         f.Get("redirect_uri"),
		RefreshToken:        secret.NewString(f.Get("refresh_token")),
	}
	if err := basicAuth(r, &req); err != nil {
		return err
	}
	resp, err := h.svc.Token(r.Context(), req)
	if err != nil {
		return err
	}
	w.Header().Set("Pragma", "no-cache")
	return httpx.JSON(w, http.StatusOK, resp)
}

// basicAuth takes client credentials from HTTP Basic (RFC 6749 §2.3.1:
// both parts form-urlencoded). A client uses one method only.
func basicAuth(r *http.Request, req *identity.TokenRequest) error {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return nil
	}
	bad := func(msg string) error {
		return errkind.New(errkind.Invalid, msg).WithCode(identity.CodeInvalidRequest)
	}
	id, err1 := url.QueryUnescape(user)
	sec, err2 := url.QueryUnescape(pass)
	switch {
	case err1 != nil || err2 != nil:
		return bad("The HTTP Basic credentials are not form-urlencoded as RFC 6749 §2.3.1 requires.")
	case !req.ClientSecret.IsZero() || !req.ClientAssertion.IsZero():
		return bad("The request must use one client authentication method: HTTP Basic or client credentials in the body, not both.")
	case req.ClientID != "" && req.ClientID != id:
		return bad("The client_id in the body differs from the one in the HTTP Basic credentials.")
	}
	req.ClientID, req.ClientSecret = id, secret.NewString(sec)
	return nil
}

// deviceCode is the device authorization endpoint (RFC 8628 §3.1).
func (h *handler) deviceCode(w http.ResponseWriter, r *http.Request) error {
	f, err := parseForm(r)
	if err != nil {
		return err
	}
	da, err := h.svc.StartDeviceCode(r.Context(), r.PathValue("tenant"), f.Get("client_id"), f.Get("scope"))
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, da)
}

// newToken returns 32 random bytes, base64url: for CSRF tokens.
func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
