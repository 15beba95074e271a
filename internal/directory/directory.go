// Package directory owns tenants and their licences, users, applications
// (app registrations and their credentials), service principals and
// directory role assignments: the Microsoft Entra ID subset customerkey
// needs. It decides who may change the directory and records every change
// in the audit log in the same transaction. It owns the storage prefix
// "directory/". It must not import net/http or any storage implementation.
package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// Directory is the directory service. It is safe for concurrent use.
type Directory struct {
	store storage.Backend
	audit *audit.Log
	now   func() time.Time
	rand  io.Reader
	kdf   KDFParams
}

// Options configures a Directory.
type Options struct {
	Store storage.Backend
	Audit *audit.Log
	Now   func() time.Time // default time.Now
	Rand  io.Reader        // default crypto/rand
	// KDF sets the password hashing cost; zero means DefaultKDF.
	KDF KDFParams
}

// New returns a Directory.
func New(o Options) *Directory {
	d := &Directory{store: o.Store, audit: o.Audit, now: o.Now, rand: o.Rand, kdf: o.KDF}
	if d.now == nil {
		d.now = time.Now
	}
	if d.rand == nil {
		d.rand = cryptoRand
	}
	if d.kdf == (KDFParams{}) {
		d.kdf = DefaultKDF
	}
	return d
}

// Caller is who asks for a change: a signed-in user or service principal
// of a tenant, or the system itself (first start, the operator API after it
// has checked the operator).
type Caller struct {
	audit.Actor
	// TenantID is the tenant the caller's token was issued in.
	TenantID string
	// vouched marks a caller whose right to the whole operation was checked
	// once up front (creating a tenant covers its first objects), so that
	// the records still name who asked.
	vouched bool
}

// System is the caller for changes the server makes by itself.
var System = Caller{Actor: audit.Actor{Type: "system", ID: "customerkey"}}

func (c Caller) isSystem() bool { return c.Type == "system" || c.vouched }

// Errors.
var (
	ErrTenantNotFound    = errkind.New(errkind.NotFound, "the tenant was not found").WithCode("TenantNotFound")
	ErrUserNotFound      = errkind.New(errkind.NotFound, "the user was not found").WithCode("UserNotFound")
	ErrAppNotFound       = errkind.New(errkind.NotFound, "the application was not found").WithCode("ApplicationNotFound")
	ErrSPNotFound        = errkind.New(errkind.NotFound, "the service principal was not found").WithCode("ServicePrincipalNotFound")
	ErrRoleNotFound      = errkind.New(errkind.NotFound, "the directory role was not found").WithCode("RoleNotFound")
	ErrAssignmentMissing = errkind.New(errkind.NotFound, "the role assignment was not found").WithCode("RoleAssignmentNotFound")
	ErrPrincipalNotFound = errkind.New(errkind.NotFound, "the principal was not found in the tenant").WithCode("PrincipalNotFound")
	// ErrBadCredentials is the one answer for a wrong secret, an unknown
	// client, a wrong password and an unknown user, so that none of them
	// tells an attacker which part was wrong.
	ErrBadCredentials = errkind.New(errkind.Unauthenticated, "the credentials are not valid").WithCode("InvalidCredentials")
)

// Storage layout; keys hold ids only, never names that could be secret.
const (
	pfx          = "directory/"
	kTenant      = pfx + "tenant/"      // {tid} -> Tenant
	kDomain      = pfx + "domain/"      // {domain} -> tid
	kUser        = pfx + "user/"        // {tid}/{oid} -> userRecord
	kUPN         = pfx + "upn/"         // {upn} -> tid/oid
	kApp         = pfx + "app/"         // {appId} -> appRecord
	kAppObj      = pfx + "appobj/"      // {tid}/{objectId} -> appId
	kSP          = pfx + "sp/"          // {tid}/{oid} -> ServicePrincipal
	kSPApp       = pfx + "spapp/"       // {tid}/{appId} -> oid
	kRole        = pfx + "roleassign/"  // {tid}/{id} -> RoleAssignment
	kPrincipalRA = pfx + "principalra/" // {tid}/{principalId}/{id} -> ""
	kObject      = pfx + "object/"      // {tid}/{oid} -> kind, for principal lookups
)

func newID(r io.Reader) (string, error) {
	u, err := uuid.NewRandomFromReader(r)
	if err != nil {
		return "", fmt.Errorf("directory: reading random: %w", err)
	}
	return u.String(), nil
}

// IsGUID reports whether s is a GUID in its canonical form.
func IsGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// notFound turns storage.ErrNotFound into the domain's error.
func notFound(err, domainErr error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return domainErr
	}
	return err
}

func listJSON[T any](tx storage.Tx, prefix string) ([]T, error) {
	entries, err := tx.List(prefix, "", 0)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(entries))
	for _, e := range entries {
		var v T
		if err := json.Unmarshal(e.Value, &v); err != nil {
			return nil, fmt.Errorf("directory: decoding %s: %w", e.Key, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// record writes an audit event for a change made by c in tenant tid.
func (d *Directory) record(ctx context.Context, tx storage.Tx, c Caller, tid, action, target string) error {
	if d.audit == nil {
		return nil
	}
	a := c.Actor
	if c.TenantID != "" && c.TenantID != tid {
		a.TenantID = c.TenantID
	}
	return d.audit.RecordTx(ctx, tx, audit.Event{TenantID: tid, Actor: a, Action: action, Target: target, Result: audit.Success})
}

// recordDenied writes an audit event for a refused change; the refusal
// itself changed nothing, so it gets its own transaction.
func (d *Directory) recordDenied(ctx context.Context, c Caller, tid, action, target string, reason error) {
	if d.audit == nil || tid == "" {
		return
	}
	a := c.Actor
	if c.TenantID != "" && c.TenantID != tid {
		a.TenantID = c.TenantID
	}
	_ = d.audit.Record(ctx, audit.Event{TenantID: tid, Actor: a, Action: action, Target: target,
		Result: audit.Denied, Reason: errkind.Public(reason)})
}

func lower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
