package keyprovider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
)

// call is one root key operation, as its error messages name it.
type call struct {
	op              string // the AKV operation: get, wrapKey, unwrapKey
	appID, tenantID string
	ref             keyRef
	timeout         time.Duration
}

// who names the workload identity the way a tenant admin knows it.
func (c call) who() string {
	for _, fp := range directory.FirstPartyApps {
		if strings.EqualFold(fp.AppID, c.appID) {
			return fp.DisplayName + " (" + fp.AppID + ")"
		}
	}
	return "application " + clip(c.appID)
}

// Class-to-kind: what a surface that only knows errkind makes of a key
// error. A revocation is the customer's doing; a transient failure is a
// dependency's.
var classKinds = map[dep.Failure]errkind.Kind{
	dep.Transient:    errkind.Unavailable,
	dep.AccessDenied: errkind.PermissionDenied,
	dep.KeyDisabled:  errkind.FailedPrecondition,
	dep.KeyExpired:   errkind.FailedPrecondition,
	dep.NotFound:     errkind.NotFound,
}

// fail builds the key error: msg is for the customer (what failed and what
// to check), detail says technically what happened, cause is kept for
// logs. None of them ever holds key material or a token.
func (c call) fail(class dep.Failure, msg, detail string, cause error) *dep.KeyError {
	return &dep.KeyError{Class: class, KeyID: c.ref.id(), Message: msg,
		Err: &errkind.Error{Kind: classKinds[class], Code: class.String(), Msg: detail, Err: cause}}
}

// misuse is a request refused before the vault is called because the
// caller's input is wrong: errkind.Invalid, and Transient, since it says
// nothing about the customer's key.
func (c call) misuse(msg, detail string) *dep.KeyError {
	return &dep.KeyError{Class: dep.Transient, KeyID: c.ref.id(), Message: msg,
		Err: &errkind.Error{Kind: errkind.Invalid, Code: dep.Transient.String(), Msg: detail}}
}

// classify turns a failure of the vault call into a *dep.KeyError. Only
// answers that can only come from a deliberate change by the customer
// (a refused identity, a disabled, expired, missing or deleted key or
// vault) are revocations; anything else is Transient, so that a failing
// dependency is never taken for a revocation.
func classify(c call, err error) *dep.KeyError {
	if re, ok := errors.AsType[*azcore.ResponseError](err); ok {
		return classifyResponse(c, re)
	}
	key, vault, who := c.ref.id(), c.ref.vault, c.who()
	if te, ok := errors.AsType[*tokenError](err); ok {
		switch errkind.KindOf(te.err) {
		case errkind.PermissionDenied, errkind.Unauthenticated, errkind.NotFound:
			return c.fail(dep.AccessDenied, fmt.Sprintf("%s cannot act in tenant %s, so it cannot use key %s: %s Its service principal must exist and be enabled in the tenant (New-AzADServicePrincipal -ApplicationId %s).",
				who, c.tenantID, key, errkind.Public(te.err), c.appID), "the token service refused", te.err)
		}
		return c.fail(dep.Transient, fmt.Sprintf("%s could not get an access token in tenant %s to use key %s; this is not a revocation, retry later.",
			who, c.tenantID, key), "the token service failed", te.err)
	}
	if fe, ok := errors.AsType[*foreignTenantError](err); ok {
		return c.fail(dep.AccessDenied, fmt.Sprintf("Vault %s belongs to tenant %s, not to tenant %s: %s cannot use key %s there. A root key must be in a vault of the organization's own tenant.",
			vault, fe.vaultTenant, c.tenantID, who, key), "the vault trusts another tenant", fe)
	}
	if re, ok := errors.AsType[*resourceError](err); ok {
		return c.fail(dep.Transient, fmt.Sprintf("Vault %s asked for a token this service does not give, so key %s could not be used; this is not a revocation.",
			vault, key), "the vault's challenge was refused", re)
	}
	if de, ok := errors.AsType[*net.DNSError](err); ok && de.IsNotFound {
		return c.fail(dep.NotFound, fmt.Sprintf("Vault %s does not exist: its host name %s does not resolve, so key %s cannot be used. A deleted vault can be recovered (Undo-AzKeyVaultRemoval) during its retention period.",
			vault, c.ref.host, key), "the vault's host name does not resolve", err)
	}
	var reason string
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		reason = fmt.Sprintf("did not answer in time (a call may take at most %s)", c.timeout)
	case errors.Is(err, context.Canceled):
		reason = "was not waited for: the request was cancelled"
	case isCertificateError(err):
		reason = "presented a TLS certificate this service does not trust"
	default:
		reason = "could not be reached"
	}
	return c.fail(dep.Transient, fmt.Sprintf("Vault %s %s, so key %s could not be used (%s); this is not a revocation, retry later.",
		vault, reason, key, c.op), "the vault call failed", err)
}

func isCertificateError(err error) bool {
	_, a := errors.AsType[*tls.CertificateVerificationError](err)
	_, b := errors.AsType[x509.UnknownAuthorityError](err)
	_, h := errors.AsType[x509.HostnameError](err)
	_, i := errors.AsType[x509.CertificateInvalidError](err)
	return a || b || h || i
}

