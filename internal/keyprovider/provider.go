// Package keyprovider is how package dep reaches customer root keys: it
// implements dep.RootKeys with the official Azure Key Vault client
// (azkeys) over HTTPS, called as the workload identity (a first-party
// application of the operator in the customer's tenant). The vault
// therefore applies RBAC, access policies, key state, soft delete and
// revocation to the service exactly as to any other caller; there is no
// private path. It gets its tokens in process from the token service
// (through the Tokens interface it declares), caches them per application
// and tenant until shortly before they expire, keeps one vault client per
// vault, application and tenant (bounded), accepts only key URIs of this
// deployment's vault DNS suffix, and classifies every failure as a
// *dep.KeyError (Transient, AccessDenied, KeyDisabled, KeyExpired,
// NotFound) whose message names the key, the application and what the
// customer should check.
//
// It is a level-4 adapter: from this module it imports dep (the contract
// it implements), directory (the first-party applications' names, for
// messages) and errkind; outside it, azcore and azkeys. It reaches the
// token service only through Tokens, and must not import the server side
// of this module (httpx, akv, identity) or a storage implementation: what
// it knows of a vault is what crosses the wire.
package keyprovider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/customerkey/customerkey/internal/dep"
)

// WrapAlgorithm is the only algorithm root keys wrap with.
const WrapAlgorithm = "RSA-OAEP-256"

// Defaults.
const (
	DefaultCallTimeout = 10 * time.Second
	DefaultMaxClients  = 1024
	DefaultRetries     = 2
)

// maxKeyLen bounds what Wrap sends: RSA-OAEP-256 under a 4096-bit key
// wraps at most 446 bytes; policy keys are 32.
const maxKeyLen = 446

// Options configures a Provider.
type Options struct {
	// Tokens issues the workload identities' tokens. Required.
	Tokens Tokens
	// VaultDNSSuffix is this deployment's vault DNS suffix, e.g.
	// "vault.localhost" or "vault.azure.net": only keys of
	// https://{vault}.{suffix}[:port] are used. Required.
	VaultDNSSuffix string
	// RootCAs are the certificate authorities trusted for vault
	// connections; nil means the system's.
	RootCAs *x509.CertPool
	// DialContext opens connections; nil uses a net.Dialer with a 5 s
	// timeout. The server passes one that resolves *.localhost to the
	// loopback address, which Go's resolver does not.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// CallTimeout bounds each operation, retries included; default 10 s.
	// A vault that does not answer in time is a Transient failure.
	CallTimeout time.Duration
	// Retries is how often a throttled (429), failing (5xx) or
	// unreachable vault is retried within CallTimeout; default 2, negative
	// for none.
	Retries int
	// MaxClients bounds the vault clients and credentials kept; the least
	// recently used are dropped. Default 1024.
	MaxClients int
	// Now is the clock that decides when a token is renewed; default
	// time.Now.
	Now func() time.Time
}

// Provider implements dep.RootKeys. It is safe for concurrent use.
type Provider struct {
	tokens      Tokens
	suffix      string
	now         func() time.Time
	callTimeout time.Duration
	maxClients  int
	httpc       *http.Client
	retry       policy.RetryOptions

	mu      sync.Mutex
	tick    uint64 // orders uses, for eviction
	clients map[clientKey]*clientEntry
	creds   map[credKey]*credEntry
}

var _ dep.RootKeys = (*Provider)(nil)

// credKey names a workload identity; clientKey one of its vault clients.
// A vault client holds its identity's token (azcore's bearer policy caches
// it), so clients are never shared between identities.
type credKey struct{ appID, tenantID string }

type clientKey struct {
	vaultURL string
	credKey
}

type clientEntry struct {
	c    *azkeys.Client
	used uint64
}

type credEntry struct {
	c    *credential
	used uint64
}

// New returns a Provider.
func New(o Options) (*Provider, error) {
	suffix := strings.ToLower(strings.Trim(o.VaultDNSSuffix, "."))
	if o.Tokens == nil || suffix == "" {
		return nil, errors.New("keyprovider: Options.Tokens and Options.VaultDNSSuffix are required")
	}
	p := &Provider{tokens: o.Tokens, suffix: suffix, now: o.Now, callTimeout: o.CallTimeout, maxClients: o.MaxClients,
		clients: map[clientKey]*clientEntry{}, creds: map[credKey]*credEntry{}}
	if p.now == nil {
		p.now = time.Now
	}
	if p.callTimeout <= 0 {
		p.callTimeout = DefaultCallTimeout
	}
	if p.maxClients <= 0 {
		p.maxClients = DefaultMaxClients
	}
	retries := o.Retries
	switch {
	case retries == 0:
		retries = DefaultRetries
	case retries < 0:
		retries = -1 // azcore's "no retries"
	}
	// Short delays: the call timeout bounds the whole operation, and a
	// Retry-After beyond MaxRetryDelay ends the retries at once.
	p.retry = policy.RetryOptions{MaxRetries: int32(retries), RetryDelay: 200 * time.Millisecond,
		MaxRetryDelay: 2 * time.Second, TryTimeout: p.callTimeout / 2}
	dial := o.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	// One transport for every vault: connections are kept alive per host
	// and reused by all identities (the token travels per request).
	p.httpc = &http.Client{Transport: &http.Transport{
		DialContext:           dial,
		TLSClientConfig:       &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: p.callTimeout,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   16,
	}}
	return p, nil
}

