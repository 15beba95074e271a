package dep

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/envelope"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
)

var errClosed = errkind.New(errkind.Unavailable, "dep: the encryption policy service is shutting down")

// rootFailure is an unwrap that no root key answered: the policy and key
// version it was for and each root key's error.
type rootFailure struct {
	policy Policy
	kv     keyVersion
	errs   []error
}

// revoked reports whether every root key failed with a revocation class.
func (f *rootFailure) revoked() bool {
	for _, err := range f.errs {
		if !ClassOf(err).Revoked() {
			return false
		}
	}
	return true
}

// summary names each root key and its failure class, for messages and
// the audit log; never key material.
func (f *rootFailure) summary() string {
	parts := make([]string, len(f.errs))
	for i, err := range f.errs {
		kid := ""
		if i < len(f.kv.Roots) {
			kid = f.kv.Roots[i].KeyID
		}
		parts[i] = fmt.Sprintf("%s: %s", kid, ClassOf(err))
	}
	return strings.Join(parts, ", ")
}

// akUse is a use of the availability key, audited once the scope key it
// served is known.
type akUse struct {
	policy  Policy
	version int
	purpose Purpose
	why     string
}

// scopeAAD binds a scope key to its tenant and the caller's context.
func scopeAAD(tid string, aad []byte) []byte {
	b := make([]byte, 0, len("dep-scope-key\x00")+len(tid)+1+len(aad))
	b = append(b, "dep-scope-key\x00"...)
	b = append(b, tid...)
	b = append(b, 0)
	return append(b, aad...)
}

// WrapScopeKey seals a workload's scope key under the policy key version
// ref names, bound to ref's tenant and aad. Policies being purged take no
// new scope keys.
func (s *Service) WrapScopeKey(ctx context.Context, ref PolicyRef, key secret.Bytes, aad []byte) ([]byte, error) {
	tid, err := checkTenant(ref.TenantID)
	if err != nil {
		return nil, err
	}
	id := lower(ref.PolicyID)
	if !directory.IsGUID(id) || ref.KeyVersion < 1 {
		return nil, errkind.Errorf(errkind.Invalid, "dep: the policy reference %s/%d is not valid", ref.PolicyID, ref.KeyVersion)
	}
	if key.Len() == 0 {
		return nil, errkind.New(errkind.Invalid, "dep: no scope key to wrap")
	}
	var p Policy
	err = s.store.View(ctx, func(tx storage.Tx) error {
		_, err := storage.GetJSON(tx, policyKey(tid, id), &p)
		return err
	})
	switch {
	case errkind.Is(err, errkind.NotFound) || (err == nil && (p.State == Purged || ref.KeyVersion > p.KeyVersion)):
		return nil, errkind.Errorf(errkind.NotFound, "tenant %s has no policy %s with key version %d", tid, id, ref.KeyVersion).WithCode("PolicyNotFound")
	case err != nil:
		return nil, err
	case p.purgeStarted():
		return nil, errkind.Errorf(errkind.FailedPrecondition, "the %s is %s and takes no new data", p.label(), p.State).WithCode("PolicyPurgeRequested")
	}
	sealer, ak, err := s.sealerFor(ctx, tid, id, ref.KeyVersion, Purpose{RequestID: audit.MetaFrom(ctx).RequestID})
	if err != nil {
		return nil, err
	}
	blob := sealer.Seal(key.Reveal(), scopeAAD(tid, aad))
	if ak != nil {
		if err := s.recordAK(ctx, ak, blob); err != nil {
			return nil, err
		}
	}
	return blob, nil
}

// UnwrapScopeKey opens a scope key that WrapScopeKey sealed, with the same
// tenant and aad. The policy key comes from the cache, or from the root
// keys by the rules of the policy's kind (see the package doc); p decides
// whether the availability key may stand in for revoked root keys.
func (s *Service) UnwrapScopeKey(ctx context.Context, tenantID string, wrapped []byte, aad []byte, p Purpose) (secret.Bytes, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return secret.Bytes{}, err
	}
	id, v, err := envelope.Header(wrapped)
	if err != nil {
		return secret.Bytes{}, err
	}
	if !directory.IsGUID(id) || v < 1 || v > 1<<30 {
		return secret.Bytes{}, errkind.New(errkind.Invalid, "the wrapped scope key does not name an encryption policy").WithCode("MalformedCiphertext")
	}
	if p.RequestID == "" {
		p.RequestID = audit.MetaFrom(ctx).RequestID
	}
	sealer, ak, err := s.sealerFor(ctx, tid, id, int(v), p)
	if err != nil {
		return secret.Bytes{}, err
	}
	key, err := sealer.Open(wrapped, scopeAAD(tid, aad))
	if err != nil {
		return secret.Bytes{}, err
	}
	if ak != nil {
		if err := s.recordAK(ctx, ak, wrapped); err != nil {
			secret.Wipe(key)
			return secret.Bytes{}, err
		}
	}
	return secret.New(key), nil
}

