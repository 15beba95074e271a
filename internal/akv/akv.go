// Package akv is the Azure Key Vault keys data plane: the REST API the
// official SDKs speak, served for every vault at
// https://{vault}.{vault-dns-suffix}:{port}. It answers the 401 challenge
// so that clients learn the vault's tenant and resource, verifies tokens,
// authorizes each operation with RBAC data actions or the vault's access
// policies, throttles per vault, hands the work to package vault and
// renders every failure once, in AKV's error format. It builds on httpx
// (same level) and must not import storage implementations.
package akv

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/rbac"
	"github.com/customerkey/customerkey/internal/resourceid"
	"github.com/customerkey/customerkey/internal/vault"
)

// Verifier checks access tokens.
type Verifier interface {
	Verify(ctx context.Context, token string, s identity.Surface) (identity.Principal, error)
}

// DataAuthorizer decides data actions; rbac implements it.
type DataAuthorizer interface {
	CheckData(ctx context.Context, p rbac.Principal, dataAction string, scope resourceid.ID) error
}

// Recorder writes audit records durably; audit.Batcher implements it.
type Recorder interface {
	Record(ctx context.Context, ev audit.Event) error
}

// Options configures the API.
type Options struct {
	Verifier Verifier
	RBAC     DataAuthorizer
	Keys     Keys
	Audit    Recorder
	Log      *slog.Logger
	// PublicURL is the identity endpoint the challenge points at.
	PublicURL string
	// VaultDNSSuffix: a request for host {name}.{suffix}[:port] is for vault name.
	VaultDNSSuffix string
	// VaultResource is the resource the challenge names.
	VaultResource string
	// RatePerVault and BurstPerVault throttle each vault, like Azure's
	// service limits; zero RatePerVault disables throttling.
	RatePerVault  float64
	BurstPerVault int
}

// Supported api-versions: what the current SDKs send by default and the
// versions they can be told to use.
var apiVersions = []string{"7.4", "7.5", "7.6", "2025-07-01"}

const latestAPIVersion = "2025-07-01"

// API serves the keys data plane.
type API struct {
	o Options

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// New returns the API.
func New(o Options) *API { return &API{o: o, limiters: map[string]*rate.Limiter{}} }

// VaultName returns the vault a Host header addresses, if it is a vault
// host of this server.
func (a *API) VaultName(host string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	name, ok := strings.CutSuffix(host, "."+a.o.VaultDNSSuffix)
	if !ok || name == "" || strings.Contains(name, ".") {
		return "", false
	}
	return name, true
}

// ServeHTTP serves one request for a vault host.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Strict-Transport-Security", "max-age=31536000;includeSubDomains")
	w.Header().Set("x-ms-keyvault-service-version", "customerkey")
	name, _ := a.VaultName(r.Host)
	t, ok := route(r.Method, r.URL.EscapedPath())
	maxBody := int64(64 << 10)
	if ok {
		if b := ops[t.op].maxBody; b > 0 {
			maxBody = b
		}
	}
	httpx.Route{R: renderer{a}, Log: a.o.Log, MaxBody: maxBody, Timeout: 30 * time.Second,
		H: func(w http.ResponseWriter, r *http.Request) error {
			if !ok {
				return errkind.Errorf(errkind.Invalid, "The operation %s %s is not part of the Key Vault keys API.", r.Method, r.URL.Path).WithCode("BadParameter")
			}
			return a.serve(w, r, name, t)
		}}.ServeHTTP(w, r)
}

// request is one authenticated, authorized call.
type request struct {
	p     identity.Principal
	vault vault.Vault
	t     target
	start time.Time
}

func (a *API) serve(w http.ResponseWriter, r *http.Request, vaultName string, t target) error {
	ctx := r.Context()
	if err := checkAPIVersion(r); err != nil {
		return err
	}
	v, err := a.o.Keys.Vault(ctx, vaultName)
	if err != nil {
		return err
	}
	tok, has := httpx.BearerToken(r)
	if !has {
		return errChallenge(v.TenantID)
	}
	p, err := a.o.Verifier.Verify(ctx, tok, identity.KeyVault)
	if err != nil {
		return errkind.Wrap(errkind.Unauthenticated, errkind.Public(err), err).WithCode("Unauthorized")
	}
	if p.TenantID != v.TenantID {
		return errkind.Errorf(errkind.Unauthenticated, "AKV10032: Invalid issuer. The token was issued by tenant %s; vault %s trusts tenant %s.",
			p.TenantID, v.Name, v.TenantID).WithCode("Unauthorized")
	}
	// A malformed name is the caller's mistake whatever its rights: say so
	// before authorization builds a scope from it.
	if t.name != "" && !vault.ValidKeyName(t.name) {
		return errkind.Errorf(errkind.Invalid, "The key name %q is not valid: use 1 to 127 letters, digits and hyphens.", t.name).WithCode("BadParameter")
	}
	req := &request{p: p, vault: v, t: t, start: time.Now()}
	var res response
	// An operation no vault offers is refused whatever the caller's roles:
	// it has no data action or access-policy permission to authorize.
	if t.op == opRandom {
		err = errRandomBytes
	} else {
		err = a.authorize(ctx, req)
	}
	if err == nil {
		err = a.throttle(v.Name)
	}
	if err == nil {
		res, err = a.dispatch(r, req)
	}
	// The record is durable before the caller hears the outcome, so
	// nothing acknowledged goes unaudited.
	if aerr := a.record(ctx, req, err); aerr != nil && err == nil {
		return errkind.Wrap(errkind.Unavailable, "The operation could not be recorded in the audit log; it was not acknowledged. Retry.", aerr)
	}
	if err != nil {
		return err
	}
	return res.write(w)
}

