package akv

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/jwk"
	"github.com/customerkey/customerkey/internal/rbac"
	"github.com/customerkey/customerkey/internal/resourceid"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/vault"
)

// FuzzRoute: route never panics, is deterministic, and what it accepts is
// an operation the API knows, naming a key wherever the operation has one.
func FuzzRoute(f *testing.F) {
	for _, tc := range routeCases {
		f.Add(tc.method, tc.path)
	}
	f.Add("GET", "/keys/%")
	f.Add("POST", "/keys/%2F%2F%2F/%2e%2e/sign")
	f.Add("PUT", strings.Repeat("/keys", 50))
	f.Fuzz(func(t *testing.T, method, path string) {
		got, ok := route(method, path)
		again, ok2 := route(method, path)
		if got != again || ok != ok2 {
			t.Fatalf("route(%q, %q) is not deterministic", method, path)
		}
		if !ok {
			return
		}
		if _, known := ops[got.op]; !known {
			t.Fatalf("route(%q, %q) = unknown op %d", method, path, got.op)
		}
		switch got.op {
		case opList, opListDeleted, opRestore, opRandom:
			if got.name != "" || got.version != "" {
				t.Fatalf("route(%q, %q) = %+v: this operation names no key", method, path, got)
			}
		default:
			if got.name == "" {
				t.Fatalf("route(%q, %q) = %+v without a key name", method, path, got)
			}
		}
	})
}

// Test doubles of the interfaces this package declares for its consumers'
// implementations (Keys, Verifier, DataAuthorizer): the vault echoes what
// it is given, so that every decoded value also passes the renderers.

const (
	fuzzTenant = "11111111-1111-4111-8111-111111111111"
	fuzzHost   = "kv1.vault.test"
)

type stubVerifier struct{}

func (stubVerifier) Verify(context.Context, string, identity.Surface) (identity.Principal, error) {
	return identity.Principal{TenantID: fuzzTenant, ObjectID: "22222222-2222-4222-8222-222222222222", AppID: "app", Type: identity.AppPrincipal}, nil
}

type allowAll struct{}

func (allowAll) CheckData(context.Context, rbac.Principal, string, resourceid.ID) error { return nil }

// stubKeys is the test double of Keys.
type stubKeys struct {
	imported []jwk.Key // what ImportKey was given, to check it is wiped afterwards
}

const stubVersion = "0123456789abcdef0123456789abcdef"

func (s *stubKeys) key(v, name string) vault.Key {
	now := time.Unix(1_700_000_000, 0).UTC()
	return vault.Key{KeyProperties: vault.KeyProperties{Ref: vault.KeyRef{Vault: v, Name: name, Version: stubVersion}, Type: "EC",
		Attributes: vault.KeyAttributes{Enabled: true, Created: now, Updated: now, RecoveryLevel: "Recoverable+Purgeable", RecoverableDays: 90}},
		JWK: jwk.Key{Kty: "EC", Crv: "P-256", X: bytes.Repeat([]byte{1}, 32), Y: bytes.Repeat([]byte{2}, 32), KeyOps: []string{"sign", "verify"}}}
}

func (s *stubKeys) Vault(_ context.Context, name string) (vault.Vault, error) {
	return vault.Vault{Name: name, TenantID: fuzzTenant, SubscriptionID: "33333333-3333-4333-8333-333333333333", ResourceGroup: "rg",
		EnableRbacAuthorization: true, EnableSoftDelete: true, SoftDeleteRetentionInDays: 90}, nil
}

func (s *stubKeys) CreateKey(_ context.Context, _ directory.Caller, v, name string, spec vault.KeySpec) (vault.Key, error) {
	k := s.key(v, name)
	k.Type, k.JWK.Kty, k.JWK.Crv, k.JWK.KeyOps, k.Tags = spec.Type, spec.Type, spec.Curve, spec.Ops, spec.Tags
	k.Attributes.NotBefore, k.Attributes.Expires = spec.NotBefore, spec.Expires
	if spec.Enabled != nil {
		k.Attributes.Enabled = *spec.Enabled
	}
	return k, nil
}

func (s *stubKeys) ImportKey(_ context.Context, _ directory.Caller, v, name string, in vault.KeyImport) (vault.Key, error) {
	s.imported = append(s.imported, in.Key)
	k := s.key(v, name)
	k.JWK, k.Tags = in.Key.Strip(), in.Tags
	k.Attributes.NotBefore, k.Attributes.Expires = in.NotBefore, in.Expires
	return k, nil
}

