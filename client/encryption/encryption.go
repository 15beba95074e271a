// Package encryption is the Go client of customerkey's general encryption
// API: encryption by scope, under keys wrapped by the tenant's Customer Key
// policy.
//
// Encrypt and Decrypt send every item to the server, which keeps the scope
// key and never returns it. Seal and Open encrypt locally with AES-256-GCM
// under data keys the server issues for a scope (POST …/datakey): a data
// key is reused for at most Options.MaxItemsPerDataKey items (default
// 2^20), MaxBytesPerDataKey bytes (default 2^36, 64 GiB) and
// DataKeyLifetime (default one hour), like a caching materials manager, so
// that one round trip serves many items and random 96-bit nonces stay far
// below GCM's limit of 2^32 messages per key. Each sealed item carries its
// wrapped data key; Open asks the server to unwrap it once (POST
// …/datakey/decrypt) and caches it, by scope and wrapped-key hash, within
// the same bounds.
//
// A Client is safe for concurrent use. It imports nothing from customerkey's
// internal packages: only the standard library and azcore, whose
// TokenCredential (for example from azidentity) signs its requests with
// Resource Manager tokens.
package encryption

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Defaults and hard limits of the data key bounds.
const (
	DefaultTokenScope         = "https://management.azure.com/.default"
	DefaultMaxItemsPerDataKey = 1 << 20
	DefaultMaxBytesPerDataKey = 1 << 36
	DefaultDataKeyLifetime    = time.Hour
	DefaultMaxCachedDataKeys  = 1024
	// MaxItemsPerDataKeyLimit is the most MaxItemsPerDataKey may be: GCM
	// with random nonces is safe for 2^32 messages per key.
	MaxItemsPerDataKeyLimit = 1 << 32
	// MaxItemSize is the largest plaintext Encrypt sends: the server's limit.
	MaxItemSize = 4 << 20
)

// Options configures a Client. The zero value is usable.
type Options struct {
	// HTTPClient sends the requests. Nil means a client with a 60-second
	// timeout whose transport keeps enough idle connections for
	// concurrent use.
	HTTPClient *http.Client
	// TokenScope is the scope tokens are requested for; empty means
	// DefaultTokenScope.
	TokenScope string
	// MaxItemsPerDataKey, MaxBytesPerDataKey and DataKeyLifetime bound how
	// long Seal reuses a data key and Open keeps one; zero means the
	// default. MaxItemsPerDataKey may not exceed MaxItemsPerDataKeyLimit.
	MaxItemsPerDataKey int64
	MaxBytesPerDataKey int64
	DataKeyLifetime    time.Duration
	// MaxCachedDataKeys bounds the data keys Open keeps; zero means
	// DefaultMaxCachedDataKeys.
	MaxCachedDataKeys int
}

// Client calls one tenant's encryption API.
type Client struct {
	hc       *http.Client
	base     string // https://host/customerkey/v1/tenants/{tenant}/encryption/scopes/
	cred     azcore.TokenCredential
	scope    string
	maxItems int64
	maxBytes int64
	lifetime time.Duration
	now      func() time.Time

	tokMu    sync.Mutex
	tok      atomic.Pointer[azcore.AccessToken]
	tokFetch chan struct{} // closed when a token fetch in flight ends

	keys *keyCache
}

