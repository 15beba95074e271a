package directory

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// Tenant is an organization's directory.
type Tenant struct {
	ID            string    `json:"id"`
	DisplayName   string    `json:"displayName"`
	DefaultDomain string    `json:"defaultDomain"`
	Licenses      []License `json:"licenses"`
	// Operator marks the tenant that runs the service.
	Operator bool `json:"operator,omitempty"`
	// FirstAdmins are the object ids of the Global Administrator user and
	// the automation application's service principal created with the
	// tenant; they own its subscriptions unless told otherwise.
	FirstAdmins []string  `json:"firstAdmins,omitempty"`
	CreatedAt   time.Time `json:"createdDateTime"`
}

// License is a subscribed SKU.
type License struct {
	SKU
	PrepaidUnits int       `json:"prepaidUnits"`
	AddedAt      time.Time `json:"addedDateTime"`
}

// HasServicePlan reports whether any licence of t includes plan id.
func (t Tenant) HasServicePlan(id string) bool {
	for _, l := range t.Licenses {
		for _, p := range l.ServicePlans {
			if p.ID == id {
				return true
			}
		}
	}
	return false
}

// TenantSpec describes a new tenant.
type TenantSpec struct {
	DisplayName string
	// Domain is the default domain; empty derives "<name>.onmicrosoft.com".
	Domain   string
	Licenses []string // SKU names, part numbers or ids
	Operator bool
	// ID forces the tenant id (tests, restores); empty picks a random GUID.
	ID string
}

// DefaultLicenseUnits is how many seats a licence added without a count holds.
const DefaultLicenseUnits = 25

var (
	domainRE  = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
	nonAlnum  = regexp.MustCompile(`[^a-z0-9]+`)
	errOpOnly = errkind.New(errkind.PermissionDenied, "only the operator can manage tenants and their licences").WithCode("Authorization_RequestDenied")
)

// authorizeOperator allows the system and Global Administrators of the
// operator tenant.
func (d *Directory) authorizeOperator(ctx context.Context, c Caller) error {
	if c.isSystem() {
		return nil
	}
	t, err := d.Tenant(ctx, c.TenantID)
	if err != nil || !t.Operator {
		return errOpOnly
	}
	roles, err := d.RolesOf(ctx, c.TenantID, c.ID)
	if err != nil {
		return err
	}
	if !slices.Contains(roles, GlobalAdministrator.ID) {
		return errOpOnly
	}
	return nil
}

// IsOperator reports whether c may act as the operator.
func (d *Directory) IsOperator(ctx context.Context, c Caller) error {
	return d.authorizeOperator(ctx, c)
}

func licenses(names []string, now time.Time) ([]License, error) {
	var out []License
	for _, n := range names {
		sku, ok := LookupSKU(n)
		if !ok {
			return nil, errkind.Errorf(errkind.Invalid, "unknown licence %q; known licences: %s", n, SKUNames())
		}
		if slices.ContainsFunc(out, func(l License) bool { return l.ID == sku.ID }) {
			continue
		}
		out = append(out, License{SKU: sku, PrepaidUnits: DefaultLicenseUnits, AddedAt: now})
	}
	return out, nil
}

// CreateTenant creates a tenant. The first Global Administrator and the
// first-party service principals are added by the caller (see Provision).
func (d *Directory) CreateTenant(ctx context.Context, c Caller, spec TenantSpec) (Tenant, error) {
	if err := d.authorizeOperator(ctx, c); err != nil {
		return Tenant{}, err
	}
	name := strings.TrimSpace(spec.DisplayName)
	if name == "" || len(name) > 256 {
		return Tenant{}, errkind.New(errkind.Invalid, "the tenant needs a display name of 1 to 256 characters")
	}
	now := d.now().UTC()
	lic, err := licenses(spec.Licenses, now)
	if err != nil {
		return Tenant{}, err
	}
	id := spec.ID
	if id == "" {
		if id, err = newID(d.rand); err != nil {
			return Tenant{}, err
		}
	} else if !IsGUID(id) {
		return Tenant{}, errkind.Errorf(errkind.Invalid, "the tenant id %q is not a GUID", id)
	}
	domain := lower(spec.Domain)
	derived := domain == ""
	if derived {
		base := strings.Trim(nonAlnum.ReplaceAllString(lower(name), ""), "-")
		if base == "" {
			base = "tenant"
		}
		if len(base) > 27 {
			base = base[:27]
		}
		domain = base + ".onmicrosoft.com"
	}
	if !domainRE.MatchString(domain) || len(domain) > 253 {
		return Tenant{}, errkind.Errorf(errkind.Invalid, "the domain %q is not a valid DNS name such as contoso.onmicrosoft.com", spec.Domain)
	}
	t := Tenant{ID: id, DisplayName: name, DefaultDomain: domain, Licenses: lic, Operator: spec.Operator, CreatedAt: now}
	err = d.store.Update(ctx, func(tx storage.Tx) error {
		t.DefaultDomain = domain
		if derived {
			// Derived domains get a number when the name is taken, as
			// Entra ID suggests contoso1.onmicrosoft.com.
			base := strings.TrimSuffix(domain, ".onmicrosoft.com")
			for i := 1; ; i++ {
				if _, err := tx.Get(kDomain + t.DefaultDomain); errors.Is(err, storage.ErrNotFound) {
					break
				} else if err != nil {
					return err
				}
				t.DefaultDomain = base + itoa(i) + ".onmicrosoft.com"
			}
		} else if _, err := tx.Get(kDomain + domain); err == nil {
			return errkind.Errorf(errkind.AlreadyExists, "the domain %q is already used by another tenant", domain)
		} else if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if err := storage.PutJSON(tx, kTenant+t.ID, t, storage.MustNotExist); err != nil {
			if errors.Is(err, storage.ErrConflict) {
				return errkind.Errorf(errkind.AlreadyExists, "a tenant with id %s already exists", t.ID)
			}
			return err
		}
		if _, err := tx.Put(kDomain+t.DefaultDomain, []byte(t.ID), storage.MustNotExist); err != nil {
			return err
		}
		return d.record(ctx, tx, c, t.ID, "directory/tenants/create", t.DisplayName+" ("+t.DefaultDomain+")")
	})
	return t, err
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for ; i > 0; i /= 10 {
		n--
		b[n] = byte('0' + i%10)
	}
	return string(b[n:])
}