func (s *stubKeys) GetKey(_ context.Context, v, name, _ string) (vault.Key, error) {
	return s.key(v, name), nil
}

func (s *stubKeys) page(v string) vault.KeyPage {
	return vault.KeyPage{Items: []vault.KeyProperties{s.key(v, "k1").KeyProperties}, Next: "k1"}
}

func (s *stubKeys) ListKeys(_ context.Context, v, _ string, _ int) (vault.KeyPage, error) {
	return s.page(v), nil
}

func (s *stubKeys) ListKeyVersions(_ context.Context, v, _, _ string, _ int) (vault.KeyPage, error) {
	return s.page(v), nil
}

func (s *stubKeys) ListDeletedKeys(_ context.Context, v, _ string, _ int) (vault.KeyPage, error) {
	return s.page(v), nil
}

func (s *stubKeys) UpdateKey(_ context.Context, _ directory.Caller, v, name, _ string, u vault.KeyUpdate) (vault.Key, error) {
	k := s.key(v, name)
	k.Tags, k.Attributes.NotBefore, k.Attributes.Expires = u.Tags, u.NotBefore, u.Expires
	if u.Ops != nil {
		k.JWK.KeyOps = u.Ops
	}
	return k, nil
}

func (s *stubKeys) deleted(v, name string) vault.Key {
	k := s.key(v, name)
	d := time.Unix(1_700_000_000, 0).UTC()
	k.Deleted = &vault.KeyDeletion{DeletedDate: d, ScheduledPurgeDate: d.Add(90 * 24 * time.Hour)}
	return k
}

func (s *stubKeys) DeleteKey(_ context.Context, _ directory.Caller, v, name string) (vault.Key, error) {
	return s.deleted(v, name), nil
}

func (s *stubKeys) GetDeletedKey(_ context.Context, v, name string) (vault.Key, error) {
	return s.deleted(v, name), nil
}

func (s *stubKeys) RecoverDeletedKey(_ context.Context, _ directory.Caller, v, name string) (vault.Key, error) {
	return s.key(v, name), nil
}

func (s *stubKeys) PurgeDeletedKey(context.Context, directory.Caller, string, string) error {
	return nil
}

func (s *stubKeys) BackupKey(context.Context, string, string) ([]byte, error) {
	return []byte("a backup blob"), nil
}

func (s *stubKeys) RestoreKey(_ context.Context, _ directory.Caller, v string, blob []byte) (vault.Key, error) {
	return s.key(v, "restored"), nil
}

func (s *stubKeys) op(v, name, version string, b []byte) vault.OpResult {
	return vault.OpResult{Ref: vault.KeyRef{Vault: v, Name: name, Version: stubVersion}, Value: append([]byte{0}, b...)}
}

func (s *stubKeys) Encrypt(_ context.Context, v, name, version, _ string, p []byte) (vault.OpResult, error) {
	return s.op(v, name, version, p), nil
}

func (s *stubKeys) Decrypt(_ context.Context, v, name, _, _ string, c []byte) (vault.PlainResult, error) {
	return vault.PlainResult{Ref: vault.KeyRef{Vault: v, Name: name, Version: stubVersion}, Value: secret.Copy(c)}, nil
}

func (s *stubKeys) WrapKey(_ context.Context, v, name, version, _ string, k []byte) (vault.OpResult, error) {
	return s.op(v, name, version, k), nil
}

func (s *stubKeys) UnwrapKey(_ context.Context, v, name, _, _ string, w []byte) (vault.PlainResult, error) {
	return vault.PlainResult{Ref: vault.KeyRef{Vault: v, Name: name, Version: stubVersion}, Value: secret.Copy(w)}, nil
}

func (s *stubKeys) Sign(_ context.Context, v, name, version, _ string, d []byte) (vault.OpResult, error) {
	return s.op(v, name, version, d), nil
}

func (s *stubKeys) Verify(_ context.Context, v, name, _, _ string, d, sig []byte) (vault.VerifyResult, error) {
	return vault.VerifyResult{Ref: vault.KeyRef{Vault: v, Name: name, Version: stubVersion}, Valid: bytes.Equal(d, sig)}, nil
}

func (s *stubKeys) RotateKey(_ context.Context, _ directory.Caller, v, name string) (vault.Key, error) {
	return s.key(v, name), nil
}

