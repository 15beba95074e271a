package dep_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/envelope"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/onboarding"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/vault"
)

// rsaPool hands out RSA-2048 keys, generated once per test binary: key
// generation under the race detector is slow, and the tests need a dozen.
var rsaPool struct {
	sync.Mutex
	keys []*rsa.PrivateKey
	next int
}

const rsaPoolSize = 8

func poolKey(t testing.TB) *rsa.PrivateKey {
	rsaPool.Lock()
	defer rsaPool.Unlock()
	if len(rsaPool.keys) < rsaPoolSize {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		rsaPool.keys = append(rsaPool.keys, k)
		return k
	}
	k := rsaPool.keys[rsaPool.next%rsaPoolSize]
	rsaPool.next++
	return k
}

// fakeRoots is a test double of the RootKeys boundary: real RSA-OAEP-256
// keys in memory, with key attributes and failures the test sets per key.
// keyprovider, which implements RootKeys over the real vault API, has its
// own tests against the real server; this double lets dep's tests drive
// every failure class, delays and counts.
type fakeRoots struct {
	t  testing.TB
	mu sync.Mutex
	// keys by versionless URI, lower case.
	keys map[string]*fakeKey
	// calls counts Unwrap calls by versionless URI.
	calls map[string]int
	// apps records the application of every call.
	apps []string
	// wrapped holds every plaintext wrapped, so a test can look for it on disk.
	wrapped [][]byte
	// inflight counts Unwrap calls that have not returned.
	inflight int
}

type fakeKey struct {
	uri      string // versionless
	info     dep.RootKeyInfo
	versions []fakeVersion
	// fail makes every operation fail with this class (0: none).
	fail dep.Failure
	// gate, when set, holds Unwrap until it is closed (or the context ends).
	gate chan struct{}
	// delay holds Unwrap this long (honouring the context).
	delay time.Duration
}

type fakeVersion struct {
	id   string
	priv *rsa.PrivateKey
}

func newFakeRoots(t testing.TB) *fakeRoots {
	return &fakeRoots{t: t, keys: map[string]*fakeKey{}, calls: map[string]int{}}
}

func keyURI(vaultName, name string) string {
	return fmt.Sprintf("https://%s.vault.test:8443/keys/%s", vaultName, name)
}

// add creates an RSA key with one version and returns its versionless URI.
func (f *fakeRoots) add(vaultName, name string) string {
	uri := keyURI(vaultName, name)
	f.mu.Lock()
	defer f.mu.Unlock()
	k := &fakeKey{uri: uri, info: dep.RootKeyInfo{Kty: "RSA-HSM", Size: 2048, Ops: []string{"wrapKey", "unwrapKey"}, Enabled: true,
		RecoveryLevel: "Recoverable+ProtectedSubscription"}}
	f.keys[strings.ToLower(uri)] = k
	f.addVersionLocked(k)
	return uri
}

func (f *fakeRoots) addVersionLocked(k *fakeKey) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s/%d", k.uri, len(k.versions)))
	v := fmt.Sprintf("%x", h[:16])
	k.versions = append(k.versions, fakeVersion{id: v, priv: poolKey(f.t)})
	return k.uri + "/" + v
}

// newVersion rotates a key and returns the new versioned URI.
func (f *fakeRoots) newVersion(uri string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addVersionLocked(f.key(uri))
}

func (f *fakeRoots) key(uri string) *fakeKey {
	base := strings.ToLower(uri)
	if i := strings.Index(base, "/keys/"); i >= 0 {
		if parts := strings.Split(base[i+len("/keys/"):], "/"); len(parts) == 2 {
			base = base[:i] + "/keys/" + parts[0]
		}
	}
	k := f.keys[base]
	if k == nil {
		f.t.Fatalf("fakeRoots: no key %s", uri)
	}
	return k
}

// set changes a key under the lock.
func (f *fakeRoots) set(uri string, change func(k *fakeKey)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f.key(uri))
}

func (f *fakeRoots) failWith(uri string, c dep.Failure) { f.set(uri, func(k *fakeKey) { k.fail = c }) }

func (f *fakeRoots) unwraps(uri string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[strings.ToLower(uri)]
}

func (f *fakeRoots) running() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inflight
}

func (f *fakeRoots) resetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = map[string]int{}
	f.apps = nil
}

func (f *fakeRoots) appsSeen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.apps...)
}

// resolve finds the key and version a URI names (newest when versionless).
func (f *fakeRoots) resolve(uri string) (*fakeKey, fakeVersion, error) {
	k := f.key(uri)
	rest := strings.TrimPrefix(strings.ToLower(uri), strings.ToLower(k.uri))
	if rest == "" {
		return k, k.versions[len(k.versions)-1], nil
	}
	for _, v := range k.versions {
		if rest == "/"+v.id {
			return k, v, nil
		}
	}
	return k, fakeVersion{}, &dep.KeyError{Class: dep.NotFound, KeyID: uri, Message: "no such key version"}
}