// Describe reads a root key version as the workload identity sees it.
func (p *Provider) Describe(ctx context.Context, appID, tenantID, keyURI string) (dep.RootKeyInfo, error) {
	c, err := p.call("get", appID, tenantID, keyURI)
	if err != nil {
		return dep.RootKeyInfo{}, err
	}
	kc, err := p.client(c)
	if err != nil {
		return dep.RootKeyInfo{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.callTimeout)
	defer cancel()
	resp, err := kc.GetKey(ctx, c.ref.name, c.ref.version, nil)
	if err != nil {
		return dep.RootKeyInfo{}, classify(c, err)
	}
	if resp.Key == nil || resp.Attributes == nil {
		return dep.RootKeyInfo{}, c.unexpected("a key bundle without its key or attributes")
	}
	kid, err := c.answeredKID(resp.Key.KID, p.suffix)
	if err != nil {
		return dep.RootKeyInfo{}, err
	}
	info := dep.RootKeyInfo{KeyID: kid, Enabled: resp.Attributes.Enabled != nil && *resp.Attributes.Enabled,
		NotBefore: resp.Attributes.NotBefore, Expires: resp.Attributes.Expires}
	if resp.Key.Kty != nil {
		info.Kty = string(*resp.Key.Kty)
	}
	if len(resp.Key.N) > 0 {
		info.Size = new(big.Int).SetBytes(resp.Key.N).BitLen()
	}
	for _, op := range resp.Key.KeyOps {
		if op != nil {
			info.Ops = append(info.Ops, string(*op))
		}
	}
	if resp.Attributes.RecoveryLevel != nil {
		info.RecoveryLevel = *resp.Attributes.RecoveryLevel
	}
	return info, nil
}

// Wrap wraps key with RSA-OAEP-256 under the root key (its current
// version when keyURI names none). The result names the version used.
func (p *Provider) Wrap(ctx context.Context, appID, tenantID, keyURI string, key []byte) (dep.WrappedRoot, error) {
	c, err := p.call("wrapKey", appID, tenantID, keyURI)
	if err != nil {
		return dep.WrappedRoot{}, err
	}
	if len(key) == 0 || len(key) > maxKeyLen {
		return dep.WrappedRoot{}, c.misuse(fmt.Sprintf("A key to wrap under %s must be 1 to %d bytes; this is a fault of the caller, not of the vault.", c.ref.id(), maxKeyLen),
			fmt.Sprintf("refused before calling the vault: the key to wrap is %d bytes", len(key)))
	}
	kc, err := p.client(c)
	if err != nil {
		return dep.WrappedRoot{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.callTimeout)
	defer cancel()
	resp, err := kc.WrapKey(ctx, c.ref.name, c.ref.version,
		azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: key}, nil)
	if err != nil {
		return dep.WrappedRoot{}, classify(c, err)
	}
	kid, err := c.answeredKID(resp.KID, p.suffix)
	if err != nil {
		return dep.WrappedRoot{}, err
	}
	if len(resp.Result) == 0 {
		return dep.WrappedRoot{}, c.unexpected("an empty wrapped key")
	}
	return dep.WrappedRoot{KeyID: kid, Alg: WrapAlgorithm, Value: resp.Result}, nil
}

// Unwrap unwraps w with the root key version that wrapped it. The caller
// owns the returned key and should wipe it after use.
func (p *Provider) Unwrap(ctx context.Context, appID, tenantID string, w dep.WrappedRoot) ([]byte, error) {
	c, err := p.call("unwrapKey", appID, tenantID, w.KeyID)
	if err != nil {
		return nil, err
	}
	if c.ref.version == "" || w.Alg != WrapAlgorithm || len(w.Value) == 0 {
		return nil, c.misuse(fmt.Sprintf("The wrapped key under %s is malformed: it must name a key version, the algorithm %s and a value; this is a fault of the stored record, not of the vault.",
			c.ref.id(), WrapAlgorithm), "refused before calling the vault: malformed wrapped key")
	}
	kc, err := p.client(c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.callTimeout)
	defer cancel()
	resp, err := kc.UnwrapKey(ctx, c.ref.name, c.ref.version,
		azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: w.Value}, nil)
	if err != nil {
		return nil, classify(c, err)
	}
	if _, err := c.answeredKID(resp.KID, p.suffix); err != nil {
		clear(resp.Result)
		return nil, err
	}
	if len(resp.Result) == 0 {
		return nil, c.unexpected("an empty unwrapped key")
	}
	return resp.Result, nil
}