// New returns a Client of endpoint (https://host[:port]) for tenantID (an
// id or a verified domain) that authenticates with cred.
func New(endpoint, tenantID string, cred azcore.TokenCredential, opts *Options) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(endpoint, "/"))
	if err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("encryption: the endpoint %q is not an https URL of a server (https://host[:port])", endpoint)
	}
	if strings.TrimSpace(tenantID) == "" {
		return nil, errors.New("encryption: a tenant id is required")
	}
	if cred == nil {
		return nil, errors.New("encryption: a token credential is required")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	c := &Client{hc: o.HTTPClient, cred: cred, scope: o.TokenScope, maxItems: o.MaxItemsPerDataKey, maxBytes: o.MaxBytesPerDataKey,
		lifetime: o.DataKeyLifetime, now: time.Now,
		base: u.Scheme + "://" + u.Host + "/customerkey/v1/tenants/" + url.PathEscape(strings.TrimSpace(tenantID)) + "/encryption/scopes/"}
	switch {
	case c.maxItems < 0 || c.maxItems > MaxItemsPerDataKeyLimit:
		return nil, fmt.Errorf("encryption: MaxItemsPerDataKey %d is out of range: use 1 to %d", c.maxItems, int64(MaxItemsPerDataKeyLimit))
	case c.maxBytes < 0 || c.lifetime < 0 || o.MaxCachedDataKeys < 0:
		return nil, errors.New("encryption: the data key bounds cannot be negative")
	}
	if c.hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 256
		c.hc = &http.Client{Transport: tr, Timeout: 60 * time.Second}
	}
	if c.scope == "" {
		c.scope = DefaultTokenScope
	}
	if c.maxItems == 0 {
		c.maxItems = DefaultMaxItemsPerDataKey
	}
	if c.maxBytes == 0 {
		c.maxBytes = DefaultMaxBytesPerDataKey
	}
	if c.lifetime == 0 {
		c.lifetime = DefaultDataKeyLifetime
	}
	max := o.MaxCachedDataKeys
	if max == 0 {
		max = DefaultMaxCachedDataKeys
	}
	c.keys = newKeyCache(max)
	return c, nil
}

// ResponseError is an error answer of the server.
type ResponseError struct {
	StatusCode int
	// ErrorCode is the server's reason, for example ScopeNotFound,
	// AuthorizationFailed or DecryptionFailed.
	ErrorCode string
	Message   string
	RequestID string
}

func (e *ResponseError) Error() string {
	s := fmt.Sprintf("customerkey encryption API: %d %s: %s", e.StatusCode, e.ErrorCode, e.Message)
	if e.RequestID != "" {
		s += " (request id " + e.RequestID + ")"
	}
	return s
}

// token returns a bearer token, fetching a new one when the cached one is
// within two minutes of expiry (or its RefreshOn has passed). Concurrent
// fetches are merged.
func (c *Client) token(ctx context.Context) (string, error) {
	for {
		if t := c.tok.Load(); t != nil && c.fresh(t) {
			return t.Token, nil
		}
		c.tokMu.Lock()
		if t := c.tok.Load(); t != nil && c.fresh(t) {
			c.tokMu.Unlock()
			return t.Token, nil
		}
		if ch := c.tokFetch; ch != nil {
			c.tokMu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		ch := make(chan struct{})
		c.tokFetch = ch
		c.tokMu.Unlock()
		t, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}})
		c.tokMu.Lock()
		if err == nil {
			c.tok.Store(&t)
		}
		c.tokFetch = nil
		close(ch)
		c.tokMu.Unlock()
		if err != nil {
			return "", fmt.Errorf("encryption: getting a token for %s: %w", c.scope, err)
		}
		return t.Token, nil
	}
}

func (c *Client) fresh(t *azcore.AccessToken) bool {
	now := c.now()
	if !t.RefreshOn.IsZero() && !now.Before(t.RefreshOn) {
		return false
	}
	return now.Add(2 * time.Minute).Before(t.ExpiresOn)
}

