package directory_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
)

type env struct {
	dir   *directory.Directory
	audit *audit.Log
	store storage.Backend
	op    directory.Provisioned
}

// cheap keeps argon2id honest but fast enough for tests.
var cheap = directory.KDFParams{Time: 1, MemKiB: 64, Threads: 1}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	al := audit.New(audit.Options{Store: st})
	d := directory.New(directory.Options{Store: st, Audit: al, KDF: cheap})
	ctx := context.Background()
	op, err := d.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Operator", Domain: "operator.onmicrosoft.com", Operator: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.RegisterFirstPartyApps(ctx, op.Tenant.ID); err != nil {
		t.Fatal(err)
	}
	return &env{dir: d, audit: al, store: st, op: op}
}

func userCaller(p directory.Provisioned) directory.Caller {
	return directory.Caller{Actor: audit.Actor{Type: "user", ID: p.Admin.ID, Name: p.Admin.UserPrincipalName}, TenantID: p.Tenant.ID}
}

func appCaller(p directory.Provisioned) directory.Caller {
	return directory.Caller{Actor: audit.Actor{Type: "servicePrincipal", ID: p.AdminSP.ID, Name: p.AdminApp.AppID}, TenantID: p.Tenant.ID}
}

func TestProvisionTenant(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p, err := e.dir.ProvisionTenant(ctx, appCaller(e.op), directory.TenantSpec{DisplayName: "Contoso Ltd", Licenses: []string{"Microsoft 365 E5", "ENTERPRISEPACK"}})
	if err != nil {
		t.Fatalf("ProvisionTenant() err = %v", err)
	}
	if p.Tenant.DefaultDomain != "contosoltd.onmicrosoft.com" {
		t.Errorf("DefaultDomain = %q, want contosoltd.onmicrosoft.com", p.Tenant.DefaultDomain)
	}
	if !p.Tenant.HasServicePlan(directory.CustomerKeyPlan.ID) {
		t.Error("tenant with Microsoft 365 E5 lacks the Customer Key service plan")
	}
	if p.Admin.UserPrincipalName != "admin@contosoltd.onmicrosoft.com" {
		t.Errorf("admin UPN = %q", p.Admin.UserPrincipalName)
	}
	if _, err := e.dir.VerifyPassword(ctx, p.Tenant.ID, p.Admin.UserPrincipalName, p.AdminPassword); err != nil {
		t.Errorf("VerifyPassword(admin, generated password) err = %v, want nil", err)
	}
	if _, err := e.dir.VerifyClientSecret(ctx, p.AdminApp.AppID, p.ClientSecret); err != nil {
		t.Errorf("VerifyClientSecret(admin app) err = %v, want nil", err)
	}
	if !slices.Equal(p.Tenant.FirstAdmins, []string{p.Admin.ID, p.AdminSP.ID}) {
		t.Errorf("FirstAdmins = %v, want the admin user and the automation app", p.Tenant.FirstAdmins)
	}
	for _, id := range []string{p.Admin.ID, p.AdminSP.ID} {
		roles, err := e.dir.RolesOf(ctx, p.Tenant.ID, id)
		if err != nil || !slices.Contains(roles, directory.GlobalAdministrator.ID) {
			t.Errorf("RolesOf(%s) = %v, %v; want Global Administrator", id, roles, err)
		}
	}
	// The CLI's public client is provisioned; the workload apps are not.
	if _, err := e.dir.ServicePrincipalByAppID(ctx, p.Tenant.ID, directory.CLIAppID); err != nil {
		t.Errorf("CLI service principal missing: %v", err)
	}
	for _, app := range []string{directory.OnboardingAppID, directory.M365DAREAppID, directory.ExchangeAppID, directory.SharePointAppID} {
		if _, err := e.dir.ServicePrincipalByAppID(ctx, p.Tenant.ID, app); !errors.Is(err, directory.ErrSPNotFound) {
			t.Errorf("ServicePrincipalByAppID(%s) err = %v, want ErrSPNotFound", app, err)
		}
	}
	// A second tenant with the same name gets a numbered domain.
	p2, err := e.dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Contoso Ltd"})
	if err != nil || p2.Tenant.DefaultDomain != "contosoltd1.onmicrosoft.com" {
		t.Errorf("second Contoso domain = %q, %v; want contosoltd1.onmicrosoft.com", p2.Tenant.DefaultDomain, err)
	}
}

func TestCreateTenantErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cust, err := e.dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Fabrikam"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		caller directory.Caller
		spec   directory.TenantSpec
		want   errkind.Kind
	}{
		{"no name", directory.System, directory.TenantSpec{}, errkind.Invalid},
		{"unknown licence", directory.System, directory.TenantSpec{DisplayName: "X", Licenses: []string{"Office 365 E9"}}, errkind.Invalid},
		{"bad domain", directory.System, directory.TenantSpec{DisplayName: "X", Domain: "not a domain"}, errkind.Invalid},
		{"taken domain", directory.System, directory.TenantSpec{DisplayName: "X", Domain: "fabrikam.onmicrosoft.com"}, errkind.AlreadyExists},
		{"customer admin is not operator", userCaller(cust), directory.TenantSpec{DisplayName: "X"}, errkind.PermissionDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := e.dir.Tenants(ctx, directory.System)
			_, err := e.dir.ProvisionTenant(ctx, tc.caller, tc.spec)
			if got := errkind.KindOf(err); got != tc.want {
				t.Errorf("ProvisionTenant() err = %v (kind %v), want kind %v", err, got, tc.want)
			}
			after, _ := e.dir.Tenants(ctx, directory.System)
			if len(after) != len(before) {
				t.Errorf("a refused ProvisionTenant left a tenant behind: %d -> %d", len(before), len(after))
			}
		})
	}
}

func TestLicenses(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p, err := e.dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Tailspin", Licenses: []string{"Office 365 E3"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Tenant.HasServicePlan(directory.CustomerKeyPlan.ID) {
		t.Fatal("Office 365 E3 must not qualify for Customer Key")
	}
	op := appCaller(e.op)
	tn, err := e.dir.AddLicense(ctx, op, p.Tenant.ID, "Microsoft 365 E5 Compliance")
	if err != nil || !tn.HasServicePlan(directory.CustomerKeyPlan.ID) {
		t.Fatalf("AddLicense(E5 Compliance) = %v; qualifies %v", err, tn.HasServicePlan(directory.CustomerKeyPlan.ID))
	}
	if _, err := e.dir.AddLicense(ctx, userCaller(p), p.Tenant.ID, "Office 365 E5"); !errkind.Is(err, errkind.PermissionDenied) {
		t.Errorf("AddLicense by the customer's admin err = %v, want PermissionDenied", err)
	}
	if tn, err = e.dir.RemoveLicense(ctx, op, p.Tenant.ID, "INFORMATION_PROTECTION_COMPLIANCE"); err != nil || tn.HasServicePlan(directory.CustomerKeyPlan.ID) {
		t.Errorf("RemoveLicense = %v; still qualifies %v", err, tn.HasServicePlan(directory.CustomerKeyPlan.ID))
	}
	if _, err := e.dir.RemoveLicense(ctx, op, p.Tenant.ID, "Office 365 E5"); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("RemoveLicense of a licence the tenant lacks err = %v, want NotFound", err)
	}
}

func TestServicePrincipalRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cust, err := e.dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Woodgrove"})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := e.dir.CreateUser(ctx, userCaller(cust), cust.Tenant.ID, directory.UserSpec{UserPrincipalName: "kim@woodgrove.onmicrosoft.com", Password: secret.NewString("correct horse battery")})
	if err != nil {
		t.Fatal(err)
	}
	plainCaller := directory.Caller{Actor: audit.Actor{Type: "user", ID: plain.ID}, TenantID: cust.Tenant.ID}
	other, err := e.dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		caller directory.Caller
		appID  string
		want   errkind.Kind // Internal means success
	}{
		{"plain user refused", plainCaller, directory.ExchangeAppID, errkind.PermissionDenied},
		{"other tenant's admin refused", userCaller(other), directory.ExchangeAppID, errkind.PermissionDenied},
		{"unknown app", userCaller(cust), "11111111-2222-3333-4444-555555555555", errkind.NotFound},
		{"single-tenant app of another tenant", userCaller(cust), other.AdminApp.AppID, errkind.FailedPrecondition},
		{"global admin registers Exchange", userCaller(cust), directory.ExchangeAppID, errkind.Internal},
		{"twice", userCaller(cust), directory.ExchangeAppID, errkind.AlreadyExists},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp, err := e.dir.CreateServicePrincipal(ctx, tc.caller, cust.Tenant.ID, tc.appID)
			if tc.want == errkind.Internal {
				if err != nil {
					t.Fatalf("CreateServicePrincipal() err = %v", err)
				}
				if sp.AppOwnerTenantID != e.op.Tenant.ID || sp.TenantID != cust.Tenant.ID {
					t.Errorf("sp owner/tenant = %s/%s, want %s/%s", sp.AppOwnerTenantID, sp.TenantID, e.op.Tenant.ID, cust.Tenant.ID)
				}
				return
			}
			if got := errkind.KindOf(err); got != tc.want {
				t.Errorf("CreateServicePrincipal() err = %v (kind %v), want %v", err, got, tc.want)
			}
		})
	}
	// Application Administrator may; deleting removes the principal and its roles.
	sp, err := e.dir.ServicePrincipalByAppID(ctx, cust.Tenant.ID, directory.ExchangeAppID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.dir.AssignRole(ctx, userCaller(cust), cust.Tenant.ID, "Exchange Administrator", sp.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.dir.DeleteServicePrincipal(ctx, userCaller(cust), cust.Tenant.ID, sp.ID); err != nil {
		t.Fatalf("DeleteServicePrincipal() err = %v", err)
	}
	if _, err := e.dir.ServicePrincipalByAppID(ctx, cust.Tenant.ID, directory.ExchangeAppID); !errors.Is(err, directory.ErrSPNotFound) {
		t.Errorf("after delete, lookup err = %v, want ErrSPNotFound", err)
	}
	if ras, _ := e.dir.RoleAssignments(ctx, directory.System, cust.Tenant.ID, sp.ID); len(ras) != 0 {
		t.Errorf("after delete, %d role assignments remain", len(ras))
	}
	if _, err := e.dir.AssignRole(ctx, userCaller(cust), cust.Tenant.ID, "Application Administrator", plain.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dir.CreateServicePrincipal(ctx, plainCaller, cust.Tenant.ID, directory.ExchangeAppID); err != nil {
		t.Errorf("Application Administrator CreateServicePrincipal() err = %v, want nil", err)
	}
}

func TestCredentials(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	op := appCaller(e.op)
	cred, sec, err := e.dir.AddPassword(ctx, op, e.op.Tenant.ID, directory.OnboardingAppID, "workload", 0)
	if err != nil {
		t.Fatalf("AddPassword() err = %v", err)
	}
	if cred.Hash != nil || cred.Hint != sec.Reveal()[:3] || !strings.Contains(sec.Reveal(), "8Q~") || len(sec.Reveal()) != 40 {
		t.Errorf("AddPassword() = hint %q, hash %v, secret length %d", cred.Hint, cred.Hash, len(sec.Reveal()))
	}
	wrong := secret.NewString(sec.Reveal()[:39] + "x")
	tests := []struct {
		name  string
		appID string
		s     secret.String
		ok    bool
	}{
		{"right", directory.OnboardingAppID, sec, true},
		{"wrong", directory.OnboardingAppID, wrong, false},
		{"other app", directory.ExchangeAppID, sec, false},
		{"unknown app", "11111111-2222-3333-4444-555555555555", sec, false},
		{"not a guid", "../../x", sec, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.dir.VerifyClientSecret(ctx, tc.appID, tc.s)
			if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, directory.ErrBadCredentials)) {
				t.Errorf("VerifyClientSecret() err = %v, want ok=%v (else ErrBadCredentials)", err, tc.ok)
			}
		})
	}
	if err := e.dir.RemovePassword(ctx, op, e.op.Tenant.ID, directory.OnboardingAppID, cred.KeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dir.VerifyClientSecret(ctx, directory.OnboardingAppID, sec); !errors.Is(err, directory.ErrBadCredentials) {
		t.Errorf("removed secret still verifies: %v", err)
	}

	// Certificates: a self-signed one, registered and found by thumbprint.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "workload"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	cc, err := e.dir.AddCertificate(ctx, op, e.op.Tenant.ID, directory.OnboardingAppID, "cert", der)
	if err != nil {
		t.Fatalf("AddCertificate() err = %v", err)
	}
	if c, err := e.dir.CertificateFor(ctx, directory.OnboardingAppID, cc.Thumbprint, ""); err != nil || !c.Equal(mustParse(t, der)) {
		t.Errorf("CertificateFor(x5t) = %v", err)
	}
	if _, err := e.dir.CertificateFor(ctx, directory.OnboardingAppID, "bm9wZQ", ""); !errors.Is(err, directory.ErrBadCredentials) {
		t.Errorf("CertificateFor(unknown x5t) err = %v, want ErrBadCredentials", err)
	}
	if _, err := e.dir.AddCertificate(ctx, op, e.op.Tenant.ID, directory.OnboardingAppID, "junk", []byte("not a cert")); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("AddCertificate(junk) err = %v, want Invalid", err)
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestUsersAndPasswords(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p, err := e.dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Litware"})
	if err != nil {
		t.Fatal(err)
	}
	admin := userCaller(p)
	tests := []struct {
		name string
		spec directory.UserSpec
		want errkind.Kind
	}{
		{"ok", directory.UserSpec{UserPrincipalName: "Ana@Litware.onmicrosoft.com", Password: secret.NewString("s3cret-enough")}, errkind.Internal},
		{"duplicate", directory.UserSpec{UserPrincipalName: "ana@litware.onmicrosoft.com", Password: secret.NewString("s3cret-enough")}, errkind.AlreadyExists},
		{"foreign domain", directory.UserSpec{UserPrincipalName: "ana@contoso.com", Password: secret.NewString("s3cret-enough")}, errkind.Invalid},
		{"short password", directory.UserSpec{UserPrincipalName: "bo@litware.onmicrosoft.com", Password: secret.NewString("short")}, errkind.Invalid},
		{"no at", directory.UserSpec{UserPrincipalName: "bo", Password: secret.NewString("s3cret-enough")}, errkind.Invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := e.dir.CreateUser(ctx, admin, p.Tenant.ID, tc.spec)
			if tc.want == errkind.Internal {
				if err != nil || u.UserPrincipalName != "ana@litware.onmicrosoft.com" {
					t.Fatalf("CreateUser() = %+v, %v", u, err)
				}
				return
			}
			if got := errkind.KindOf(err); got != tc.want {
				t.Errorf("CreateUser() err = %v (kind %v), want %v", err, got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		upn, pw string
		ok      bool
	}{
		{"ana@litware.onmicrosoft.com", "s3cret-enough", true},
		{"ANA@litware.onmicrosoft.com", "s3cret-enough", true},
		{"ana@litware.onmicrosoft.com", "s3cret-enougH", false},
		{"nobody@litware.onmicrosoft.com", "s3cret-enough", false},
		{p.Admin.UserPrincipalName, "s3cret-enough", false},
	} {
		_, err := e.dir.VerifyPassword(ctx, p.Tenant.ID, tc.upn, secret.NewString(tc.pw))
		if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, directory.ErrBadCredentials)) {
			t.Errorf("VerifyPassword(%q) err = %v, want ok=%v", tc.upn, err, tc.ok)
		}
	}
	// A user of one tenant is not found through another.
	if _, err := e.dir.VerifyPassword(ctx, e.op.Tenant.ID, "ana@litware.onmicrosoft.com", secret.NewString("s3cret-enough")); !errors.Is(err, directory.ErrBadCredentials) {
		t.Errorf("cross-tenant VerifyPassword err = %v, want ErrBadCredentials", err)
	}
}

func TestChangesAreAudited(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p, err := e.dir.ProvisionTenant(ctx, appCaller(e.op), directory.TenantSpec{DisplayName: "Northwind"})
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := e.dir.CreateUser(ctx, userCaller(p), p.Tenant.ID, directory.UserSpec{UserPrincipalName: "lee@northwind.onmicrosoft.com", Password: secret.NewString("long enough pw")})
	_, _ = e.dir.CreateServicePrincipal(ctx, directory.Caller{Actor: audit.Actor{Type: "user", ID: plain.ID}, TenantID: p.Tenant.ID}, p.Tenant.ID, directory.ExchangeAppID)
	page, err := e.audit.List(ctx, p.Tenant.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, ev := range page.Events {
		actions = append(actions, ev.Action+":"+string(ev.Result))
		if strings.Contains(ev.Target, p.AdminPassword.Reveal()) || strings.Contains(ev.Reason, p.ClientSecret.Reveal()) {
			t.Errorf("audit record %+v holds a secret", ev)
		}
	}
	for _, want := range []string{"directory/tenants/create:success", "directory/users/create:success",
		"directory/roleAssignments/create:success", "directory/applications/create:success",
		"directory/applications/addPassword:success", "directory/servicePrincipals/create:denied"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit log lacks %s; have %v", want, actions)
		}
	}
	// The tenant's first objects are attributed to the operator who asked.
	for _, ev := range page.Events[:3] {
		if ev.Actor.ID != e.op.AdminSP.ID || ev.Actor.TenantID != e.op.Tenant.ID {
			t.Errorf("record %s actor = %+v, want the operator's app from the operator tenant", ev.Action, ev.Actor)
		}
	}
}
