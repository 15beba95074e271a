package vault_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/jwk"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/vault"
)

const kv = "kv1" // the vault most key tests use: premium, soft delete 90 days, subA

var versionRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// newKeyEnv is newEnv with vault kv created in subA.
func newKeyEnv(t testing.TB) *env {
	t.Helper()
	e := newEnv(t)
	e.create(t, spec(kv))
	return e
}

// service returns another Service on e's store, subscriptions and clock,
// with the given key cache TTL: a second node.
func (e *env) service(ttl time.Duration) *vault.Service {
	return vault.New(vault.Options{Store: e.store, Audit: e.audit, Subscriptions: e.subs,
		Locations: fakeLocations{"westeurope": true}, Now: e.clock.Now, KeyCacheTTL: ttl})
}

// countingStore counts the transactions that reach the store, and the
// reads of private key material.
type countingStore struct {
	storage.Backend
	views, updates, material atomic.Int64
}

func (c *countingStore) View(ctx context.Context, fn func(storage.Tx) error) error {
	c.views.Add(1)
	return c.Backend.View(ctx, func(tx storage.Tx) error { return fn(countingTx{tx, c}) })
}

type countingTx struct {
	storage.Tx
	c *countingStore
}

func (t countingTx) Get(key string) (storage.Entry, error) {
	if strings.Contains(key, "/mat/") {
		t.c.material.Add(1)
	}
	return t.Tx.Get(key)
}

func (c *countingStore) Update(ctx context.Context, fn func(storage.Tx) error) error {
	c.updates.Add(1)
	return c.Backend.Update(ctx, fn)
}

// Fixture keys, generated once per test binary: RSA generation is slow
// under -race.
var (
	fixtureRSA = sync.OnceValue(func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	})
	fixtureEC = sync.OnceValue(func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

// rsaJWK is k as a JWK with its private parts, as a client imports it.
func rsaJWK(k *rsa.PrivateKey, ops ...string) jwk.Key {
	k.Precompute()
	return jwk.Key{Kty: jwk.RSA, KeyOps: ops, N: k.N.Bytes(), E: big.NewInt(int64(k.E)).Bytes(),
		D: secret.Copy(k.D.Bytes()), P: secret.Copy(k.Primes[0].Bytes()), Q: secret.Copy(k.Primes[1].Bytes()),
		DP: secret.Copy(k.Precomputed.Dp.Bytes()), DQ: secret.Copy(k.Precomputed.Dq.Bytes()),
		QI: secret.Copy(k.Precomputed.Qinv.Bytes())}
}

func ecJWK(k *ecdsa.PrivateKey, ops ...string) jwk.Key {
	size := (k.Curve.Params().BitSize + 7) / 8
	return jwk.Key{Kty: jwk.EC, KeyOps: ops, Crv: k.Curve.Params().Name,
		X: k.X.FillBytes(make([]byte, size)), Y: k.Y.FillBytes(make([]byte, size)),
		D: secret.Copy(k.D.FillBytes(make([]byte, size)))}
}

// createKey creates a key in kv and fails the test on error.
func (e *env) createKey(t testing.TB, name string, spec vault.KeySpec) vault.Key {
	t.Helper()
	k, err := e.svc.CreateKey(ctx, caller, kv, name, spec)
	if err != nil {
		t.Fatalf("CreateKey(%s, %+v) err = %v", name, spec, err)
	}
	return k
}

// importRSA imports the fixture RSA key as name in kv.
func (e *env) importRSA(t testing.TB, name string, ops ...string) vault.Key {
	t.Helper()
	k, err := e.svc.ImportKey(ctx, caller, kv, name, vault.KeyImport{Key: rsaJWK(fixtureRSA(), ops...)})
	if err != nil {
		t.Fatalf("ImportKey(%s) err = %v", name, err)
	}
	return k
}

// events returns the audit events of tenant A with the given action.
func (e *env) events(t *testing.T, action string) []audit.Event {
	t.Helper()
	page, err := e.audit.List(ctx, tenantA, "", 0)
	if err != nil {
		t.Fatalf("audit.List err = %v", err)
	}
	var out []audit.Event
	for _, ev := range page.Events {
		if ev.Action == action {
			out = append(out, ev)
		}
	}
	return out
}

// allAudit is every audit record of tenant A, as stored (JSON).
func (e *env) allAudit(t *testing.T) string {
	t.Helper()
	page, err := e.audit.List(ctx, tenantA, "", 0)
	if err != nil {
		t.Fatalf("audit.List err = %v", err)
	}
	b, _ := json.Marshal(page.Events)
	return string(b)
}

func day0(e *env) time.Time { return e.clock.Now().UTC().Truncate(time.Second) }

func ptrTime(t time.Time) *time.Time { return &t }

func sameStrings(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func hasAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