// post sends body to the scope's operation and returns the answer's body.
func (c *Client) post(ctx context.Context, scope, op, contentType string, body, aad []byte) ([]byte, error) {
	if scope == "" {
		return nil, errors.New("encryption: a scope name is required")
	}
	tok, err := c.token(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+url.PathEscape(scope)+"/"+op, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("encryption: %w", err)
	}
	req.Header["Authorization"] = []string{"Bearer " + tok}
	req.Header["Content-Type"] = []string{contentType}
	if len(aad) > 0 {
		req.Header["X-Ck-Aad"] = []string{base64.RawURLEncoding.EncodeToString(aad)}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("encryption: %w", err)
	}
	defer resp.Body.Close()
	// No answer is larger than the largest ciphertext; an error body is
	// small.
	const maxAnswer = MaxItemSize + 64<<10
	var out []byte
	switch n := resp.ContentLength; {
	case n > maxAnswer:
		err = fmt.Errorf("the answer is %d bytes, more than any answer of this API", n)
	case n >= 0:
		out = make([]byte, n)
		_, err = io.ReadFull(resp.Body, out)
	default:
		if out, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1)); err == nil && len(out) > maxAnswer {
			err = errors.New("the answer is larger than any answer of this API")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("encryption: reading the answer of %s: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, responseError(resp, out)
	}
	return out, nil
}

func responseError(resp *http.Response, body []byte) error {
	e := &ResponseError{StatusCode: resp.StatusCode, RequestID: resp.Header.Get("x-ms-request-id")}
	var b struct {
		Error struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"requestId"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &b) == nil && b.Error.Code != "" {
		e.ErrorCode, e.Message = b.Error.Code, b.Error.Message
		if b.Error.RequestID != "" {
			e.RequestID = b.Error.RequestID
		}
		return e
	}
	e.ErrorCode = http.StatusText(resp.StatusCode)
	e.Message = strings.TrimSpace(string(body[:min(len(body), 512)]))
	return e
}

// Encrypt has the server encrypt plaintext (at most MaxItemSize bytes) in
// scope, bound to aad, and returns the ciphertext. The caller must be a
// principal of the scope.
func (c *Client) Encrypt(ctx context.Context, scope string, plaintext, aad []byte) ([]byte, error) {
	if len(plaintext) > MaxItemSize {
		return nil, fmt.Errorf("encryption: the item is %d bytes; Encrypt takes at most %d: use Seal for larger data", len(plaintext), MaxItemSize)
	}
	return c.post(ctx, scope, "encrypt", "application/octet-stream", plaintext, aad)
}

// Decrypt has the server decrypt a ciphertext of Encrypt made in scope with
// the same aad.
func (c *Client) Decrypt(ctx context.Context, scope string, ciphertext, aad []byte) ([]byte, error) {
	return c.post(ctx, scope, "decrypt", "application/octet-stream", ciphertext, aad)
}

// fetchKey asks the server for a new data key of scope, or (wrapped != nil)
// to unwrap one, and returns the key and its wrapped form. The caller
// wipes the key.
func (c *Client) fetchKey(ctx context.Context, scope string, wrapped []byte) (key, wrappedOut []byte, err error) {
	op, body := "datakey", []byte("{}")
	if wrapped != nil {
		op = "datakey/decrypt"
		body = []byte(`{"wrappedKey":"` + base64.RawURLEncoding.EncodeToString(wrapped) + `"}`)
	}
	raw, err := c.post(ctx, scope, op, "application/json", body, nil)
	if err != nil {
		return nil, nil, err
	}
	defer clear(raw) // it holds the key in base64
	var out struct {
		Key        json.RawMessage `json:"key"`
		WrappedKey string          `json:"wrappedKey"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, nil, fmt.Errorf("encryption: the answer of %s is not the expected JSON: %w", op, err)
	}
	defer clear(out.Key)
	enc := base64.RawURLEncoding
	k := bytes.Trim(out.Key, `"`)
	key = make([]byte, enc.DecodedLen(len(k)))
	n, err := enc.Decode(key, k)
	if err != nil || n != 32 {
		clear(key)
		return nil, nil, fmt.Errorf("encryption: the answer of %s holds no 32-byte key", op)
	}
	if wrapped != nil {
		return key, wrapped, nil
	}
	if wrappedOut, err = enc.DecodeString(out.WrappedKey); err != nil || len(wrappedOut) == 0 || len(wrappedOut) > maxWrapped {
		clear(key)
		return nil, nil, fmt.Errorf("encryption: the answer of %s holds no wrapped key", op)
	}
	return key, wrappedOut, nil
}