func (s *stubKeys) GetRotationPolicy(context.Context, string, string) (vault.RotationPolicy, error) {
	return vault.RotationPolicy{LifetimeActions: []vault.LifetimeAction{{TimeBeforeExpiry: "P30D", Type: "Notify"}}}, nil
}

func (s *stubKeys) SetRotationPolicy(_ context.Context, _ directory.Caller, _, _ string, p vault.RotationPolicy) (vault.RotationPolicy, error) {
	p.Created = time.Unix(1_700_000_000, 0).UTC()
	p.Updated = p.Created
	return p, nil
}

var _ Keys = (*stubKeys)(nil)

func newStubAPI(keys *stubKeys) *API {
	return New(Options{Verifier: stubVerifier{}, RBAC: allowAll{}, Keys: keys, PublicURL: "https://login.test",
		VaultDNSSuffix: "vault.test", VaultResource: "https://vault.test"})
}

// bodyRoutes are the operations that read a body.
var bodyRoutes = []struct{ method, path string }{
	{"POST", "/keys/k1/create"},
	{"PUT", "/keys/k1"},
	{"PATCH", "/keys/k1/"},
	{"PATCH", "/keys/k1/" + stubVersion},
	{"POST", "/keys/restore"},
	{"PUT", "/keys/k1/rotationpolicy"},
	{"POST", "/keys/k1/encrypt"},
	{"POST", "/keys/k1/" + stubVersion + "/decrypt"},
	{"POST", "/keys/k1/sign"},
	{"POST", "/keys/k1/" + stubVersion + "/verify"},
	{"POST", "/keys/k1/wrapkey"},
	{"POST", "/keys/k1/unwrapkey"},
	{"POST", "/keys/k1/release"},
	{"POST", "/rng"},
}

var contentTypes = []string{"application/json", "", "text/plain", "application/json; charset=utf-8", "application/merge-patch+json"}

// serveBody sends body through the whole handler stack and checks the
// answer: a 2xx with JSON (or an empty 204), or a 4xx in AKV's format.
func serveBody(t *testing.T, a *API, method, path, contentType string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "https://"+fuzzHost+path+"?api-version=2025-07-01", bytes.NewReader(body))
	r.Header.Set("Authorization", "Bearer t")
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	a.ServeHTTP(w, r)
	switch {
	case w.Code >= 200 && w.Code < 300:
		if w.Code != http.StatusNoContent && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s %q = %d with a body that is not JSON: %q", method, path, body, w.Code, w.Body.Bytes())
		}
	case w.Code >= 400 && w.Code < 500:
		var e Body
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Fatalf("%s %s %q = %d, not in AKV's error format: %q", method, path, body, w.Code, w.Body.Bytes())
		}
	default:
		t.Fatalf("%s %s %q = %d %s; want 2xx or 4xx", method, path, body, w.Code, w.Body.Bytes())
	}
	return w
}

// FuzzDecodeCrypto sends arbitrary bodies to every operation that reads
// one, through routing, authentication, authorization, decoding and
// rendering, with a vault that accepts everything: nothing may panic or
// answer 5xx.
func FuzzDecodeCrypto(f *testing.F) {
	for _, s := range []string{
		`{"alg":"RSA-OAEP-256","value":"AQAB"}`,
		`{"alg":"ES256","value":"AA","digest":"AA"}`,
		`{"alg":"ES256","value":"AA==","digest":"A+/="}`,
		`{"alg":"","value":""}`,
		`{"alg":7,"value":[1]}`,
		`{"kty":"EC","crv":"P-256","key_ops":["sign"],"attributes":{"nbf":1,"exp":-9223372036854775808,"enabled":false},"tags":{"a":"b"}}`,
		`{"kty":"RSA","key_size":2048,"public_exponent":65537,"attributes":{"exp":9223372036854775807}}`,
		`{"key":{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQ","p":"AQ","q":"AQ"},"Hsm":true,"tags":{"":"\u0000"}}`,
		`{"key":{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"AA","key_ops":["sign","verify"]}}`,
		`{"key":{"n":"***"}}`,
		`{"key_ops":[],"attributes":null,"tags":null}`,
		`{"value":"b3BhcXVl"}`,
		`{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"rotate"}}],"attributes":{"expiryTime":"P90D"}}`,
		`{"lifetimeActions":[{}],"attributes":{"created":"x"}}`,
		`{"count":16}`,
		`{"target":"eyJ","enc":"CKM_RSA_AES_KEY_WRAP"}`,
		`{"alg":"ES256","value":"AA"} trailing`,
		`{"alg":"ES256","value":"AA",}`,
		`[]`, `null`, `""`, `0`, `{`, `{"a":{"b":{"c":{"d":[[[[[]]]]]}}}}`, "\xff\xfe", ``,
	} {
		for i := range bodyRoutes {
			f.Add(uint8(i), uint8(0), []byte(s))
		}
	}
	f.Add(uint8(0), uint8(1), []byte(`{"kty":"EC"}`))
	f.Add(uint8(6), uint8(2), []byte(`{"alg":"RSA-OAEP","value":"AA"}`))
	f.Fuzz(func(t *testing.T, route, ct uint8, body []byte) {
		rt := bodyRoutes[int(route)%len(bodyRoutes)]
		serveBody(t, newStubAPI(&stubKeys{}), rt.method, rt.path, contentTypes[int(ct)%len(contentTypes)], body)
	})
}

