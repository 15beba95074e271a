package dep

import (
	"context"
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/envelope"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
)

// loadForChange reads a policy of kind k that may still change, with its
// storage version and newest key version.
func (s *Service) loadForChange(ctx context.Context, tid string, k Kind, identity string) (Policy, int64, keyVersion, error) {
	var p Policy
	var ver int64
	var kv keyVersion
	err := s.store.View(ctx, func(tx storage.Tx) error {
		var err error
		if p, ver, err = find(tx, tid, k, identity); err != nil {
			return err
		}
		kv, err = loadVersion(tx, tid, p.ID, p.KeyVersion)
		return err
	})
	if err != nil {
		return Policy{}, 0, keyVersion{}, err
	}
	if p.purgeStarted() {
		return Policy{}, 0, keyVersion{}, errkind.Errorf(errkind.FailedPrecondition, "the %s is %s and can no longer change", p.label(), p.State).
			WithCode("PolicyPurgeRequested")
	}
	return p, ver, kv, nil
}

// rootKeyOf unwraps the newest policy key from the root keys only: a
// change of keys must never rest on the availability key.
func (s *Service) rootKeyOf(ctx context.Context, p Policy, kv keyVersion) (secret.Bytes, error) {
	key, errs := s.unwrapInTurn(ctx, p, kv.Roots)
	if !key.IsZero() {
		return key, nil
	}
	f := &rootFailure{policy: p, kv: kv, errs: errs}
	kind := errkind.Unavailable
	if f.revoked() {
		kind = errkind.FailedPrecondition
	}
	_, appName := appOf(p.Kind)
	return secret.Bytes{}, errkind.Errorf(kind,
		"no root key of the %s could be unwrapped by %s (%s); restore its access to at least one of them first", p.label(), appName, f.summary()).
		WithCode("RootKeysUnusable")
}

// commitVersion stores key version kv as the newest of p (read at storage
// version ver), with p's other changes, and audits it.
func (s *Service) commitVersion(ctx context.Context, c directory.Caller, p Policy, ver int64, kv keyVersion, action, reason string) (Policy, error) {
	p.KeyVersion = kv.Version
	p.RootKeyIDs = rootIDs(kv.Roots)
	p.UpdatedAt = s.now().UTC()
	err := s.store.Update(ctx, func(tx storage.Tx) error {
		if err := storage.PutJSON(tx, versionKey(p.TenantID, p.ID, kv.Version), kv, storage.MustNotExist); err != nil {
			if errkind.Is(err, errkind.Conflict) {
				return versionConflict(p)
			}
			return err
		}
		if err := storage.PutJSON(tx, policyKey(p.TenantID, p.ID), p, ver); err != nil {
			if errkind.Is(err, errkind.Conflict) {
				return versionConflict(p)
			}
			return err
		}
		return s.audit.RecordTx(ctx, tx, audit.Event{TenantID: p.TenantID, Actor: actorOf(c, p.TenantID), Action: action, Target: p.ID,
			Result: audit.Success, Reason: reason})
	})
	if err != nil {
		return Policy{}, err
	}
	s.policyChanged(ctx, p.TenantID, p.ID)
	s.kick(p.TenantID)
	return p, nil
}

// Refresh makes a new key version of an M365 or Exchange policy: the same
// policy key, wrapped afresh under each root key's current version (after
// the customer added a version). Everything sealed under older versions
// still opens.
func (s *Service) Refresh(ctx context.Context, c directory.Caller, tenantID string, k Kind, identity string) (Policy, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return Policy{}, err
	}
	if k != M365 && k != Exchange {
		return Policy{}, errkind.Errorf(errkind.Invalid, "Refresh is for %s and %s policies; SharePoint keys roll with an update of one key", M365, Exchange)
	}
	if err := s.authorize(ctx, c, tid, k, actionRefresh); err != nil {
		return Policy{}, err
	}
	p, ver, kv, err := s.loadForChange(ctx, tid, k, identity)
	if err != nil {
		return Policy{}, err
	}
	key, err := s.rootKeyOf(ctx, p, kv)
	if err != nil {
		return Policy{}, err
	}
	defer key.Wipe()
	ak, err := s.loadAK(ctx, p)
	if err != nil {
		return Policy{}, err
	}
	defer ak.Wipe()
	next, err := s.wrapVersion(ctx, p, p.KeyVersion+1, p.KeyURIs, key, ak)
	if err != nil {
		return Policy{}, err
	}
	return s.commitVersion(ctx, c, p, ver, next, actionRefresh,
		fmt.Sprintf("key version %d wrapped by %s", next.Version, strings.Join(rootIDs(next.Roots), ", ")))
}