func (f *fakeRoots) failure(k *fakeKey, uri string) error {
	if k.fail == 0 {
		return nil
	}
	return &dep.KeyError{Class: k.fail, KeyID: uri, Message: "the test made this key fail with " + k.fail.String()}
}

func (f *fakeRoots) Describe(_ context.Context, appID, _, uri string) (dep.RootKeyInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apps = append(f.apps, appID)
	k, v, err := f.resolve(uri)
	if err != nil {
		return dep.RootKeyInfo{}, err
	}
	if err := f.failure(k, uri); err != nil {
		return dep.RootKeyInfo{}, err
	}
	info := k.info
	info.KeyID = k.uri + "/" + v.id
	return info, nil
}

func (f *fakeRoots) Wrap(_ context.Context, appID, _, uri string, key []byte) (dep.WrappedRoot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apps = append(f.apps, appID)
	k, v, err := f.resolve(uri)
	if err != nil {
		return dep.WrappedRoot{}, err
	}
	if err := f.failure(k, uri); err != nil {
		return dep.WrappedRoot{}, err
	}
	f.wrapped = append(f.wrapped, bytes.Clone(key))
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &v.priv.PublicKey, key, nil)
	if err != nil {
		return dep.WrappedRoot{}, err
	}
	return dep.WrappedRoot{KeyID: k.uri + "/" + v.id, Alg: "RSA-OAEP-256", Value: ct}, nil
}

func (f *fakeRoots) Unwrap(ctx context.Context, appID, _ string, w dep.WrappedRoot) ([]byte, error) {
	f.mu.Lock()
	f.apps = append(f.apps, appID)
	k, v, err := f.resolve(w.KeyID)
	if err != nil {
		f.mu.Unlock()
		return nil, err
	}
	f.calls[strings.ToLower(k.uri)]++
	f.inflight++
	gate, delay := k.gate, k.delay
	failErr := f.failure(k, w.KeyID)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, &dep.KeyError{Class: dep.Transient, KeyID: w.KeyID, Message: "cancelled", Err: ctx.Err()}
		}
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, &dep.KeyError{Class: dep.Transient, KeyID: w.KeyID, Message: "cancelled", Err: ctx.Err()}
		}
	}
	if failErr != nil {
		return nil, failErr
	}
	return rsa.DecryptOAEP(sha256.New(), nil, v.priv, w.Value, nil)
}

var _ dep.RootKeys = (*fakeRoots)(nil)

// fakeScenarios stands in for onboarding's record of enabled scenarios.
type fakeScenarios struct {
	mu sync.Mutex
	m  map[string][]onboarding.Scenario
}

func (f *fakeScenarios) enable(tid string, sc ...onboarding.Scenario) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[tid] = append(f.m[tid], sc...)
}

func (f *fakeScenarios) disableAll(tid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, tid)
}

func (f *fakeScenarios) EnabledScenarios(_ context.Context, tid string) ([]onboarding.Scenario, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]onboarding.Scenario{}, f.m[tid]...), nil
}

// fakeCustody stands in for the vault service (which subscription holds a
// vault) and the resource manager (whether its mandatory retention period
// is Registered); both have their own tests.
type fakeCustody struct {
	mu        sync.Mutex
	vaults    map[string]vault.Vault // by lower-case name
	protected map[string]bool        // by subscription
}

func (f *fakeCustody) addVault(name, sub, tid string, protected bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vaults[strings.ToLower(name)] = vault.Vault{Name: name, SubscriptionID: sub, TenantID: tid}
	f.protected[sub] = protected
}

func (f *fakeCustody) deleteVault(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.vaults, strings.ToLower(name))
}

func (f *fakeCustody) protect(sub string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.protected[sub] = on
}

func (f *fakeCustody) ByName(_ context.Context, name string) (vault.Vault, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.vaults[strings.ToLower(name)]
	if !ok {
		return vault.Vault{}, errkind.Errorf(errkind.NotFound, "No vault named '%s' was found.", name)
	}
	return v, nil
}

func (f *fakeCustody) Protected(_ context.Context, sub string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.protected[sub], nil
}

// fakeWorkload is a small workload that keeps scope keys through dep the
// way the real workloads do (they have their own tests): it wraps each
// scope key under the effective policy, rewraps on demand, reports progress
// and deletes on purge.
type fakeWorkload struct {
	w   dep.Workload
	svc func() *dep.Service

	mu    sync.Mutex
	items []*scopeItem
	kicks map[string]int
	// purgeErrs are returned by the next PurgePolicy calls, in order.
	purgeErrs []error
	purges    int
}

