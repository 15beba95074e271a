// Package scope holds what the workloads that keep scopes have in common.
// A scope is what one scope key protects: a mailbox (mail), a site (files)
// or a named encryption scope (encryption). Each workload keeps its scope
// key only wrapped under the policy key of the scope's effective data
// encryption policy, and its rules (which policy is effective, who may
// read the content) stay its own; this package has the rest: who
// administers a workload's scopes (Admins), how their changes and the
// refused attempts are audited (Audit), the background job that moves
// wrapped scope keys onto their effective policy version (Rewrapper), the
// set of tenants waiting for that job (Kicks), one page of a listing of
// scope records (List), the purpose of a user
// request's unwrap (Purpose) and the error for sealed data that no longer
// opens (Damaged).
//
// Of its own level it imports dep (the PolicyRef and Purpose types, and the
// wrap and unwrap calls, reached through the interface Keys declared here)
// and directory (Caller and the role definitions). Below that it uses
// errkind, secret, the storage port and audit. It owns no storage prefix:
// the workload that uses it names the records it works on. It must not
// import net/http or any storage implementation.
package scope

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
)

// IsSystem reports whether c is the service itself (background work).
func IsSystem(c directory.Caller) bool { return c.Type == "system" }

// InTenant reports whether c may see tenant tid's objects at all; tid is
// lowercase. Callers of other tenants are answered NotFound for anything
// inside tid.
func InTenant(c directory.Caller, tid string) bool { return IsSystem(c) || lower(c.TenantID) == tid }

// Roles is what Admins asks of the directory. *directory.Directory
// implements it.
type Roles interface {
	RolesOf(ctx context.Context, tid, principalID string) ([]string, error)
}

// Admins says who administers a workload's scopes in a tenant.
type Admins struct {
	// Roles are the directory roles that may: Global Administrator first,
	// then the workload's own, which a refusal tells how to assign.
	Roles []directory.RoleDefinition
	// Scopes names what they manage in refusals ("mailboxes").
	Scopes string
	// Code is the error code of refusals.
	Code string
}

// Is reports whether c holds one of a.Roles in tid (lowercase). The system
// always does.
func (a Admins) Is(ctx context.Context, dir Roles, c directory.Caller, tid string) (bool, error) {
	if IsSystem(c) {
		return true, nil
	}
	if !InTenant(c, tid) || c.ID == "" {
		return false, nil
	}
	roles, err := dir.RolesOf(ctx, tid, lower(c.ID))
	if err != nil {
		return false, err
	}
	for _, r := range a.Roles {
		if slices.Contains(roles, r.ID) {
			return true, nil
		}
	}
	return false, nil
}

// Authorize returns nil when c may manage tid's scopes. Otherwise it hands
// the refusal to denied, which audits it, and returns it; a failure to read
// c's roles is returned as it is, without calling denied.
func (a Admins) Authorize(ctx context.Context, dir Roles, c directory.Caller, tid string, denied func(error)) error {
	if !InTenant(c, tid) {
		err := errkind.Errorf(errkind.PermissionDenied,
			"the caller %s belongs to tenant %s and cannot manage the %s of tenant %s; sign in to %s",
			c.ID, c.TenantID, a.Scopes, tid, tid).WithCode(a.Code)
		denied(err)
		return err
	}
	ok, err := a.Is(ctx, dir, c, tid)
	if err != nil {
		return err
	}
	if !ok {
		own := a.Roles[len(a.Roles)-1].DisplayName
		err := errkind.Errorf(errkind.PermissionDenied,
			"the caller %s needs the directory role %s in tenant %s to manage %s "+
				"(customerkey directory-role assign --role %q --principal-id %s)", c.ID, roleList(a.Roles), tid, a.Scopes, own, c.ID).
			WithCode(a.Code)
		denied(err)
		return err
	}
	return nil
}

// roleList names roles as a refusal does: "A or B".
func roleList(roles []directory.RoleDefinition) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = r.DisplayName
	}
	return strings.Join(names, " or ")
}

// CheckTenant normalizes and checks a tenant id; a malformed one is not
// found.
func CheckTenant(tid string) (string, error) {
	tid = lower(tid)
	if !directory.IsGUID(tid) {
		return "", errkind.Errorf(errkind.NotFound, "the tenant %q was not found; a tenant id is a GUID", tid).WithCode("TenantNotFound")
	}
	return tid, nil
}

func lower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// Purpose is the purpose of a user request's unwrap of a scope key, naming
// the request being served. Unlike the rewrap job's, it fails once the
// customer revoked the root keys.
func Purpose(ctx context.Context) dep.Purpose {
	return dep.Purpose{RequestID: audit.MetaFrom(ctx).RequestID}
}

// Damaged reclassifies an envelope failure on data read from the
// workload's own store as Internal: the caller did nothing wrong, and the
// cause stays internal. what names the data ("message body").
func Damaged(what string, err error) error {
	return errkind.Wrap(errkind.Internal,
		fmt.Sprintf("the stored %s cannot be decrypted: its record is damaged or was moved; restore it from a backup", what), err)
}
