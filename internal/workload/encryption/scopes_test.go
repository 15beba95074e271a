package encryption

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		in, want string // want "" means invalid
	}{
		{"crm-prod", "crm-prod"},
		{"CRM-Prod", "crm-prod"},
		{" abc ", "abc"},
		{"a1-2", "a1-2"},
		{strings.Repeat("a", 63), strings.Repeat("a", 63)},
		{"ab", ""},
		{strings.Repeat("a", 64), ""},
		{"1abc", ""},
		{"-abc", ""},
		{"abc-", ""},
		{"ab_c", ""},
		{"ab.c", ""},
		{"ab/c", ""},
		{"ab c", ""},
		{"", ""},
	}
	for _, tc := range tests {
		got, err := checkName(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("checkName(%q) = %q, want an error", tc.in, got)
		case tc.want == "" && !errkind.Is(err, errkind.Invalid):
			t.Errorf("checkName(%q) err = %v, want Invalid", tc.in, err)
		case tc.want != "" && (err != nil || got != tc.want):
			t.Errorf("checkName(%q) = %q, %v, want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestCreateScopeAuthorization(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		c    directory.Caller
		tid  string
		want errkind.Kind // Internal means success
	}{
		{"global administrator", e.admin, e.tid, errkind.Internal},
		{"compliance administrator", e.compliance, e.tid, errkind.Internal},
		{"global administrator application", e.app, e.tid, errkind.Internal},
		{"user without roles", e.alice, e.tid, errkind.PermissionDenied},
		{"exchange administrator", e.exchangeAdmin, e.tid, errkind.PermissionDenied},
		{"administrator of another tenant", e.otherAdmin, e.tid, errkind.PermissionDenied},
		{"not a tenant id", e.admin, "contoso", errkind.Invalid},
	}
	// A refusal in a tenant that does not exist leaves no record there.
	nowhere := uuid.NewString()
	_, err := e.svc.CreateScope(e.ctx, e.otherAdmin, nowhere, ScopeSpec{Name: "nowhere"})
	wantKind(t, "CreateScope in a tenant that does not exist", err, errkind.PermissionDenied)
	if evs := e.events(nowhere); len(evs) != 0 {
		t.Errorf("the refusal left %d records in a tenant that does not exist", len(evs))
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("scope-%d", i)
			sc, err := e.svc.CreateScope(e.ctx, tc.c, tc.tid, ScopeSpec{Name: name, Principals: []string{e.alice.ID}})
			if tc.want == errkind.Internal {
				if err != nil {
					t.Fatalf("CreateScope = %v, want success", err)
				}
				if sc.Name != name || sc.TenantID != e.tid || sc.KeyVersion != 1 || !slices.Equal(sc.Principals, []string{e.alice.ID}) ||
					!sc.Policy.Same(defaultRef(e.tid)) || sc.CreatedAt.IsZero() {
					t.Errorf("CreateScope = %+v", sc)
				}
				if !e.hasEvent(e.tid, actionCreate, name, audit.Success) {
					t.Errorf("no %s record in the audit log", actionCreate)
				}
				return
			}
			wantKind(t, "CreateScope", err, tc.want)
			if tc.want == errkind.PermissionDenied && !e.hasEvent(e.tid, actionCreate, name, audit.Denied) {
				t.Errorf("the refusal is not in the audit log")
			}
		})
	}
}

func TestCreateScopeValidation(t *testing.T) {
	e := newEnv(t)
	e.scope("taken")
	many := make([]string, MaxPrincipals+1)
	for i := range many {
		many[i] = uuid.NewString()
	}
	tests := []struct {
		name string
		spec ScopeSpec
		want errkind.Kind
		code string
	}{
		{"bad name", ScopeSpec{Name: "no_underscores"}, errkind.Invalid, "InvalidScopeName"},
		{"taken", ScopeSpec{Name: "Taken"}, errkind.AlreadyExists, "ScopeExists"},
		{"principal not a GUID", ScopeSpec{Name: "pp1", Principals: []string{"alice"}}, errkind.Invalid, "InvalidPrincipal"},
		{"unknown principal", ScopeSpec{Name: "pp2", Principals: []string{uuid.NewString()}}, errkind.Invalid, "PrincipalNotFound"},
		{"principal of another tenant", ScopeSpec{Name: "pp3", Principals: []string{e.other.Admin.ID}}, errkind.Invalid, "PrincipalNotFound"},
		{"too many principals", ScopeSpec{Name: "pp4", Principals: many}, errkind.Invalid, "TooManyPrincipals"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.CreateScope(e.ctx, e.admin, e.tid, tc.spec)
			wantKind(t, "CreateScope", err, tc.want)
			if k, ok := errkind.As(err); !ok || k.Code != tc.code {
				t.Errorf("CreateScope err = %v, want code %s", err, tc.code)
			}
		})
	}
	// Principals are normalized, deduplicated and sorted; the service
	// principal and users are both accepted.
	sc := e.scope("normal", strings.ToUpper(e.bob.ID), e.alice.ID, e.bob.ID, e.app.ID)
	want := []string{e.alice.ID, e.bob.ID, e.app.ID}
	slices.Sort(want)
	if !slices.Equal(sc.Principals, want) {
		t.Errorf("principals = %v, want %v", sc.Principals, want)
	}
}

