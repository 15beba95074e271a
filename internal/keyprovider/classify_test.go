package keyprovider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/identity"
)

// akvAnswer is an error answer as azkeys turns it into an error.
func akvAnswer(t *testing.T, status int, body string, hdr ...string) error {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "https://kv1.vault.localhost:8443/keys/root1/wrapkey?api-version=7.6", nil)
	resp := &http.Response{StatusCode: status, Status: http.StatusText(status), Header: http.Header{}, Request: req,
		Body: io.NopCloser(strings.NewReader(body))}
	resp.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		resp.Header.Set(hdr[i], hdr[i+1])
	}
	return runtime.NewResponseError(resp)
}

func akvBodyOf(code, inner, msg string) string {
	if inner == "" {
		return fmt.Sprintf(`{"error":{"code":%q,"message":%q}}`, code, msg)
	}
	return fmt.Sprintf(`{"error":{"code":%q,"message":%q,"innererror":{"code":%q}}}`, code, msg, inner)
}

func TestClassify(t *testing.T) {
	c := call{op: "wrapKey", appID: directory.ExchangeAppID, tenantID: "tenant-1", timeout: 10 * time.Second,
		ref: keyRef{vault: "kv1", host: "kv1.vault.localhost:8443", name: "root1"}}
	denied := func(code string, aadsts int) error {
		return identity.NewError(errkind.PermissionDenied, code, aadsts, "The client application is missing service principal in the tenant.")
	}
	tests := []struct {
		name  string
		err   error
		class dep.Failure
		kind  errkind.Kind
		parts []string // in the message
	}{
		// Key state, told apart from refusals by the innererror.
		{"disabled", akvAnswer(t, 403, akvBodyOf("Forbidden", "KeyDisabled", "Operation wrapKey is not allowed on a disabled key.")),
			dep.KeyDisabled, errkind.FailedPrecondition, []string{"is disabled", "Update-AzKeyVaultKey -Enable $true", "kv1"}},
		{"disabled, nested deeper", akvAnswer(t, 403, `{"error":{"code":"Forbidden","innererror":{"code":"Other","innererror":{"code":"KeyDisabled"}}}}`),
			dep.KeyDisabled, errkind.FailedPrecondition, []string{"is disabled"}},
		{"expired", akvAnswer(t, 403, akvBodyOf("Forbidden", "KeyExpired", "Operation wrapKey is not allowed on an expired key.")),
			dep.KeyExpired, errkind.FailedPrecondition, []string{"expired or not yet valid", "cannot wrapKey"}},
		{"not yet valid", akvAnswer(t, 403, akvBodyOf("Forbidden", "KeyNotYetValid", "…")),
			dep.KeyExpired, errkind.FailedPrecondition, []string{"expired or not yet valid"}},
		// Refusals.
		{"RBAC", akvAnswer(t, 403, akvBodyOf("Forbidden", "ForbiddenByRbac", "Caller is not authorized to perform action on resource.")),
			dep.AccessDenied, errkind.PermissionDenied, []string{"Office 365 Exchange Online (" + directory.ExchangeAppID + ") may not use key",
				"Key Vault Crypto Service Encryption User", "access policy", "vault kv1"}},
		{"access policy", akvAnswer(t, 403, akvBodyOf("Forbidden", "AccessDenied", "The user, group or application does not have keys wrapKey permission.")),
			dep.AccessDenied, errkind.PermissionDenied, []string{"Key Vault Crypto Service Encryption User"}},
		{"403 without a body", akvAnswer(t, 403, ""), dep.AccessDenied, errkind.PermissionDenied, []string{"may not use key"}},
		{"key_ops", akvAnswer(t, 403, akvBodyOf("Forbidden", "OperationNotAllowed", "Operation wrapKey is not permitted on this key.")),
			dep.AccessDenied, errkind.PermissionDenied, []string{"does not permit wrapKey", "key_ops"}},
		{"token refused by the vault", akvAnswer(t, 401, akvBodyOf("Unauthorized", "", "AKV10032: Invalid issuer.")),
			dep.AccessDenied, errkind.PermissionDenied, []string{"did not accept the token", "tenant-1"}},
		{"no service principal", &tokenError{err: denied(identity.CodeUnauthorizedClient, 7000229)},
			dep.AccessDenied, errkind.PermissionDenied, []string{"cannot act in tenant tenant-1", "AADSTS7000229",
				"New-AzADServicePrincipal -ApplicationId " + directory.ExchangeAppID}},
		{"tenant gone", &tokenError{err: identity.NewError(errkind.NotFound, identity.CodeInvalidTenant, 90002, "Tenant not found.")},
			dep.AccessDenied, errkind.PermissionDenied, []string{"AADSTS90002"}},
		{"vault of another tenant", &foreignTenantError{vaultTenant: "tenant-2"},
			dep.AccessDenied, errkind.PermissionDenied, []string{"belongs to tenant tenant-2, not to tenant tenant-1"}},
		// Gone.
		{"key not found", akvAnswer(t, 404, akvBodyOf("KeyNotFound", "", "A key with (name/id) root1 was not found in this key vault.")),
			dep.NotFound, errkind.NotFound, []string{"was not found in vault kv1", "Undo-AzKeyVaultKeyRemoval"}},
		{"vault not found", akvAnswer(t, 404, akvBodyOf("VaultNotFound", "", "No vault named 'kv1' was found.")),
			dep.NotFound, errkind.NotFound, []string{"Vault kv1 does not exist", "Undo-AzKeyVaultRemoval"}},
		{"404 without a body", akvAnswer(t, 404, "not json"), dep.NotFound, errkind.NotFound, []string{"was not found"}},
		{"host does not resolve", &url.Error{Op: "Post", URL: "https://kv1.vault.localhost:8443/keys/root1/wrapkey",
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "kv1.vault.localhost", IsNotFound: true}}},
			dep.NotFound, errkind.NotFound, []string{"does not resolve"}},
		// Everything else is not a revocation.
		{"DNS server failing", &net.DNSError{Err: "server misbehaving", Name: "kv1.vault.localhost", IsTemporary: true},
			dep.Transient, errkind.Unavailable, []string{"could not be reached", "not a revocation"}},
		{"throttled", akvAnswer(t, 429, akvBodyOf("Throttled", "", "Rate limit exceeded."), "Retry-After", "5"),
			dep.Transient, errkind.Unavailable, []string{"unavailable or throttling (429)", "retry later"}},
		{"server error", akvAnswer(t, 500, akvBodyOf("InternalServerError", "", "…")), dep.Transient, errkind.Unavailable, []string{"(500)"}},
		{"unavailable", akvAnswer(t, 503, ""), dep.Transient, errkind.Unavailable, []string{"(503)"}},
		{"request timeout", akvAnswer(t, 408, ""), dep.Transient, errkind.Unavailable, []string{"(408)"}},
		{"bad request", akvAnswer(t, 400, akvBodyOf("BadParameter", "", "decryption failed")),
			dep.Transient, errkind.Unavailable, []string{"refused wrapKey", "400 BadParameter", "does not take that for a revocation"}},
		{"conflict", akvAnswer(t, 409, akvBodyOf("Conflict", "", "…")), dep.Transient, errkind.Unavailable, []string{"409 Conflict"}},
		{"timeout", fmt.Errorf("wrap: %w", context.DeadlineExceeded), dep.Transient, errkind.Unavailable, []string{"did not answer in time (a call may take at most 10s)"}},
		{"cancelled", context.Canceled, dep.Transient, errkind.Unavailable, []string{"cancelled"}},
		{"untrusted certificate", &url.Error{Op: "Post", URL: "https://kv1.vault.localhost/", Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}},
			dep.Transient, errkind.Unavailable, []string{"TLS certificate"}},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")},
			dep.Transient, errkind.Unavailable, []string{"could not be reached"}},
		{"token service down", &tokenError{err: errkind.Wrap(errkind.Unavailable, "the directory is unavailable; retry later", io.EOF)},
			dep.Transient, errkind.Unavailable, []string{"could not get an access token", "not a revocation"}},
		{"token service bug", &tokenError{err: errors.New("boom")}, dep.Transient, errkind.Unavailable, []string{"could not get an access token"}},
		{"odd challenge", &resourceError{scopes: "https://evil.example/.default"}, dep.Transient, errkind.Unavailable, []string{"asked for a token"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ke := classify(c, tc.err)
			if ke.Class != tc.class || ke.KeyID != c.ref.id() {
				t.Errorf("classify(%v) = class %v, key %s; want %v, %s", tc.err, ke.Class, ke.KeyID, tc.class, c.ref.id())
			}
			if k := errkind.KindOf(ke); k != tc.kind {
				t.Errorf("errkind.KindOf = %v, want %v", k, tc.kind)
			}
			if dep.ClassOf(fmt.Errorf("dep: %w", ke)) != tc.class {
				t.Errorf("dep.ClassOf of the wrapped error = %v, want %v", dep.ClassOf(ke), tc.class)
			}
			if !strings.Contains(ke.Message, c.ref.id()) {
				t.Errorf("message %q does not name the key", ke.Message)
			}
			for _, p := range tc.parts {
				if !strings.Contains(ke.Message, p) {
					t.Errorf("message %q lacks %q", ke.Message, p)
				}
			}
			if strings.Contains(ke.Error(), "\n") {
				t.Errorf("Error() spans lines: %q", ke.Error())
			}
		})
	}
}