// akvBody is AKV's error body; innererror may nest.
type akvBody struct {
	Error *akvError `json:"error"`
}

type akvError struct {
	Code       string    `json:"code"`
	Message    string    `json:"message"`
	InnerError *akvError `json:"innererror"`
}

// maxInner bounds how deep innererror is followed.
const maxInner = 8

// errorCodes returns the error code and every nested innererror code of
// an AKV error answer, and its message.
func errorCodes(re *azcore.ResponseError) ([]string, string) {
	var codes []string
	var msg string
	if re.RawResponse != nil {
		if raw, err := runtime.Payload(re.RawResponse); err == nil {
			var b akvBody
			if json.Unmarshal(raw, &b) == nil && b.Error != nil {
				msg = b.Error.Message
				for e, i := b.Error, 0; e != nil && i < maxInner; e, i = e.InnerError, i+1 {
					if e.Code != "" {
						codes = append(codes, e.Code)
					}
				}
			}
		}
	}
	if re.ErrorCode != "" && !slices.Contains(codes, re.ErrorCode) {
		codes = append([]string{re.ErrorCode}, codes...)
	}
	return codes, msg
}

// classifyResponse maps an AKV error answer. Codes decide before the
// status: AKV answers a disabled or expired key with 403, like an access
// refusal, and only the innererror tells them apart.
func classifyResponse(c call, re *azcore.ResponseError) *dep.KeyError {
	codes, akvMsg := errorCodes(re)
	has := func(want ...string) bool {
		return slices.ContainsFunc(codes, func(code string) bool {
			return slices.ContainsFunc(want, func(w string) bool { return strings.EqualFold(code, w) })
		})
	}
	detail := fmt.Sprintf("vault %s answered %s %d %s", c.ref.vault, c.op, re.StatusCode, strings.Join(codes, "/"))
	if akvMsg != "" {
		detail += ": " + clip(akvMsg)
	}
	if id := re.RawResponse; id != nil && id.Header.Get("x-ms-request-id") != "" {
		detail += " (x-ms-request-id " + clip(id.Header.Get("x-ms-request-id")) + ")"
	}
	key, vault, who := c.ref.id(), c.ref.vault, c.who()
	st := re.StatusCode
	switch {
	case has("KeyDisabled"):
		return c.fail(dep.KeyDisabled, fmt.Sprintf("Key %s is disabled, so %s cannot use it. A key administrator of vault %s must enable it again (Update-AzKeyVaultKey -Enable $true) for the data it protects to be readable.",
			key, who, vault), detail, nil)
	case has("KeyExpired", "KeyNotYetValid"):
		return c.fail(dep.KeyExpired, fmt.Sprintf("Key %s is expired or not yet valid, so %s cannot %s with it. A key administrator of vault %s must set its activation and expiry dates so that it is valid now.",
			key, who, c.op, vault), detail, nil)
	case has("VaultNotFound"):
		return c.fail(dep.NotFound, fmt.Sprintf("Vault %s does not exist, so key %s cannot be used. A deleted vault can be recovered (Undo-AzKeyVaultRemoval) during its retention period; otherwise the policy must use a key of an existing vault.",
			vault, key), detail, nil)
	case st == http.StatusNotFound || has("KeyNotFound"):
		return c.fail(dep.NotFound, fmt.Sprintf("Key %s was not found in vault %s: it was deleted, or its name or version is wrong. A deleted key can be recovered (Undo-AzKeyVaultKeyRemoval) during the vault's retention period.",
			key, vault), detail, nil)
	case st == http.StatusUnauthorized:
		return c.fail(dep.AccessDenied, fmt.Sprintf("Vault %s did not accept the token of %s from tenant %s, so key %s cannot be used. The vault must belong to tenant %s and the application's service principal must exist there.",
			vault, who, c.tenantID, key, c.tenantID), detail, nil)
	case st == http.StatusForbidden && has("OperationNotAllowed"):
		return c.fail(dep.AccessDenied, fmt.Sprintf("Key %s does not permit %s (see its key_ops), so %s cannot use it. A key administrator of vault %s must allow wrapKey and unwrapKey on it.",
			key, c.op, who, vault), detail, nil)
	case st == http.StatusForbidden:
		return c.fail(dep.AccessDenied, fmt.Sprintf("%s may not use key %s: vault %s refused %s. Assign the role Key Vault Crypto Service Encryption User to %s on vault %s, or grant it the key permissions get, wrapKey and unwrapKey in the vault's access policy.",
			who, key, vault, c.op, who, vault), detail, nil)
	case st == http.StatusRequestTimeout || st == http.StatusTooManyRequests || st >= 500:
		return c.fail(dep.Transient, fmt.Sprintf("Vault %s is unavailable or throttling (%d), so key %s could not be used (%s); this is not a revocation, retry later.",
			vault, st, key, c.op), detail, nil)
	}
	return c.fail(dep.Transient, fmt.Sprintf("Vault %s refused %s with key %s (%d %s); this service does not take that for a revocation.",
		vault, c.op, key, st, strings.Join(codes, "/")), detail, nil)
}