type scopeItem struct {
	tid, geo string
	aad      []byte
	key      []byte // the plaintext, to check what unwraps (test only)
	wrapped  []byte
	ref      dep.PolicyRef
}

func (f *fakeWorkload) Workload() dep.Workload { return f.w }

func (f *fakeWorkload) Kick(tid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kicks[tid]++
}

func (f *fakeWorkload) kicked(tid string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.kicks[tid]
}

func (f *fakeWorkload) Progress(_ context.Context, tid, geo string, ref dep.PolicyRef) (int, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	done, total := 0, 0
	for _, it := range f.items {
		if it.tid != tid || it.geo != geo {
			continue
		}
		total++
		if it.ref.Same(ref) {
			done++
		}
	}
	return done, total, nil
}

func (f *fakeWorkload) PurgePolicy(_ context.Context, tid, policyID string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.purges++
	if len(f.purgeErrs) > 0 {
		err := f.purgeErrs[0]
		f.purgeErrs = f.purgeErrs[1:]
		if err != nil {
			return 0, err
		}
	}
	kept, n := f.items[:0], 0
	for _, it := range f.items {
		if it.tid == tid && it.ref.PolicyID == policyID {
			n++
			continue
		}
		kept = append(kept, it)
	}
	f.items = kept
	return n, nil
}

func (f *fakeWorkload) effective(ctx context.Context, tid, geo string) (dep.PolicyRef, error) {
	if f.w == dep.Files {
		return f.svc().EffectiveGeo(ctx, tid, geo)
	}
	return f.svc().Effective(ctx, tid, f.w)
}

// add makes a scope with a fresh key wrapped under the effective policy.
func (f *fakeWorkload) add(t *testing.T, ctx context.Context, tid, geo string) *scopeItem {
	t.Helper()
	ref, err := f.effective(ctx, tid, geo)
	if err != nil {
		t.Fatalf("effective policy: %v", err)
	}
	return f.addUnder(t, ctx, tid, geo, ref)
}

// addUnder makes a scope with a fresh key wrapped under ref (a mailbox
// with its own Exchange policy, say).
func (f *fakeWorkload) addUnder(t *testing.T, ctx context.Context, tid, geo string, ref dep.PolicyRef) *scopeItem {
	t.Helper()
	key, err := envelope.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	aad := fmt.Appendf(nil, "%s|scope-%d", f.w, len(f.items))
	wrapped, err := f.svc().WrapScopeKey(ctx, ref, key, aad)
	if err != nil {
		t.Fatalf("WrapScopeKey(%v): %v", ref, err)
	}
	it := &scopeItem{tid: tid, geo: geo, aad: aad, key: bytes.Clone(key.Reveal()), wrapped: wrapped, ref: ref}
	f.mu.Lock()
	f.items = append(f.items, it)
	f.mu.Unlock()
	return it
}

// rewrap moves every scope of tid onto its effective policy, as the real
// workloads' rewrap jobs do (system purpose).
func (f *fakeWorkload) rewrap(t *testing.T, ctx context.Context, tid string) int {
	t.Helper()
	f.mu.Lock()
	items := append([]*scopeItem(nil), f.items...)
	f.mu.Unlock()
	n := 0
	for _, it := range items {
		if it.tid != tid {
			continue
		}
		ref, err := f.effective(ctx, tid, it.geo)
		if err != nil {
			t.Fatalf("effective policy: %v", err)
		}
		if ref.Same(it.ref) {
			continue
		}
		key, err := f.svc().UnwrapScopeKey(ctx, tid, it.wrapped, it.aad, dep.Purpose{System: true})
		if err != nil {
			t.Fatalf("rewrap: UnwrapScopeKey: %v", err)
		}
		wrapped, err := f.svc().WrapScopeKey(ctx, ref, key, it.aad)
		key.Wipe()
		if err != nil {
			t.Fatalf("rewrap: WrapScopeKey: %v", err)
		}
		f.mu.Lock()
		it.wrapped, it.ref = wrapped, ref
		f.mu.Unlock()
		n++
	}
	return n
}

func (f *fakeWorkload) count(tid string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, it := range f.items {
		if it.tid == tid {
			n++
		}
	}
	return n
}

// open unwraps a scope key and checks it is the one wrapped.
func open(ctx context.Context, s *dep.Service, it *scopeItem, p dep.Purpose) error {
	key, err := s.UnwrapScopeKey(ctx, it.tid, it.wrapped, it.aad, p)
	if err != nil {
		return err
	}
	defer key.Wipe()
	if !key.Equal(secret.Copy(it.key)) {
		return fmt.Errorf("UnwrapScopeKey returned a different key")
	}
	return nil
}