func TestScopeLimitPerTenant(t *testing.T) {
	e := newEnv(t)
	// Fill the tenant up to one below the limit directly in the store, in
	// one transaction, to keep the test fast.
	err := e.store.Update(e.ctx, func(tx storage.Tx) error {
		for i := range MaxScopes - 1 {
			name := fmt.Sprintf("s%04d", i)
			rec := scopeRecord{Scope: Scope{Name: name, TenantID: e.tid, KeyVersion: 1, Policy: defaultRef(e.tid)}}
			if err := storage.PutJSON(tx, scopeKey(e.tid, name), rec, storage.MustNotExist); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.scope("last-one")
	_, err = e.svc.CreateScope(e.ctx, e.admin, e.tid, ScopeSpec{Name: "one-too-many"})
	wantKind(t, "CreateScope beyond the limit", err, errkind.FailedPrecondition)
	// Another tenant is not affected.
	if _, err := e.svc.CreateScope(e.ctx, e.otherAdmin, e.otherTID, ScopeSpec{Name: "one-too-many"}); err != nil {
		t.Errorf("CreateScope in another tenant: %v", err)
	}
}

func TestReadScopes(t *testing.T) {
	e := newEnv(t)
	e.scope("alpha", e.alice.ID)
	e.scope("beta", e.bob.ID)
	e.scope("gamma", e.alice.ID, e.bob.ID)
	names := func(ss []Scope) []string {
		out := []string{}
		for _, s := range ss {
			out = append(out, s.Name)
		}
		return out
	}
	tests := []struct {
		name string
		c    directory.Caller
		list []string // what List returns
		get  map[string]errkind.Kind
	}{
		{"global administrator", e.admin, []string{"alpha", "beta", "gamma"},
			map[string]errkind.Kind{"alpha": errkind.Internal, "beta": errkind.Internal, "nope": errkind.NotFound}},
		{"compliance administrator", e.compliance, []string{"alpha", "beta", "gamma"},
			map[string]errkind.Kind{"beta": errkind.Internal}},
		{"alice sees her scopes", e.alice, []string{"alpha", "gamma"},
			map[string]errkind.Kind{"alpha": errkind.Internal, "gamma": errkind.Internal, "beta": errkind.PermissionDenied}},
		{"exchange administrator sees none", e.exchangeAdmin, []string{},
			map[string]errkind.Kind{"alpha": errkind.PermissionDenied}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.svc.Scopes(e.ctx, tc.c, e.tid)
			if err != nil || !slices.Equal(names(got), tc.list) {
				t.Errorf("Scopes = %v, %v, want %v", names(got), err, tc.list)
			}
			for name, want := range tc.get {
				sc, err := e.svc.Scope(e.ctx, tc.c, e.tid, name)
				if want == errkind.Internal {
					if err != nil || sc.Name != name {
						t.Errorf("Scope(%s) = %+v, %v", name, sc, err)
					}
					continue
				}
				wantKind(t, "Scope("+name+")", err, want)
			}
		})
	}
	_, err := e.svc.Scopes(e.ctx, e.otherAdmin, e.tid)
	wantKind(t, "Scopes by another tenant", err, errkind.PermissionDenied)
	_, err = e.svc.Scope(e.ctx, e.otherAdmin, e.tid, "alpha")
	wantKind(t, "Scope by another tenant", err, errkind.PermissionDenied)
}

func TestSetPrincipals(t *testing.T) {
	e := newEnv(t)
	e.scope("crm-prod", e.alice.ID)
	ct := e.encrypt(e.alice, "crm-prod", []byte("hello"), nil)
	if _, err := e.svc.Decrypt(e.ctx, e.bob, e.tid, "crm-prod", nil, ct, nil); !errkind.Is(err, errkind.PermissionDenied) {
		t.Fatalf("Decrypt by bob before he is a principal: %v, want PermissionDenied", err)
	}

	// Refused to anyone but the administrators, with an audit record.
	_, err := e.svc.SetPrincipals(e.ctx, e.alice, e.tid, "crm-prod", []string{e.alice.ID, e.bob.ID})
	wantKind(t, "SetPrincipals by a principal", err, errkind.PermissionDenied)
	if !e.hasEvent(e.tid, actionSetPrincipals, "crm-prod", audit.Denied) {
		t.Error("the refusal is not in the audit log")
	}
	_, err = e.svc.SetPrincipals(e.ctx, e.admin, e.tid, "nope", []string{e.bob.ID})
	wantKind(t, "SetPrincipals of a missing scope", err, errkind.NotFound)

	// The change applies at once: the cached scope is dropped.
	sc, err := e.svc.SetPrincipals(e.ctx, e.compliance, e.tid, "crm-prod", []string{e.bob.ID})
	if err != nil || !slices.Equal(sc.Principals, []string{e.bob.ID}) {
		t.Fatalf("SetPrincipals = %+v, %v", sc, err)
	}
	if pt, err := e.svc.Decrypt(e.ctx, e.bob, e.tid, "crm-prod", nil, ct, nil); err != nil || string(pt) != "hello" {
		t.Errorf("Decrypt by bob after he was added = %q, %v", pt, err)
	}
	if _, err := e.svc.Encrypt(e.ctx, e.alice, e.tid, "crm-prod", nil, []byte("x"), nil); !errkind.Is(err, errkind.PermissionDenied) {
		t.Errorf("Encrypt by alice after she was removed: %v, want PermissionDenied", err)
	}
	if !e.hasEvent(e.tid, actionSetPrincipals, "crm-prod", audit.Success) {
		t.Error("the change is not in the audit log")
	}
}

func TestDeleteScope(t *testing.T) {
	e := newEnv(t)
	e.scope("temp", e.alice.ID)
	ct := e.encrypt(e.alice, "temp", []byte("secret data"), nil)

	wantKind(t, "DeleteScope by a principal", e.svc.DeleteScope(e.ctx, e.alice, e.tid, "temp"), errkind.PermissionDenied)
	wantKind(t, "DeleteScope of a missing scope", e.svc.DeleteScope(e.ctx, e.admin, e.tid, "nope"), errkind.NotFound)
	if err := e.svc.DeleteScope(e.ctx, e.admin, e.tid, "temp"); err != nil {
		t.Fatalf("DeleteScope: %v", err)
	}
	if !e.hasEvent(e.tid, actionDelete, "temp", audit.Success) {
		t.Error("the deletion is not in the audit log")
	}
	_, err := e.svc.Decrypt(e.ctx, e.alice, e.tid, "temp", nil, ct, nil)
	wantKind(t, "Decrypt after the scope was deleted", err, errkind.NotFound)

	// A scope created again under the same name has another key: the old
	// items stay unreadable.
	e.scope("temp", e.alice.ID)
	_, err = e.svc.Decrypt(e.ctx, e.alice, e.tid, "temp", nil, ct, nil)
	if err != ErrDecrypt {
		t.Errorf("Decrypt of an item of the deleted scope in the new one: %v, want ErrDecrypt", err)
	}
}

func TestScopeRecordsPolicy(t *testing.T) {
	e := newEnv(t)
	customer := dep.PolicyRef{TenantID: e.tid, PolicyID: "mdep-1", Kind: dep.M365, KeyVersion: 3}
	e.dep.assign(customer)
	sc := e.scope("under-mdep")
	if !sc.Policy.Same(customer) || sc.Policy.Kind != dep.M365 {
		t.Errorf("a new scope is wrapped under %+v, want the assigned policy %+v", sc.Policy, customer)
	}
	got, err := e.svc.Scope(e.ctx, e.admin, e.tid, "under-mdep")
	if err != nil || !got.Policy.Same(customer) {
		t.Errorf("Scope = %+v, %v", got, err)
	}
}