// sealerFor returns the cipher of policy key version v: cached, or
// unwrapped by one shared flight, or (akUse non-nil) opened with the
// availability key for this one call, never cached.
func (s *Service) sealerFor(ctx context.Context, tid, id string, v int, p Purpose) (*envelope.Sealer, *akUse, error) {
	k := cacheKey{tenant: tid, policy: id, version: v}
	if e, refresh := s.cache.lookup(k); e != nil {
		if refresh {
			s.startRefresh(ctx, k, e)
		}
		return e.sealer, nil, nil
	}
	f, lead := s.cache.join(k)
	if f == nil {
		return nil, nil, errClosed
	}
	if lead {
		lctx, cancel := s.cache.detach(ctx, s.rootTTL)
		started := s.cache.goBackground(func() {
			defer cancel()
			f.ent, f.fail, f.err = s.load(lctx, k)
			s.cache.land(k, f)
		})
		if !started {
			cancel()
			f.err = errClosed
			s.cache.land(k, f)
		}
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, nil, errkind.Wrap(errkind.Unavailable, "dep: gave up waiting for the policy key", ctx.Err())
	}
	switch {
	case f.ent != nil:
		return f.ent.sealer, nil, nil
	case f.fail != nil:
		return s.fallback(ctx, f.fail, p)
	}
	return nil, nil, f.err
}

// startRefresh unwraps a cached key again in the background, before it
// expires, so that keys in use do not expire while the root keys answer.
func (s *Service) startRefresh(ctx context.Context, k cacheKey, old *entry) {
	rctx, cancel := s.cache.detach(ctx, s.rootTTL)
	started := s.cache.goBackground(func() {
		defer cancel()
		fresh, fail, err := s.load(rctx, k)
		if fail != nil {
			err = fmt.Errorf("no root key answered (%s): %w", fail.summary(), errors.Join(fail.errs...))
		}
		if err != nil {
			s.log.WarnContext(rctx, "dep: refreshing a cached policy key failed; it stops working when its cache entry expires unless a later refresh succeeds",
				"tenant", k.tenant, "policy", k.policy, "keyVersion", k.version, "err", err)
		}
		s.cache.refreshed(k, old, fresh)
	})
	if !started {
		cancel()
	}
}

// load reads policy key version k and unwraps it: with the operator key
// for a service-managed default, else from the root keys. A failure of
// every root key is a rootFailure, for the caller's fallback decision.
func (s *Service) load(ctx context.Context, k cacheKey) (*entry, *rootFailure, error) {
	var p Policy
	var kv keyVersion
	err := s.store.View(ctx, func(tx storage.Tx) error {
		if _, err := storage.GetJSON(tx, policyKey(k.tenant, k.policy), &p); err != nil {
			return err
		}
		var err error
		kv, err = loadVersion(tx, k.tenant, k.policy, k.version)
		return err
	})
	if errkind.Is(err, errkind.NotFound) || (err == nil && p.State == Purged) {
		return nil, nil, errkind.Errorf(errkind.NotFound,
			"the encryption policy %s (key version %d) of tenant %s does not exist or was purged; data sealed under it cannot be read",
			k.policy, k.version, k.tenant).WithCode("PolicyNotFound")
	}
	if err != nil {
		return nil, nil, err
	}
	var key secret.Bytes
	switch p.Kind {
	case ServiceManaged:
		key, err = s.unwrapOperator(ctx, p, kv)
	case SharePoint:
		var errs []error
		key, errs = s.unwrapHedged(ctx, p, kv.Roots)
		if key.IsZero() {
			return nil, &rootFailure{policy: p, kv: kv, errs: errs}, nil
		}
	default:
		var errs []error
		key, errs = s.unwrapInTurn(ctx, p, kv.Roots)
		if key.IsZero() {
			return nil, &rootFailure{policy: p, kv: kv, errs: errs}, nil
		}
	}
	if err != nil {
		return nil, nil, err
	}
	defer key.Wipe()
	sealer, err := envelope.NewSealer(key, p.ID, uint32(kv.Version))
	if err != nil {
		return nil, nil, err
	}
	return s.cache.newEntry(sealer, p.Kind), nil, nil
}

// unwrapInTurn asks the root keys one at a time in random order (Exchange
// and multi-workload policies): the first answer wins. errs is in the
// order of roots.
func (s *Service) unwrapInTurn(ctx context.Context, p Policy, roots []WrappedRoot) (secret.Bytes, []error) {
	app, _ := appOf(p.Kind)
	errs := make([]error, len(roots))
	for _, i := range rand.Perm(len(roots)) {
		key, err := s.roots.Unwrap(ctx, app, p.TenantID, roots[i])
		if err == nil && len(key) == envelope.KeySize {
			return secret.New(key), nil
		}
		if err == nil {
			secret.Wipe(key)
			err = &KeyError{Class: Transient, KeyID: roots[i].KeyID, Message: "the vault returned a key of the wrong size"}
		}
		errs[i] = err
	}
	return secret.Bytes{}, errs
}