// Replace moves an M365 or Exchange policy to other root keys (the same
// checks as Create). It makes a new policy key, so that once the workloads
// have rewrapped their scopes the old root keys protect only what older
// key versions still hold.
func (s *Service) Replace(ctx context.Context, c directory.Caller, tenantID string, k Kind, identity string, keyURIs []string) (Policy, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return Policy{}, err
	}
	if k != M365 && k != Exchange {
		return Policy{}, errkind.Errorf(errkind.Invalid, "Replace is for %s and %s policies; SharePoint keys change with an update of one key", M365, Exchange)
	}
	if err := s.authorize(ctx, c, tid, k, actionReplace); err != nil {
		return Policy{}, err
	}
	uris, err := checkURIs(keyURIs, false)
	if err != nil {
		return Policy{}, err
	}
	p, ver, _, err := s.loadForChange(ctx, tid, k, identity)
	if err != nil {
		return Policy{}, err
	}
	if slices.EqualFunc(uris, p.KeyURIs, strings.EqualFold) {
		return Policy{}, errkind.Errorf(errkind.Invalid, "the %s already uses these root keys; to pick up new key versions, refresh it", p.label())
	}
	key, err := newPolicyKey()
	if err != nil {
		return Policy{}, err
	}
	defer key.Wipe()
	ak, err := s.loadAK(ctx, p)
	if err != nil {
		return Policy{}, err
	}
	defer ak.Wipe()
	next, err := s.wrapVersion(ctx, p, p.KeyVersion+1, uris, key, ak)
	if err != nil {
		return Policy{}, err
	}
	old := p.KeyURIs
	p.KeyURIs = uris
	return s.commitVersion(ctx, c, p, ver, next, actionReplace,
		fmt.Sprintf("root keys %s replaced by %s; key version %d", strings.Join(old, ", "), strings.Join(uris, ", "), next.Version))
}

// KeyTest is the outcome of testing one root key of a policy.
type KeyTest struct {
	KeyURI string `json:"keyUri"`
	// KeyID is the versioned key that wraps the newest key version.
	KeyID string `json:"keyId"`
	// Result is "Success" or "Failed".
	Result string `json:"result"`
	// Failure is the failure class (AccessDenied, KeyDisabled, …) when
	// Result is Failed.
	Failure string `json:"failure,omitempty"`
	Message string `json:"message,omitempty"`
}

// TestResult is the outcome of testing a policy's root keys.
type TestResult struct {
	PolicyID string    `json:"policyId"`
	Name     string    `json:"name"`
	Success  bool      `json:"success"`
	Keys     []KeyTest `json:"keys"`
}

// Test checks, live and as the workload identity, that every root key of
// an M365 or Exchange policy still unwraps the stored copy of the newest
// policy key, and still wraps and unwraps a test value with the key's
// current version (Test-M365DataAtRestEncryptionPolicy).
func (s *Service) Test(ctx context.Context, c directory.Caller, tenantID string, k Kind, identity string) (TestResult, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return TestResult{}, err
	}
	if k != M365 && k != Exchange {
		return TestResult{}, errkind.Errorf(errkind.Invalid, "Test is for %s and %s policies", M365, Exchange)
	}
	if err := s.authorize(ctx, c, tid, k, actionRead); err != nil {
		return TestResult{}, err
	}
	var p Policy
	var kv keyVersion
	err = s.store.View(ctx, func(tx storage.Tx) error {
		var err error
		if p, _, err = find(tx, tid, k, identity); err != nil {
			return err
		}
		if p.State == Purged {
			return errkind.Errorf(errkind.FailedPrecondition, "the %s was purged; it has no keys to test", p.label())
		}
		kv, err = loadVersion(tx, tid, p.ID, p.KeyVersion)
		return err
	})
	if err != nil {
		return TestResult{}, err
	}
	app, appName := appOf(k)
	out := TestResult{PolicyID: p.ID, Name: p.Name, Success: true, Keys: make([]KeyTest, 0, len(kv.Roots))}
	for i, w := range kv.Roots {
		kt := KeyTest{KeyID: w.KeyID, Result: "Success"}
		if i < len(p.KeyURIs) {
			kt.KeyURI = p.KeyURIs[i]
		}
		if err := s.probe(ctx, app, tid, kt.KeyURI, w); err != nil {
			kt.Result, kt.Failure, kt.Message = "Failed", ClassOf(err).String(), errkind.Public(keyProblem(appName, kt.KeyURI, err))
			out.Success = false
		}
		out.Keys = append(out.Keys, kt)
	}
	return out, nil
}

// probe unwraps the stored copy w and wraps and unwraps a random test
// value with uri; the first failure is returned as the root key's error.
func (s *Service) probe(ctx context.Context, app, tid, uri string, w WrappedRoot) error {
	key, err := s.roots.Unwrap(ctx, app, tid, w)
	if err != nil {
		return err
	}
	secret.Wipe(key)
	test, err := envelope.NewKey()
	if err != nil {
		return err
	}
	defer test.Wipe()
	tw, err := s.roots.Wrap(ctx, app, tid, uri, test.Reveal())
	if err != nil {
		return err
	}
	back, err := s.roots.Unwrap(ctx, app, tid, tw)
	if err != nil {
		return err
	}
	same := subtle.ConstantTimeCompare(back, test.Reveal()) == 1
	secret.Wipe(back)
	if !same {
		return &KeyError{Class: Transient, KeyID: tw.KeyID, Message: "the key unwrapped a different value than it wrapped"}
	}
	return nil
}