// Tenant returns a tenant by id.
func (d *Directory) Tenant(ctx context.Context, id string) (Tenant, error) {
	var t Tenant
	if !IsGUID(id) {
		return t, ErrTenantNotFound
	}
	err := d.store.View(ctx, func(tx storage.Tx) error {
		_, err := storage.GetJSON(tx, kTenant+lower(id), &t)
		return notFound(err, ErrTenantNotFound)
	})
	return t, err
}

// ResolveTenant finds a tenant by id or by one of its domains, as the
// token endpoint's path accepts either.
func (d *Directory) ResolveTenant(ctx context.Context, idOrDomain string) (Tenant, error) {
	if IsGUID(idOrDomain) {
		return d.Tenant(ctx, idOrDomain)
	}
	dom := lower(idOrDomain)
	if !domainRE.MatchString(dom) {
		return Tenant{}, ErrTenantNotFound
	}
	var id string
	err := d.store.View(ctx, func(tx storage.Tx) error {
		e, err := tx.Get(kDomain + dom)
		if err != nil {
			return notFound(err, ErrTenantNotFound)
		}
		id = string(e.Value)
		return nil
	})
	if err != nil {
		return Tenant{}, err
	}
	return d.Tenant(ctx, id)
}

// Tenants lists every tenant; only the operator may.
func (d *Directory) Tenants(ctx context.Context, c Caller) ([]Tenant, error) {
	if err := d.authorizeOperator(ctx, c); err != nil {
		return nil, err
	}
	var out []Tenant
	err := d.store.View(ctx, func(tx storage.Tx) error {
		var err error
		out, err = listJSON[Tenant](tx, kTenant)
		return err
	})
	return out, err
}

// OperatorTenant returns the operator's tenant.
func (d *Directory) OperatorTenant(ctx context.Context) (Tenant, error) {
	var op Tenant
	err := d.store.View(ctx, func(tx storage.Tx) error {
		all, err := listJSON[Tenant](tx, kTenant)
		for _, t := range all {
			if t.Operator {
				op = t
				return nil
			}
		}
		if err == nil {
			err = ErrTenantNotFound
		}
		return err
	})
	return op, err
}

// AddLicense subscribes tenant tid to a SKU; adding one it has is a no-op.
func (d *Directory) AddLicense(ctx context.Context, c Caller, tid, sku string) (Tenant, error) {
	return d.changeLicenses(ctx, c, tid, "directory/licenses/add", sku, func(t *Tenant, k SKU) error {
		if !slices.ContainsFunc(t.Licenses, func(l License) bool { return l.ID == k.ID }) {
			t.Licenses = append(t.Licenses, License{SKU: k, PrepaidUnits: DefaultLicenseUnits, AddedAt: d.now().UTC()})
		}
		return nil
	})
}

// RemoveLicense removes a SKU from tenant tid.
func (d *Directory) RemoveLicense(ctx context.Context, c Caller, tid, sku string) (Tenant, error) {
	return d.changeLicenses(ctx, c, tid, "directory/licenses/remove", sku, func(t *Tenant, k SKU) error {
		i := slices.IndexFunc(t.Licenses, func(l License) bool { return l.ID == k.ID })
		if i < 0 {
			return errkind.Errorf(errkind.NotFound, "the tenant has no %q licence", k.Name)
		}
		t.Licenses = slices.Delete(t.Licenses, i, i+1)
		return nil
	})
}

func (d *Directory) changeLicenses(ctx context.Context, c Caller, tid, action, sku string, change func(*Tenant, SKU) error) (Tenant, error) {
	if err := d.authorizeOperator(ctx, c); err != nil {
		return Tenant{}, err
	}
	k, ok := LookupSKU(sku)
	if !ok {
		return Tenant{}, errkind.Errorf(errkind.Invalid, "unknown licence %q; known licences: %s", sku, SKUNames())
	}
	if !IsGUID(tid) {
		return Tenant{}, ErrTenantNotFound
	}
	var t Tenant
	err := d.store.Update(ctx, func(tx storage.Tx) error {
		v, err := storage.GetJSON(tx, kTenant+lower(tid), &t)
		if err != nil {
			return notFound(err, ErrTenantNotFound)
		}
		if err := change(&t, k); err != nil {
			return err
		}
		if err := storage.PutJSON(tx, kTenant+t.ID, t, v); err != nil {
			return err
		}
		return d.record(ctx, tx, c, t.ID, action, k.Name)
	})
	return t, err
}

// setFirstAdmins records the tenant's first administrators.
func (d *Directory) setFirstAdmins(ctx context.Context, tid string, ids []string) (Tenant, error) {
	var t Tenant
	err := d.store.Update(ctx, func(tx storage.Tx) error {
		v, err := storage.GetJSON(tx, kTenant+tid, &t)
		if err != nil {
			return notFound(err, ErrTenantNotFound)
		}
		t.FirstAdmins = ids
		return storage.PutJSON(tx, kTenant+tid, t, v)
	})
	return t, err
}
