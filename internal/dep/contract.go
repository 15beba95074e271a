package dep

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// This file is the contract between dep, the workloads that keep data under
// its policies (workload/mail, workload/files, workload/encryption) and the
// key provider that reaches root keys (keyprovider). The workloads declare
// the subset they use as their own interfaces; *Service satisfies them.

// Kind is the type of a data encryption policy.
type Kind string

// Kinds of policy.
const (
	// M365 is a multi-workload policy (M365DataAtRestEncryptionPolicy): one
	// assigned per tenant at a time; no purge.
	M365 Kind = "M365DataAtRest"
	// Exchange is an Exchange mailbox policy (DataEncryptionPolicy): up to 50
	// per tenant, assigned per mailbox; purgeable.
	Exchange Kind = "Exchange"
	// SharePoint is a SharePoint/OneDrive geo policy: one per geo; its policy
	// key is the tenant intermediate key (TIK); purgeable.
	SharePoint Kind = "SharePoint"
	// ServiceManaged is the operator-held default of a tenant's workload, used
	// when no customer policy applies (Microsoft-managed keys in the seed).
	ServiceManaged Kind = "ServiceManaged"
)

// Workload names what a scope key protects; it selects the service-managed
// default and the workload identity that calls the vault.
type Workload string

// Workloads.
const (
	Mail       Workload = "Exchange"   // mailboxes
	Files      Workload = "SharePoint" // sites and files in geos
	Encryption Workload = "Encryption" // the general encryption API (scopes)
)

// PolicyRef names one version of one policy key. Workloads store it beside
// every scope key they wrapped, compare it with the effective ref to know
// what must be rewrapped, and report it (DataEncryptionPolicyID).
type PolicyRef struct {
	TenantID string `json:"tenantId"`
	PolicyID string `json:"policyId"`
	Kind     Kind   `json:"kind"`
	// KeyVersion is the policy key's version: 1 at creation, +1 on every
	// Refresh, Replace or SharePoint roll.
	KeyVersion int `json:"keyVersion"`
}

// Same reports whether r and o are the same version of the same policy key.
func (r PolicyRef) Same(o PolicyRef) bool {
	return r.TenantID == o.TenantID && r.PolicyID == o.PolicyID && r.KeyVersion == o.KeyVersion
}

// IsCustomer reports whether r is a customer policy (not service-managed).
func (r PolicyRef) IsCustomer() bool { return r.Kind != ServiceManaged && r.Kind != "" }

// Purpose says why a key is needed. User requests fail when the customer
// has revoked both root keys; system work (re-encryption, moves, indexing)
// may still use the availability key of an Exchange or multi-workload
// policy until it is purged.
type Purpose struct {
	System    bool
	RequestID string
}

// Failure classifies why a root key operation failed; the unwrap rules
// depend on it (customer-key-spec.md §d.4).
type Failure int

// Failure classes.
const (
	// Transient: the vault is unreachable, slow, throttling or failing (5xx).
	Transient Failure = iota + 1
	// AccessDenied: the workload identity may not use the key (role or
	// access policy removed, service principal deleted).
	AccessDenied
	// KeyDisabled: the key or version is disabled.
	KeyDisabled
	// KeyExpired: the key is expired or not yet valid.
	KeyExpired
	// NotFound: the vault, key or version does not exist (or was deleted).
	NotFound
)

func (f Failure) String() string {
	switch f {
	case Transient:
		return "Transient"
	case AccessDenied:
		return "AccessDenied"
	case KeyDisabled:
		return "KeyDisabled"
	case KeyExpired:
		return "KeyExpired"
	case NotFound:
		return "NotFound"
	}
	return fmt.Sprintf("Failure(%d)", int(f))
}

// Revoked reports whether the failure is a deliberate customer action
// (anything but Transient).
func (f Failure) Revoked() bool { return f != Transient }

// KeyError is a classified failure of a root key operation. Message is safe
// to show (it names the key and what to fix); Err is the cause, for logs.
type KeyError struct {
	Class   Failure
	KeyID   string
	Message string
	Err     error
}

func (e *KeyError) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *KeyError) Unwrap() error { return e.Err }

// ClassOf returns the failure class of err, or Transient when err is not a
// *KeyError (an unclassified failure is never taken for a revocation).
func ClassOf(err error) Failure {
	var ke *KeyError
	if errors.As(err, &ke) {
		return ke.Class
	}
	return Transient
}

// RootKeyInfo describes a root key version as the vault reports it.
type RootKeyInfo struct {
	// KeyID is the versioned key identifier
	// (https://{vault}.{suffix}/keys/{name}/{version}).
	KeyID         string
	Kty           string // RSA or RSA-HSM
	Size          int    // modulus bits
	Ops           []string
	Enabled       bool
	NotBefore     *time.Time
	Expires       *time.Time
	RecoveryLevel string
}

// WrappedRoot is a policy key wrapped by one root key version.
type WrappedRoot struct {
	KeyID string `json:"kid"` // versioned
	Alg   string `json:"alg"` // RSA-OAEP-256
	Value []byte `json:"value"`
}

// RootKeys reaches customer root keys through the vault API as a workload
// identity (the first-party application appID in tenantID), so that RBAC,
// key state and revocation apply exactly as for any caller. keyURI may be
// versionless (the current version is used) or versioned. Every failure is
// a *KeyError. Package keyprovider implements it.
type RootKeys interface {
	Describe(ctx context.Context, appID, tenantID, keyURI string) (RootKeyInfo, error)
	Wrap(ctx context.Context, appID, tenantID, keyURI string, key []byte) (WrappedRoot, error)
	Unwrap(ctx context.Context, appID, tenantID string, w WrappedRoot) ([]byte, error)
}
