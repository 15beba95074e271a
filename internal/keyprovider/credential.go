package keyprovider

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Tokens issues access tokens to the operator's first-party applications
// in a customer tenant; *identity.Service implements it. It refuses while
// the application's service principal is missing or disabled there.
type Tokens interface {
	FirstPartyToken(ctx context.Context, tenantID, appID, resource string) (token string, expires time.Time, err error)
}

// Tokens are renewed this long before they expire (less for short-lived
// tokens: at half their lifetime), so that a request never leaves with a
// token about to lapse. azcore's bearer policy uses the same margin.
const refreshMargin = 5 * time.Minute

// maxResources bounds the tokens one credential keeps; in practice there is
// one (the vault resource of this deployment).
const maxResources = 4

// credential is the azcore.TokenCredential of one workload identity: one
// first-party application in one tenant. It asks only for tokens for this
// deployment's vault resource, only in its own tenant, and keeps each
// token until shortly before it expires.
type credential struct {
	tokens          Tokens
	appID, tenantID string
	suffix          string
	now             func() time.Time

	mu    sync.Mutex
	cache map[string]cachedToken // by resource
}

type cachedToken struct {
	token            string
	expires, refresh time.Time
}

var _ azcore.TokenCredential = (*credential)(nil)

// GetToken answers the key vault client's challenge policy, which asks
// for the resource and tenant the vault's 401 challenge named.
func (c *credential) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if o.TenantID != "" && !strings.EqualFold(o.TenantID, c.tenantID) {
		return azcore.AccessToken{}, &foreignTenantError{vaultTenant: clip(o.TenantID)}
	}
	resource, ok := c.resource(o.Scopes)
	if !ok {
		return azcore.AccessToken{}, &resourceError{scopes: clip(strings.Join(o.Scopes, " "))}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	// A claims challenge (CAE) asks for a token newer than the one held.
	if t, ok := c.cache[resource]; ok && o.Claims == "" && now.Before(t.refresh) {
		return azcore.AccessToken{Token: t.token, ExpiresOn: t.expires, RefreshOn: t.refresh}, nil
	}
	tok, exp, err := c.tokens.FirstPartyToken(ctx, c.tenantID, c.appID, resource)
	if err != nil {
		delete(c.cache, resource)
		return azcore.AccessToken{}, &tokenError{err: err}
	}
	margin := min(refreshMargin, exp.Sub(now)/2)
	t := cachedToken{token: tok, expires: exp, refresh: exp.Add(-margin)}
	if len(c.cache) >= maxResources {
		clear(c.cache)
	}
	c.cache[resource] = t
	return azcore.AccessToken{Token: t.token, ExpiresOn: t.expires, RefreshOn: t.refresh}, nil
}

// resource returns the resource of a single "{resource}/.default" scope
// naming this deployment's vault DNS suffix (https://{suffix}[:port]), the
// only audience the workloads need. A vault naming another resource in its
// challenge gets no token.
func (c *credential) resource(scopes []string) (string, bool) {
	if len(scopes) != 1 {
		return "", false
	}
	r, ok := strings.CutSuffix(scopes[0], "/.default")
	if !ok {
		return "", false
	}
	u, err := url.Parse(r)
	if err != nil || u.Scheme != "https" || !strings.EqualFold(u.Hostname(), c.suffix) || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	return r, true
}

// tokenError is a refusal of the token service.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return "getting an access token: " + e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// foreignTenantError: the vault's challenge named another tenant than the
// one the workload acts for, so the vault belongs to another organization.
type foreignTenantError struct{ vaultTenant string }

func (e *foreignTenantError) Error() string {
	return "the vault's challenge names tenant " + e.vaultTenant
}

// resourceError: the vault's challenge asked for a token for something
// other than this deployment's vault resource.
type resourceError struct{ scopes string }

func (e *resourceError) Error() string {
	return "the vault's challenge asks for a token for " + e.scopes + ", which is not this deployment's key vault resource"
}