// TestImportWipesPrivateKey: the private members decoded from an import
// request are wiped once the vault has the key (Keys.ImportKey leaves that
// to its caller).
func TestImportWipesPrivateKey(t *testing.T) {
	keys := &stubKeys{}
	w := serveBody(t, newStubAPI(keys), "PUT", "/keys/k1", "application/json",
		[]byte(`{"key":{"kty":"EC","crv":"P-256","x":"AQ","y":"AQ","d":"c2VjcmV0LXNjYWxhcg"}}`))
	if w.Code != http.StatusOK || len(keys.imported) != 1 {
		t.Fatalf("import = %d %s", w.Code, w.Body.Bytes())
	}
	if strings.Contains(w.Body.String(), `"d"`) {
		t.Errorf("the response carries d: %s", w.Body.Bytes())
	}
	if d := keys.imported[0].D.Reveal(); len(d) == 0 || !bytes.Equal(d, make([]byte, len(d))) {
		t.Errorf("the decoded private scalar is still in memory after the request: %d non-zero bytes", len(bytes.Trim(d, "\x00")))
	}
}

// TestStubStack checks a few answers of the handler stack end to end, so
// that the fuzz target's oracle is known to see successes too.
func TestStubStack(t *testing.T) {
	a := newStubAPI(&stubKeys{})
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/keys/k1/sign", `{"alg":"ES256","value":"AQ"}`, 200, `"kid":"https://` + fuzzHost + `/keys/k1/` + stubVersion + `","value":"AAE"`},
		{"POST", "/keys/k1/verify", `{"alg":"ES256","value":"AQ","digest":"AQ"}`, 200, `{"value":true}`},
		{"POST", "/keys/k1/decrypt", `{"alg":"RSA-OAEP","value":"AQ=="}`, 200, `"value":"AQ"`},
		{"POST", "/keys/k1/sign", `{"value":"AQ"}`, 400, `"code":"BadParameter"`},
		{"POST", "/keys/k1/sign", `{"alg":"ES256","value":"A*"}`, 400, `base64url`},
		{"POST", "/keys/k1/create", `{"kty":"EC","crv":"P-256","tags":{"t":"v"},"attributes":{"exp":1900000000}}`, 200, `"exp":1900000000`},
		{"PUT", "/keys/k1/rotationpolicy", `{"lifetimeActions":[{"trigger":{"timeAfterCreate":"P30D"},"action":{"type":"Rotate"}}]}`, 200,
			`"id":"https://` + fuzzHost + `/keys/k1/rotationpolicy"`},
		{"POST", "/rng", `{"count":16}`, 400, `Managed HSM`},
		{"POST", "/keys/k1/release", `{"target":"x"}`, 400, `not supported`},
		{"DELETE", "/deletedkeys/k1", ``, 204, ``},
		{"GET", "/keys", ``, 200, `"nextLink":"https://` + fuzzHost + `/keys?%24skiptoken=k1\u0026api-version=2025-07-01\u0026maxresults=25"`},
		{"GET", "/keys/k1/frobnicate/x/y", ``, 400, `not part of the Key Vault keys API`},
	} {
		w := serveBody(t, a, tc.method, tc.path, "application/json", []byte(tc.body))
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s %s %s = %d %s; want %d with %s", tc.method, tc.path, tc.body, w.Code, w.Body.Bytes(), tc.status, tc.want)
		}
	}
}
