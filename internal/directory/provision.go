package directory

import (
	"context"
	"fmt"
	"io"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
)

// FirstPartyApp is an application of the operator that exists in every
// deployment with a well-known application id.
type FirstPartyApp struct {
	AppID        string
	DisplayName  string
	PublicClient bool
	// EveryTenant apps get a service principal in each new tenant, as
	// Microsoft pre-provisions its own tools; the workload apps do not: a
	// tenant admin registers them, which is what the seed asks for.
	EveryTenant  bool
	RedirectURIs []string
}

// Well-known application ids.
const (
	OnboardingAppID = "19f7f505-34aa-44a4-9dcc-6a768854d2ea"
	M365DAREAppID   = "c066d759-24ae-40e7-a56f-027002b5d3e4"
	ExchangeAppID   = "00000002-0000-0ff1-ce00-000000000000"
	SharePointAppID = "00000003-0000-0ff1-ce00-000000000000"
	// CLIAppID is the Azure CLI's public client id, which azidentity's
	// device-code and browser credentials use by default.
	CLIAppID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
)

// FirstPartyApps are registered in the operator tenant at first start.
var FirstPartyApps = []FirstPartyApp{
	{AppID: OnboardingAppID, DisplayName: "Customer Key Onboarding"},
	{AppID: M365DAREAppID, DisplayName: "M365DataAtRestEncryption"},
	{AppID: ExchangeAppID, DisplayName: "Office 365 Exchange Online"},
	{AppID: SharePointAppID, DisplayName: "Office 365 SharePoint Online"},
	{AppID: CLIAppID, DisplayName: "customerkey CLI", PublicClient: true, EveryTenant: true,
		RedirectURIs: []string{"http://localhost"}},
}

// Provisioned is a new tenant with its first administrators. The password
// and the client secret are shown once, here.
type Provisioned struct {
	Tenant        Tenant
	Admin         User
	AdminPassword secret.String
	AdminApp      Application
	AdminSP       ServicePrincipal
	AdminSecret   PasswordCredential
	ClientSecret  secret.String
}

// ProvisionTenant creates a tenant with a first Global Administrator user
// and an application holding Global Administrator, for automation, plus
// the service principals of the first-party apps every tenant has. All
// input is checked before anything is written.
func (d *Directory) ProvisionTenant(ctx context.Context, c Caller, spec TenantSpec) (Provisioned, error) {
	var p Provisioned
	if _, err := licenses(spec.Licenses, d.now()); err != nil {
		return p, err
	}
	t, err := d.CreateTenant(ctx, c, spec)
	if err != nil {
		return p, err
	}
	p.Tenant = t
	// The operator's right to create the tenant covers its first objects.
	sys := c
	sys.vouched = true
	pw, err := newPassword(d.rand)
	if err != nil {
		return p, err
	}
	p.AdminPassword = secret.NewString(pw)
	if p.Admin, err = d.CreateUser(ctx, sys, t.ID, UserSpec{UserPrincipalName: "admin@" + t.DefaultDomain,
		DisplayName: t.DisplayName + " administrator", Password: p.AdminPassword}); err != nil {
		return p, err
	}
	if _, err := d.AssignRole(ctx, sys, t.ID, GlobalAdministrator.ID, p.Admin.ID); err != nil {
		return p, err
	}
	if p.AdminApp, p.AdminSP, err = d.CreateApplication(ctx, sys, t.ID, AppSpec{DisplayName: t.DisplayName + " automation"}); err != nil {
		return p, err
	}
	if p.AdminSecret, p.ClientSecret, err = d.AddPassword(ctx, sys, t.ID, p.AdminApp.AppID, "created with the tenant", MaxSecretLife); err != nil {
		return p, err
	}
	if _, err := d.AssignRole(ctx, sys, t.ID, GlobalAdministrator.ID, p.AdminSP.ID); err != nil {
		return p, err
	}
	if p.Tenant, err = d.setFirstAdmins(ctx, t.ID, []string{p.Admin.ID, p.AdminSP.ID}); err != nil {
		return p, err
	}
	for _, fp := range FirstPartyApps {
		if !fp.EveryTenant || t.Operator {
			continue
		}
		if _, err := d.CreateServicePrincipal(ctx, sys, t.ID, fp.AppID); err != nil {
			return p, fmt.Errorf("directory: provisioning %s: %w", fp.DisplayName, err)
		}
	}
	return p, nil
}

// RegisterFirstPartyApps registers the first-party applications in the
// operator tenant; ones already there are left alone.
func (d *Directory) RegisterFirstPartyApps(ctx context.Context, operatorTenant string) error {
	for _, fp := range FirstPartyApps {
		if _, err := d.Application(ctx, fp.AppID); err == nil {
			continue
		}
		_, _, err := d.CreateApplication(ctx, System, operatorTenant, AppSpec{AppID: fp.AppID, DisplayName: fp.DisplayName,
			MultiTenant: true, PublicClient: fp.PublicClient, RedirectURIs: fp.RedirectURIs})
		if err != nil && !errkind.Is(err, errkind.AlreadyExists) {
			return fmt.Errorf("directory: registering %s: %w", fp.DisplayName, err)
		}
	}
	return nil
}

// newPassword returns a 20-character password with upper and lower case
// letters, digits and a symbol, which any complexity rule accepts.
func newPassword(r io.Reader) (string, error) {
	const (
		upper  = "ABCDEFGHJKLMNPQRSTUVWXYZ"
		lowerS = "abcdefghijkmnopqrstuvwxyz"
		digits = "23456789"
		syms   = "!#%+-=?@"
	)
	sets := []string{upper, lowerS, digits, syms}
	all := upper + lowerS + digits + syms
	b := make([]byte, 20)
	var buf [1]byte
	for i := range b {
		set := all
		if i < len(sets) {
			set = sets[i]
		}
		limit := 256 - 256%len(set) // an int: for 8 symbols it is 256
		for {
			if _, err := io.ReadFull(r, buf[:]); err != nil {
				return "", fmt.Errorf("directory: reading random: %w", err)
			}
			if int(buf[0]) < limit {
				b[i] = set[int(buf[0])%len(set)]
				break
			}
		}
	}
	// Move the guaranteed characters away from the front.
	for i := len(b) - 1; i > 0; i-- {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return "", fmt.Errorf("directory: reading random: %w", err)
		}
		j := int(buf[0]) % (i + 1)
		b[i], b[j] = b[j], b[i]
	}
	return string(b), nil
}