// response is a handler's answer, written after its audit record.
type response struct {
	status int
	body   any // nil writes no body
}

func (res response) write(w http.ResponseWriter) error {
	if res.body == nil {
		w.WriteHeader(res.status)
		return nil
	}
	return httpx.JSON(w, res.status, res.body)
}

func checkAPIVersion(r *http.Request) error {
	v := r.URL.Query().Get("api-version")
	if slices.Contains(apiVersions, v) {
		return nil
	}
	if v == "" {
		return errkind.New(errkind.Invalid, "The api-version query parameter is required; the latest supported version is "+latestAPIVersion+".").WithCode("BadParameter")
	}
	return errkind.Errorf(errkind.Invalid, "The specified version (%s) is not recognized. Consider using the latest supported version (%s).", v, latestAPIVersion).WithCode("BadParameter")
}

// errChallenge asks for a token; the renderer adds the challenge header.
type challengeError struct{ tenant string }

func errChallenge(tenant string) error {
	return errkind.Wrap(errkind.Unauthenticated, "AKV10000: Request is missing a Bearer or PoP token.", &challengeError{tenant}).WithCode("Unauthorized")
}

func (e *challengeError) Error() string { return "challenge for tenant " + e.tenant }

// challenge writes WWW-Authenticate naming the vault's tenant (so clients
// ask the right tenant for a token) and the resource (the parent domain of
// every vault host, so SDKs verify it without being told to skip that).
func (a *API) challenge(w http.ResponseWriter, r *http.Request) {
	tenant := "organizations"
	if name, ok := a.VaultName(r.Host); ok {
		if v, err := a.o.Keys.Vault(r.Context(), name); err == nil {
			tenant = v.TenantID
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer authorization="`+a.o.PublicURL+"/"+tenant+`", resource="`+a.o.VaultResource+`"`)
}

// authorize decides the operation with RBAC on vaults that use it, and
// with the access policies on the others.
func (a *API) authorize(ctx context.Context, req *request) error {
	info := ops[req.t.op]
	v := req.vault
	if v.EnableRbacAuthorization {
		scope := v.ResourceID()
		if req.t.name != "" && req.t.op != opRestore {
			scope = scope.Child("keys", req.t.name)
		}
		err := a.o.RBAC.CheckData(ctx, rbacPrincipal(req.p), "Microsoft.KeyVault/vaults/"+info.dataAction, scope)
		if err != nil {
			return err
		}
		return nil
	}
	if info.permission == "" || !v.AllowsKeyOperation(req.p.TenantID, req.p.ObjectID, req.p.AppID, info.permission) {
		who := req.p.Name
		if who == "" {
			who = req.p.ObjectID
		}
		return errkind.Errorf(errkind.PermissionDenied, "The user, group or application '%s' (object id %s) does not have keys %s permission on key vault '%s'. Grant it with an access policy, or move the vault to Azure RBAC.",
			who, req.p.ObjectID, info.permission, v.Name).WithCode("AccessDenied")
	}
	return nil
}

func rbacPrincipal(p identity.Principal) rbac.Principal {
	t, name := rbac.PrincipalServicePrincipal, p.AppID
	if p.Type == identity.UserPrincipal {
		t, name = rbac.PrincipalUser, p.Name
	}
	return rbac.Principal{TenantID: p.TenantID, ObjectID: p.ObjectID, Type: t, Name: name}
}

// throttled carries how long the caller should wait.
type throttled struct{ wait time.Duration }

func (t *throttled) Error() string { return "throttled" }

func retryAfterSeconds(err error) int {
	var t *throttled
	if e, ok := errkind.As(err); ok {
		t, _ = e.Err.(*throttled)
	}
	if t == nil {
		return 1
	}
	return max(1, int((t.wait+time.Second-1)/time.Second))
}

// throttle applies the per-vault limit.
func (a *API) throttle(vaultName string) error {
	if a.o.RatePerVault <= 0 {
		return nil
	}
	a.mu.Lock()
	l, ok := a.limiters[vaultName]
	if !ok {
		burst := a.o.BurstPerVault
		if burst <= 0 {
			burst = int(a.o.RatePerVault)
		}
		l = rate.NewLimiter(rate.Limit(a.o.RatePerVault), max(burst, 1))
		a.limiters[vaultName] = l
	}
	a.mu.Unlock()
	res := l.Reserve()
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return errkind.Wrap(errkind.TooManyRequests, "Requests to vault "+vaultName+" exceed its limit; retry after the time in Retry-After.", &throttled{d}).WithCode("Throttled")
	}
	return nil
}

// record writes the audit record of one request: caller, vault, key,
// version, operation, result. It is durable before the response is sent.
func (a *API) record(ctx context.Context, req *request, err error) error {
	if a.o.Audit == nil {
		return nil
	}
	result, reason := audit.Success, ""
	switch {
	case errkind.Is(err, errkind.PermissionDenied) || errkind.Is(err, errkind.Unauthenticated):
		result, reason = audit.Denied, errkind.Public(err)
	case err != nil:
		result, reason = audit.Failure, errkind.Public(err)
	}
	targetName := req.vault.Name
	if req.t.name != "" {
		targetName += "/" + req.t.name
		if req.t.version != "" {
			targetName += "/" + req.t.version
		}
	}
	ev := audit.Event{TenantID: req.vault.TenantID, Actor: req.p.Actor(), Action: "vault/" + ops[req.t.op].name,
		Target: targetName, Result: result, Reason: reason}
	rerr := a.o.Audit.Record(ctx, ev)
	if rerr != nil && a.o.Log != nil {
		a.o.Log.ErrorContext(ctx, "akv: writing an audit record failed", "action", ev.Action, "err", rerr)
	}
	return rerr
}