// unwrapHedged asks the root keys as a hedged set (SharePoint): the first
// at once, each next one after HedgeDelay or as soon as the one before
// failed; the first answer wins and the others are cancelled. errs is in
// the order of roots.
func (s *Service) unwrapHedged(ctx context.Context, p Policy, roots []WrappedRoot) (secret.Bytes, []error) {
	app, _ := appOf(p.Kind)
	type result struct {
		i   int
		key []byte
		err error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan result, len(roots))
	order := rand.Perm(len(roots))
	started, received := 0, 0
	start := func() {
		i := order[started]
		started++
		go func() {
			key, err := s.roots.Unwrap(ctx, app, p.TenantID, roots[i])
			if err == nil && len(key) != envelope.KeySize {
				secret.Wipe(key)
				key, err = nil, &KeyError{Class: Transient, KeyID: roots[i].KeyID, Message: "the vault returned a key of the wrong size"}
			}
			results <- result{i, key, err}
		}()
	}
	errs := make([]error, len(roots))
	start()
	timer := time.NewTimer(s.hedge)
	defer timer.Stop()
	for received < len(roots) {
		select {
		case <-timer.C:
			if started < len(roots) {
				start()
				timer.Reset(s.hedge)
			}
		case r := <-results:
			received++
			if r.err == nil {
				// Late answers of the others are wiped as they arrive.
				go func(pending int) {
					for range pending {
						if late := <-results; late.err == nil {
							secret.Wipe(late.key)
						}
					}
				}(started - received)
				return secret.New(r.key), nil
			}
			errs[r.i] = r.err
			if started < len(roots) && started == received {
				start()
				timer.Reset(s.hedge)
			}
		}
	}
	return secret.Bytes{}, errs
}

// fallback decides what an Exchange or multi-workload unwrap does when no
// root key answered (spec §d.4): the availability key when any failure was
// transient, or for system work when all were revocations; otherwise, and
// always for SharePoint, a clear error.
func (s *Service) fallback(ctx context.Context, f *rootFailure, p Purpose) (*envelope.Sealer, *akUse, error) {
	pol := f.policy
	revoked := f.revoked()
	if pol.Kind == SharePoint {
		if revoked {
			return nil, nil, errkind.Wrap(errkind.PermissionDenied, fmt.Sprintf(
				"the customer revoked access to both root keys of the %s (%s); SharePoint never uses the availability key by itself: "+
					"restore Office 365 SharePoint Online's access to the keys, or ask the operator to restore the policy with new keys",
				pol.label(), f.summary()), errors.Join(f.errs...)).WithCode("RootKeysRevoked")
		}
		return nil, nil, errkind.Wrap(errkind.Unavailable, fmt.Sprintf(
			"no root key of the %s answered (%s); try again later", pol.label(), f.summary()), errors.Join(f.errs...)).WithCode("RootKeysUnavailable")
	}
	if revoked && !p.System && pol.Recovery == nil {
		_, appName := appOf(pol.Kind)
		return nil, nil, errkind.Wrap(errkind.PermissionDenied, fmt.Sprintf(
			"the customer revoked access to both root keys of the %s (%s); the data it protects cannot be read until %s may use a root key again "+
				"(Key Vault Crypto Service Encryption User on the key's vault)", pol.label(), f.summary(), appName),
			errors.Join(f.errs...)).WithCode("RootKeysRevoked")
	}
	key, err := s.unwrapAvailable(ctx, pol, f.kv)
	if err != nil {
		return nil, nil, err
	}
	defer key.Wipe()
	sealer, err := envelope.NewSealer(key, pol.ID, uint32(f.kv.Version))
	if err != nil {
		return nil, nil, err
	}
	why := "root keys unavailable"
	switch {
	case revoked && !p.System:
		why = "root keys lost; the policy is in recovery (" + pol.Recovery.Reason + ")"
	case revoked:
		why = "root keys revoked; system work"
	}
	return sealer, &akUse{policy: pol, version: f.kv.Version, purpose: p, why: why + " (" + f.summary() + ")"}, nil
}

// recordAK audits a use of the availability key in the tenant's log, with
// the policy id, the scope key version id (a digest of the wrapped scope
// key, which names it without revealing anything) and the request id.
func (s *Service) recordAK(ctx context.Context, u *akUse, scopeBlob []byte) error {
	sum := sha256.Sum256(scopeBlob)
	purpose := "user"
	if u.purpose.System {
		purpose = "system"
	}
	err := s.audit.Record(ctx, audit.Event{TenantID: u.policy.TenantID, Actor: systemActor, Action: ActivityAKFallback,
		Target: u.policy.ID, Result: audit.Success, RequestID: u.purpose.RequestID,
		Reason: fmt.Sprintf("%s: Policy Id %s, key version %d, Scope Key Version Id %s, %s request; %s",
			recordTypeAKFallback, u.policy.ID, u.version, hex.EncodeToString(sum[:8]), purpose, u.why)})
	if err != nil {
		return errkind.Wrap(errkind.Unavailable, "dep: the availability key was needed but its use could not be audited; try again", err)
	}
	return nil
}
