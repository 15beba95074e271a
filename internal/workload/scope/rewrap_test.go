package scope_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
	"github.com/customerkey/customerkey/internal/workload/scope"
)

const prefix = "test/rec/"

// record is a workload's scope record as the tests keep it: Group picks
// the target policy, Note stands for the fields rewrap must keep.
type record struct {
	Tenant  string        `json:"tenant"`
	ID      string        `json:"id"`
	Group   string        `json:"group"`
	Note    string        `json:"note"`
	Wrapped []byte        `json:"wrapped"`
	Ref     dep.PolicyRef `json:"ref"`
}

func (r record) Scope() (string, string)      { return r.Tenant, r.ID }
func (r record) Key() ([]byte, dep.PolicyRef) { return r.Wrapped, r.Ref }
func (r record) WithKey(w []byte, ref dep.PolicyRef) record {
	r.Wrapped, r.Ref = w, ref
	return r
}

func aad(tid, id string) []byte { return []byte(prefix + tid + "/" + id) }

// keys wraps a scope key by writing the policy version and the additional
// data before it, so that a test can read which ref wraps a key and an
// unwrap with the wrong additional data fails as dep's does. Unwraps of the
// tenant in failTenant fail; before is called at each unwrap.
type keys struct {
	mu         sync.Mutex
	failTenant string
	purposes   []dep.Purpose
	before     func(tid string)
}

func header(ref dep.PolicyRef, aad []byte) string {
	return fmt.Sprintf("%s/%d|%s|", ref.PolicyID, ref.KeyVersion, aad)
}

func (k *keys) WrapScopeKey(_ context.Context, ref dep.PolicyRef, key secret.Bytes, aad []byte) ([]byte, error) {
	return append([]byte(header(ref, aad)), key.Reveal()...), nil
}

func (k *keys) UnwrapScopeKey(_ context.Context, tid string, wrapped, aad []byte, p dep.Purpose) (secret.Bytes, error) {
	k.mu.Lock()
	k.purposes = append(k.purposes, p)
	before := k.before
	k.mu.Unlock()
	if before != nil {
		before(tid)
	}
	if tid == k.failTenant {
		return secret.Bytes{}, errkind.New(errkind.Unavailable, "the vault is unreachable")
	}
	parts := bytes.SplitN(wrapped, []byte("|"), 3)
	if len(parts) != 3 || !bytes.Equal(parts[1], aad) {
		return secret.Bytes{}, errkind.New(errkind.Invalid, "the wrapped key does not belong here")
	}
	return secret.Copy(parts[2]), nil
}

func ref(policy string, version int) dep.PolicyRef {
	return dep.PolicyRef{TenantID: tidA, PolicyID: policy, Kind: dep.ServiceManaged, KeyVersion: version}
}

type env struct {
	ctx     context.Context
	store   storage.Backend
	keys    *keys
	w       *scope.Rewrapper[record]
	mu      sync.Mutex
	targets map[string]dep.PolicyRef // group -> target
	asked   map[string]int           // group -> Target calls
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := &env{ctx: context.Background(), store: st, keys: &keys{}, targets: map[string]dep.PolicyRef{}, asked: map[string]int{}}
	e.w = scope.NewRewrapper(scope.RewrapOptions[record]{
		Store: st, Keys: e.keys, Prefix: prefix, AAD: aad,
		Names: scope.Names{Workload: "test", Scope: "record", Scopes: "records", Target: "their target"},
		Target: func(_ context.Context, r record) (dep.PolicyRef, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.asked[r.Group]++
			t, ok := e.targets[r.Group]
			if !ok {
				return dep.PolicyRef{}, errkind.Errorf(errkind.NotFound, "no policy for group %s", r.Group)
			}
			return t, nil
		},
		Group: func(r record) string { return r.Group },
	})
	return e
}

func (e *env) target(group string, r dep.PolicyRef) {
	e.mu.Lock()
	e.targets[group] = r
	e.mu.Unlock()
}

func (e *env) put(t *testing.T, tid, id, group string, under dep.PolicyRef) {
	t.Helper()
	w, _ := e.keys.WrapScopeKey(e.ctx, under, secret.Copy([]byte("key of "+id)), aad(tid, id))
	r := record{Tenant: tid, ID: id, Group: group, Note: "note of " + id, Wrapped: w, Ref: under}
	if err := e.store.Update(e.ctx, func(tx storage.Tx) error {
		return storage.PutJSON(tx, prefix+tid+"/"+id, r, storage.AnyVersion)
	}); err != nil {
		t.Fatal(err)
	}
}