// call parses keyURI and names the operation for errors. A URI outside
// this deployment is refused as NotFound (no such vault here) whose cause
// is errkind.Invalid, so a surface can answer it as a bad request.
func (p *Provider) call(op, appID, tenantID, keyURI string) (call, error) {
	c := call{op: op, appID: appID, tenantID: tenantID, timeout: p.callTimeout}
	ref, err := parseKeyURI(keyURI, p.suffix)
	if err != nil {
		return c, &dep.KeyError{Class: dep.NotFound, KeyID: clip(keyURI),
			Message: fmt.Sprintf("The key URI %s cannot be used: it is not a key of this deployment's vaults (*.%s).", clip(keyURI), p.suffix),
			Err:     err}
	}
	c.ref = ref
	return c, nil
}

// answeredKID checks the key identifier a vault answered with: a version
// of the key that was asked for, in the same vault.
func (c call) answeredKID(kid *azkeys.ID, suffix string) (string, error) {
	if kid == nil {
		return "", c.unexpected("no key identifier")
	}
	got, err := parseKeyURI(string(*kid), suffix)
	if err != nil || got.version == "" || !got.sameKey(c.ref) || (c.ref.version != "" && !strings.EqualFold(got.version, c.ref.version)) {
		return "", c.unexpected("the key identifier " + clip(string(*kid)))
	}
	return got.id(), nil
}

// unexpected is an answer no Key Vault gives: not a revocation.
func (c call) unexpected(what string) *dep.KeyError {
	return c.fail(dep.Transient, fmt.Sprintf("Vault %s answered %s of key %s with %s; this is not a revocation, retry later.",
		c.ref.vault, c.op, c.ref.id(), what), "unexpected answer", nil)
}

// client returns the vault client of c's vault and identity, creating it
// (and the identity's credential) on first use.
func (p *Provider) client(c call) (*azkeys.Client, error) {
	ck := credKey{appID: strings.ToLower(c.appID), tenantID: strings.ToLower(c.tenantID)}
	k := clientKey{vaultURL: c.ref.vaultURL(), credKey: ck}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tick++
	if e, ok := p.clients[k]; ok {
		e.used = p.tick
		return e.c, nil
	}
	ce, ok := p.creds[ck]
	if !ok {
		evictOldest(p.creds, p.maxClients, func(e *credEntry) uint64 { return e.used })
		ce = &credEntry{c: &credential{tokens: p.tokens, appID: c.appID, tenantID: c.tenantID, suffix: p.suffix, now: p.now,
			cache: map[string]cachedToken{}}}
		p.creds[ck] = ce
	}
	ce.used = p.tick
	// Resource verification stays on: the challenge must name a resource
	// whose host the vault's host ends with, and the credential further
	// insists on this deployment's vault resource.
	kc, err := azkeys.NewClient(k.vaultURL, ce.c, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{
		Transport: p.httpc, Retry: p.retry, Telemetry: policy.TelemetryOptions{ApplicationID: "customerkey-keyprovider"}}})
	if err != nil {
		// NewClient fails only on options it cannot build a pipeline
		// from, and these are fixed: a fault of this service.
		return nil, c.fail(dep.Transient, fmt.Sprintf("No client for vault %s could be built, so key %s could not be used; this is not a revocation.",
			c.ref.vault, c.ref.id()), "building the vault client failed", err)
	}
	evictOldest(p.clients, p.maxClients, func(e *clientEntry) uint64 { return e.used })
	p.clients[k] = &clientEntry{c: kc, used: p.tick}
	return kc, nil
}

// evictOldest makes room for one entry in m, bounded to max, by dropping
// the least recently used. It scans: it runs only when m is full, once
// per new entry.
func evictOldest[K comparable, V any](m map[K]V, max int, used func(V) uint64) {
	for len(m) >= max {
		var oldest K
		first := true
		var least uint64
		for k, v := range m {
			if u := used(v); first || u < least {
				oldest, least, first = k, u, false
			}
		}
		delete(m, oldest)
	}
}
