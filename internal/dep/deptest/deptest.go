// Package deptest holds data encryption policy keys in memory for the
// tests of the workloads that dep serves (workload/mail, workload/files):
// scope keys are sealed under a policy's key with envelope, as dep seals
// them under the unwrapped policy key, and a revoked policy refuses user
// unwraps with the error the test gives while system unwraps still work,
// as the availability key allows. Each workload's test adds how it finds
// its policy (Effective, EffectiveGeo, ExchangePolicy); the real dep has
// its own tests, and the end-to-end tests in internal/app run the
// workloads on it.
package deptest

import (
	"context"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/envelope"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
)

// Keys is the policies of a test and their key versions. It is safe for
// concurrent use.
type Keys struct {
	revoked error

	mu       sync.Mutex
	byID     map[string]*Policy
	defaults map[string]string // tenant -> its service-managed default policy id
	unwraps  []dep.Purpose     // every UnwrapScopeKey purpose, in order
}

// Policy is one policy of Keys, with the states the workloads' tests set.
type Policy struct {
	Ref            dep.PolicyRef // the current key version
	Name           string
	Disabled       bool
	PurgeRequested bool
	Revoked        bool
	keys           map[int]secret.Bytes // by version
}

// New returns empty Keys whose revoked policies refuse user unwraps with
// revoked.
func New(revoked error) *Keys {
	return &Keys{revoked: revoked, byID: map[string]*Policy{}, defaults: map[string]string{}}
}

// Default returns the service-managed default policy of tenant tid,
// created at its first use.
func (k *Keys) Default(tid string) (dep.PolicyRef, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if id, ok := k.defaults[tid]; ok {
		return k.byID[id].Ref, nil
	}
	ref, err := k.create(tid, dep.ServiceManaged, "default")
	if err != nil {
		return dep.PolicyRef{}, err
	}
	k.defaults[tid] = ref.PolicyID
	return ref, nil
}

// Create adds a policy of kind k at key version 1.
func (k *Keys) Create(tid string, kind dep.Kind, name string) (dep.PolicyRef, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.create(tid, kind, name)
}

func (k *Keys) create(tid string, kind dep.Kind, name string) (dep.PolicyRef, error) {
	key, err := envelope.NewKey()
	if err != nil {
		return dep.PolicyRef{}, err
	}
	ref := dep.PolicyRef{TenantID: tid, PolicyID: uuid.NewString(), Kind: kind, KeyVersion: 1}
	k.byID[ref.PolicyID] = &Policy{Ref: ref, Name: name, keys: map[int]secret.Bytes{1: key}}
	return ref, nil
}

// Roll gives policy id a new key version and returns its reference.
func (k *Keys) Roll(id string) (dep.PolicyRef, error) {
	key, err := envelope.NewKey()
	if err != nil {
		return dep.PolicyRef{}, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.byID[id]
	p.Ref.KeyVersion++
	p.keys[p.Ref.KeyVersion] = key
	return p.Ref, nil
}

// Update runs fn on policy id.
func (k *Keys) Update(id string, fn func(*Policy)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	fn(k.byID[id])
}

// Get returns policy id of tenant tid.
func (k *Keys) Get(tid, id string) (Policy, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, ok := k.byID[id]
	if !ok || p.Ref.TenantID != tid {
		return Policy{}, false
	}
	return *p, true
}

// Find returns a policy for which match is true.
func (k *Keys) Find(match func(Policy) bool) (Policy, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, p := range k.byID {
		if match(*p) {
			return *p, true
		}
	}
	return Policy{}, false
}

// Purposes returns the purpose of every UnwrapScopeKey so far, in order.
func (k *Keys) Purposes() []dep.Purpose {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]dep.Purpose(nil), k.unwraps...)
}

// WrapScopeKey seals key under version ref.KeyVersion of policy ref.
func (k *Keys) WrapScopeKey(_ context.Context, ref dep.PolicyRef, key secret.Bytes, aad []byte) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, ok := k.byID[ref.PolicyID]
	if !ok || p.Ref.TenantID != ref.TenantID {
		return nil, errkind.New(errkind.NotFound, "no such policy")
	}
	pk, ok := p.keys[ref.KeyVersion]
	if !ok {
		return nil, errkind.New(errkind.NotFound, "no such policy key version")
	}
	return envelope.Seal(pk, "policy/"+ref.PolicyID, uint32(ref.KeyVersion), key.Reveal(), aad)
}

// UnwrapScopeKey opens a key WrapScopeKey sealed, under the policy and
// version its header names; a revoked policy refuses users.
func (k *Keys) UnwrapScopeKey(_ context.Context, tid string, wrapped, aad []byte, why dep.Purpose) (secret.Bytes, error) {
	id, ver, err := envelope.Header(wrapped)
	if err != nil {
		return secret.Bytes{}, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.unwraps = append(k.unwraps, why)
	p, ok := k.byID[strings.TrimPrefix(id, "policy/")]
	if !ok || p.Ref.TenantID != tid {
		return secret.Bytes{}, errkind.New(errkind.NotFound, "the policy that wrapped this key was not found")
	}
	if p.Revoked && !why.System {
		return secret.Bytes{}, k.revoked
	}
	b, err := envelope.Open(p.keys[int(ver)], wrapped, aad)
	if err != nil {
		return secret.Bytes{}, err
	}
	return secret.New(b), nil
}