func (e *env) get(t *testing.T, tid, id string) record {
	t.Helper()
	var r record
	if err := e.store.View(e.ctx, func(tx storage.Tx) error {
		_, err := storage.GetJSON(tx, prefix+tid+"/"+id, &r)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

// wantUnder checks that the record is under ref, its key wrapped by it
// for its own place, its key and other fields unchanged.
func (e *env) wantUnder(t *testing.T, tid, id string, want dep.PolicyRef) {
	t.Helper()
	r := e.get(t, tid, id)
	if !r.Ref.Same(want) || !strings.HasPrefix(string(r.Wrapped), header(want, aad(tid, id))) ||
		!strings.HasSuffix(string(r.Wrapped), "|key of "+id) || r.Note != "note of "+id {
		t.Errorf("%s/%s = %+v, want it under %s version %d with its key and note", tid, id, r, want.PolicyID, want.KeyVersion)
	}
}

func TestSweep(t *testing.T) {
	e := newEnv(t)
	old, cur, geo := ref("p", 1), ref("p", 2), ref("g", 1)
	e.target("a", cur)
	e.target("b", geo)
	e.put(t, tidA, "1", "a", old)
	e.put(t, tidA, "2", "a", cur)
	e.put(t, tidA, "3", "b", old)
	e.put(t, tidB, "4", "a", old)
	n, err := e.w.Sweep(e.ctx)
	if n != 3 || err != nil {
		t.Fatalf("Sweep = %d, %v; want 3 rewrapped", n, err)
	}
	e.wantUnder(t, tidA, "1", cur)
	e.wantUnder(t, tidA, "2", cur)
	e.wantUnder(t, tidA, "3", geo)
	e.wantUnder(t, tidB, "4", cur)
	if e.asked["a"] != 1 || e.asked["b"] != 1 {
		t.Errorf("Target asked %v during one pass; want once per group", e.asked)
	}
	for _, p := range e.keys.purposes {
		if !p.System || !strings.HasPrefix(p.RequestID, "rewrap-") {
			t.Errorf("an unwrap had purpose %+v; want system work of a rewrap job", p)
		}
	}
	if n, err := e.w.Sweep(e.ctx); n != 0 || err != nil {
		t.Errorf("a second Sweep = %d, %v; want nothing to do", n, err)
	}
}

// TestSweepFailures checks that a scope that fails is counted and named,
// and that the others are still rewrapped.
func TestSweepFailures(t *testing.T) {
	e := newEnv(t)
	e.target("a", ref("p", 2))
	e.put(t, tidA, "1", "a", ref("p", 1))
	e.put(t, tidA, "2", "orphan", ref("p", 1))
	e.put(t, tidB, "3", "a", ref("p", 1))
	e.put(t, tidB, "4", "a", ref("p", 1))
	e.keys.failTenant = tidB
	n, err := e.w.Sweep(e.ctx)
	if n != 1 {
		t.Errorf("Sweep rewrapped %d; want 1", n)
	}
	want := "test: 3 record keys could not be rewrapped onto their target; the first: record 2: no policy for group orphan"
	if err == nil || err.Error() != want {
		t.Errorf("Sweep = %v; want %q", err, want)
	}
	e.wantUnder(t, tidA, "1", ref("p", 2))
	e.wantUnder(t, tidB, "3", ref("p", 1))
}

// TestRewrapConcurrentChange changes a record between the unwrap and the
// write: the rewrap reads it again, keeps the change and follows its new
// target.
func TestRewrapConcurrentChange(t *testing.T) {
	e := newEnv(t)
	e.target("a", ref("p", 2))
	e.target("b", ref("q", 1))
	e.put(t, tidA, "1", "a", ref("p", 1))
	var once sync.Once
	e.keys.before = func(string) {
		once.Do(func() {
			if err := e.store.Update(e.ctx, func(tx storage.Tx) error {
				var r record
				v, err := storage.GetJSON(tx, prefix+tidA+"/1", &r)
				if err != nil {
					return err
				}
				r.Group = "b"
				return storage.PutJSON(tx, prefix+tidA+"/1", r, v)
			}); err != nil {
				t.Error(err)
			}
		})
	}
	if n, err := e.w.Sweep(e.ctx); n != 1 || err != nil {
		t.Fatalf("Sweep = %d, %v; want 1 rewrapped", n, err)
	}
	e.wantUnder(t, tidA, "1", ref("q", 1))
	if r := e.get(t, tidA, "1"); r.Group != "b" {
		t.Errorf("the concurrent change was lost: %+v", r)
	}
}

// TestRewrapKeepsChanging changes the record at every unwrap: the rewrap
// gives up with a Conflict for the next pass.
func TestRewrapKeepsChanging(t *testing.T) {
	e := newEnv(t)
	e.target("a", ref("p", 2))
	e.put(t, tidA, "1", "a", ref("p", 1))
	e.keys.before = func(string) {
		if err := e.store.Update(e.ctx, func(tx storage.Tx) error {
			var r record
			v, err := storage.GetJSON(tx, prefix+tidA+"/1", &r)
			if err != nil {
				return err
			}
			r.Note += "!"
			return storage.PutJSON(tx, prefix+tidA+"/1", r, v)
		}); err != nil {
			t.Error(err)
		}
	}
	n, err := e.w.Sweep(e.ctx)
	if n != 0 || !errkind.Is(err, errkind.Conflict) || !strings.Contains(err.Error(), "the record 1 kept changing") {
		t.Fatalf("Sweep = %d, %v; want a Conflict naming record 1", n, err)
	}
}

// TestRewrapDeleted deletes the record between the unwrap and the write:
// nothing is rewrapped, and that is no error.
func TestRewrapDeleted(t *testing.T) {
	e := newEnv(t)
	e.target("a", ref("p", 2))
	e.put(t, tidA, "1", "a", ref("p", 1))
	e.keys.before = func(string) {
		if err := e.store.Update(e.ctx, func(tx storage.Tx) error {
			return tx.Delete(prefix+tidA+"/1", storage.AnyVersion)
		}); err != nil {
			t.Error(err)
		}
	}
	if n, err := e.w.Sweep(e.ctx); n != 0 || err != nil {
		t.Fatalf("Sweep = %d, %v; want nothing done and no error", n, err)
	}
}

// TestScan checks that Scan visits one tenant's records only, across
// pages.
func TestScan(t *testing.T) {
	e := newEnv(t)
	const count = 450 // more than two pages
	for i := range count {
		e.put(t, tidA, fmt.Sprintf("%04d", i), "a", ref("p", 1))
	}
	e.put(t, tidB, "other", "a", ref("p", 1))
	seen := map[string]bool{}
	err := e.w.Scan(e.ctx, tidA, func(r record) error {
		if r.Tenant != tidA || seen[r.ID] {
			t.Errorf("Scan visited %s/%s again or out of its tenant", r.Tenant, r.ID)
		}
		seen[r.ID] = true
		return nil
	})
	if err != nil || len(seen) != count {
		t.Fatalf("Scan = %v after %d records; want %d", err, len(seen), count)
	}
	stop := errkind.New(errkind.Internal, "stop")
	if err := e.w.Scan(e.ctx, tidA, func(record) error { return stop }); err != stop {
		t.Errorf("Scan = %v; want fn's error", err)
	}
}

// TestRun checks that Run rewraps a kicked tenant, and only it.
func TestRun(t *testing.T) {
	e := newEnv(t)
	e.target("a", ref("p", 2))
	e.put(t, tidA, "1", "a", ref("p", 1))
	e.put(t, tidB, "2", "a", ref("p", 1))
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.w.Run(ctx) }()
	e.w.Kick(strings.ToUpper(tidA))
	deadline := time.Now().Add(10 * time.Second)
	for !e.get(t, tidA, "1").Ref.Same(ref("p", 2)) {
		if time.Now().After(deadline) {
			t.Fatal("Run did not rewrap the kicked tenant")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	e.wantUnder(t, tidB, "2", ref("p", 1))
}

func TestAudit(t *testing.T) {
	e := newEnv(t)
	log := audit.New(audit.Options{Store: e.store})
	a := scope.Audit{Log: log, Warn: nil, Scope: "record"}
	user := directory.Caller{Actor: audit.Actor{Type: "user", ID: "u1"}, TenantID: tidB}
	if err := e.store.Update(e.ctx, func(tx storage.Tx) error {
		return a.Record(e.ctx, tx, directory.System, tidA, "test/create", "r1")
	}); err != nil {
		t.Fatal(err)
	}
	a.Denied(e.ctx, user, tidA, "test/delete", "r1", errkind.New(errkind.PermissionDenied, "not yours"))
	page, err := log.List(e.ctx, tidA, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 2 {
		t.Fatalf("the audit log has %+v; want 2 events", page.Events)
	}
	ok, denied := page.Events[0], page.Events[1]
	if ok.Action != "test/create" || ok.Result != audit.Success || ok.Actor.ID != "customerkey" || ok.Target != "r1" {
		t.Errorf("the success is %+v", ok)
	}
	if denied.Action != "test/delete" || denied.Result != audit.Denied || denied.Reason != "not yours" ||
		denied.Actor.ID != "u1" || denied.Actor.TenantID != tidB {
		t.Errorf("the refusal is %+v; want it to name the caller and its own tenant", denied)
	}
	none := scope.Audit{Scope: "record"}
	if err := e.store.Update(e.ctx, func(tx storage.Tx) error {
		return none.Record(e.ctx, tx, directory.System, tidA, "test/create", "r2")
	}); err != nil {
		t.Errorf("Record without a log = %v, want nil", err)
	}
	none.Denied(e.ctx, user, tidA, "test/delete", "r2", errkind.New(errkind.PermissionDenied, "not yours"))
}