// TestClassifyDetail: the error's cause names what the vault said, for the
// log, in one line.
func TestClassifyDetail(t *testing.T) {
	c := call{op: "unwrapKey", appID: directory.M365DAREAppID, tenantID: "t", ref: keyRef{vault: "kv1", host: "kv1.vault.localhost", name: "k"}}
	ke := classify(c, akvAnswer(t, 403, akvBodyOf("Forbidden", "ForbiddenByRbac", "Caller is not authorized: oid=abc."), "x-ms-request-id", "req-42"))
	want := "vault kv1 answered unwrapKey 403 Forbidden/ForbiddenByRbac: Caller is not authorized: oid=abc. (x-ms-request-id req-42)"
	if got := errkind.Public(ke); got != want {
		t.Errorf("detail = %q, want %q", got, want)
	}
	if !strings.Contains(ke.Message, "M365DataAtRestEncryption ("+directory.M365DAREAppID+")") {
		t.Errorf("message %q does not name the application", ke.Message)
	}
	unknown := classify(call{op: "get", appID: "11111111-2222-3333-4444-555555555555", ref: c.ref}, akvAnswer(t, 403, ""))
	if !strings.Contains(unknown.Message, "application 11111111-2222-3333-4444-555555555555") {
		t.Errorf("message %q does not name the unknown application by id", unknown.Message)
	}
}
