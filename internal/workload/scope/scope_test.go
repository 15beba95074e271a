package scope_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/workload/scope"
)

const (
	tidA = "00000000-0000-4000-8000-00000000000a"
	tidB = "00000000-0000-4000-8000-00000000000b"
)

func TestKicks(t *testing.T) {
	tests := []struct {
		name  string
		limit int
		add   []string
		want  []string
	}{
		{"none", 0, nil, []string{}},
		{"sorted and merged", 0, []string{tidB, tidA, tidB}, []string{tidA, tidB}},
		{"normalized", 0, []string{"  " + strings.ToUpper(tidA) + " "}, []string{tidA}},
		{"not a guid", 0, []string{"contoso", ""}, []string{}},
		{"bounded", 1, []string{tidB, tidA}, []string{tidB}},
		{"bound counts tenants, not kicks", 2, []string{tidA, tidA, tidB}, []string{tidA, tidB}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := scope.NewKicks(tt.limit)
			for _, tid := range tt.add {
				k.Add(tid)
			}
			if got := k.Take(); !equal(got, tt.want) {
				t.Errorf("Take = %v, want %v", got, tt.want)
			}
			if got := k.Take(); len(got) != 0 {
				t.Errorf("a second Take = %v, want none", got)
			}
		})
	}
}

// TestKicksWake checks that any number of kicks leave one pending wake-up,
// and an ignored kick none.
func TestKicksWake(t *testing.T) {
	k := scope.NewKicks(0)
	k.Add("not-a-guid")
	if pending(k) {
		t.Fatal("an ignored kick woke the job")
	}
	k.Add(tidA)
	k.Add(tidB)
	if !pending(k) {
		t.Fatal("no wake-up after two kicks")
	}
	if pending(k) {
		t.Fatal("two kicks left two wake-ups")
	}
}

func pending(k *scope.Kicks) bool {
	select {
	case <-k.Wake():
		return true
	default:
		return false
	}
}

func equal(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// roles is the directory as Admins sees it: principal -> role ids, per
// tenant.
type roles struct {
	of  map[string][]string // tid/principal -> role ids
	err error
}

func (r roles) RolesOf(_ context.Context, tid, principalID string) ([]string, error) {
	return r.of[tid+"/"+principalID], r.err
}

func TestAdmins(t *testing.T) {
	admins := scope.Admins{
		Roles:  []directory.RoleDefinition{directory.GlobalAdministrator, directory.ExchangeAdministrator},
		Scopes: "mailboxes", Code: "AccessDenied",
	}
	caller := func(tid, id string) directory.Caller {
		return directory.Caller{Actor: audit.Actor{Type: "user", ID: id}, TenantID: tid}
	}
	dir := roles{of: map[string][]string{
		tidA + "/global":   {directory.GlobalAdministrator.ID},
		tidA + "/exchange": {directory.UserAdministrator.ID, directory.ExchangeAdministrator.ID},
		tidA + "/other":    {directory.SharePointAdministrator.ID},
	}}
	broken := roles{err: errkind.New(errkind.Unavailable, "the directory is down")}
	tests := []struct {
		name     string
		dir      roles
		c        directory.Caller
		wantIs   bool
		wantErr  string // in Authorize's error; "" for none
		wantKind errkind.Kind
		denied   bool // whether Authorize reports a refusal
	}{
		{"system", broken, directory.System, true, "", errkind.Internal, false},
		{"global administrator", dir, caller(tidA, "global"), true, "", errkind.Internal, false},
		{"workload administrator, mixed case", dir, caller(strings.ToUpper(tidA), "EXCHANGE"), true, "", errkind.Internal, false},
		{"another role", dir, caller(tidA, "other"), false,
			`needs the directory role Global Administrator or Exchange Administrator in tenant ` + tidA +
				` to manage mailboxes (customerkey directory-role assign --role "Exchange Administrator" --principal-id other)`,
			errkind.PermissionDenied, true},
		{"no id", dir, caller(tidA, ""), false, "needs the directory role", errkind.PermissionDenied, true},
		{"another tenant", dir, caller(tidB, "global"), false,
			"belongs to tenant " + tidB + " and cannot manage the mailboxes of tenant " + tidA, errkind.PermissionDenied, true},
		{"directory down", broken, caller(tidA, "global"), false, "the directory is down", errkind.Unavailable, false},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is, err := admins.Is(ctx, tt.dir, tt.c, tidA)
			if is != tt.wantIs || (err != nil) != (tt.wantKind == errkind.Unavailable) {
				t.Errorf("Is = %v, %v; want %v", is, err, tt.wantIs)
			}
			var refused error
			err = admins.Authorize(ctx, tt.dir, tt.c, tidA, func(err error) { refused = err })
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Authorize = %v, want nil", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errkind.Is(err, tt.wantKind) {
				t.Fatalf("Authorize = %v, want %s containing %q", err, tt.wantKind, tt.wantErr)
			}
			if (refused != nil) != tt.denied || (refused != nil && !errors.Is(refused, err)) {
				t.Errorf("denied got %v, want a refusal: %v", refused, tt.denied)
			}
			if tt.denied {
				var e *errkind.Error
				if !errors.As(err, &e) || e.Code != "AccessDenied" {
					t.Errorf("the refusal %v has no code AccessDenied", err)
				}
			}
		})
	}
}

func TestCheckTenant(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{tidA, tidA},
		{" " + strings.ToUpper(tidB) + "\t", tidB},
		{"contoso.onmicrosoft.com", ""},
		{"", ""},
	} {
		got, err := scope.CheckTenant(tt.in)
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("CheckTenant(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if err != nil && !errkind.Is(err, errkind.NotFound) {
			t.Errorf("CheckTenant(%q) = %v; want NotFound", tt.in, err)
		}
	}
}

func TestPurposeAndDamaged(t *testing.T) {
	ctx := audit.WithMeta(context.Background(), audit.Meta{RequestID: "req-1"})
	if p := scope.Purpose(ctx); p.System || p.RequestID != "req-1" {
		t.Errorf("Purpose = %+v; want a user purpose naming req-1", p)
	}
	cause := errkind.New(errkind.Invalid, "message authentication failed")
	err := scope.Damaged("message body", cause)
	if !errkind.Is(err, errkind.Internal) || !errors.Is(err, cause) ||
		!strings.Contains(err.Error(), "the stored message body cannot be decrypted") {
		t.Errorf("Damaged = %v; want Internal, naming the data and wrapping the cause", err)
	}
}
