package directory

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// RoleDefinition is a built-in directory role; ID is Entra ID's template id.
type RoleDefinition struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	Description string `json:"description"`
}

// Built-in directory roles with Entra ID's template ids.
var (
	GlobalAdministrator           = RoleDefinition{"62e90394-69f5-4237-9190-012177145e10", "Global Administrator", "Can manage all aspects of the directory."}
	PrivilegedRoleAdministrator   = RoleDefinition{"e8611ab8-c189-46e8-94e1-60213ab1f814", "Privileged Role Administrator", "Can manage role assignments."}
	ApplicationAdministrator      = RoleDefinition{"9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3", "Application Administrator", "Can create and manage all aspects of app registrations and enterprise apps."}
	CloudApplicationAdministrator = RoleDefinition{"158c047a-c907-4556-b7ef-446551a6b5f7", "Cloud Application Administrator", "Can create and manage app registrations and enterprise apps."}
	UserAdministrator             = RoleDefinition{"fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator", "Can manage all aspects of users."}
	ComplianceAdministrator       = RoleDefinition{"17315797-102d-40b4-93e0-432062caca18", "Compliance Administrator", "Can manage compliance configuration, including Customer Key encryption policies."}
	ExchangeAdministrator         = RoleDefinition{"29232cdf-9323-42fd-ade2-1d097af3e4de", "Exchange Administrator", "Can manage all aspects of the Exchange product."}
	SharePointAdministrator       = RoleDefinition{"f28a1f50-f6e7-4571-818b-6a12f2af6b6c", "SharePoint Administrator", "Can manage all aspects of the SharePoint service."}
	DirectoryReaders              = RoleDefinition{"88d8e3e3-8f55-4a1e-953a-9b9898b8876b", "Directory Readers", "Can read basic directory information."}
)

// RoleDefinitions lists the built-in roles.
var RoleDefinitions = []RoleDefinition{GlobalAdministrator, PrivilegedRoleAdministrator, ApplicationAdministrator,
	CloudApplicationAdministrator, UserAdministrator, ComplianceAdministrator, ExchangeAdministrator,
	SharePointAdministrator, DirectoryReaders}

// LookupRole finds a role by id or display name, ignoring case.
func LookupRole(s string) (RoleDefinition, bool) {
	s = strings.TrimSpace(s)
	for _, r := range RoleDefinitions {
		if strings.EqualFold(r.ID, s) || strings.EqualFold(r.DisplayName, s) {
			return r, true
		}
	}
	return RoleDefinition{}, false
}

// Permission is a class of directory change.
type Permission int

// Permissions and who holds them.
const (
	ManageUsers Permission = iota
	ManageApplications
	ManageRoleAssignments
)

var holders = map[Permission][]RoleDefinition{
	ManageUsers:           {GlobalAdministrator, UserAdministrator},
	ManageApplications:    {GlobalAdministrator, ApplicationAdministrator, CloudApplicationAdministrator},
	ManageRoleAssignments: {GlobalAdministrator, PrivilegedRoleAdministrator},
}

func (p Permission) String() string {
	return [...]string{"manage users", "manage applications and service principals", "manage directory role assignments"}[p]
}

// RoleAssignment grants a role to a user or service principal in a tenant.
type RoleAssignment struct {
	ID               string    `json:"id"`
	TenantID         string    `json:"tenantId"`
	RoleDefinitionID string    `json:"roleDefinitionId"`
	PrincipalID      string    `json:"principalId"`
	DirectoryScopeID string    `json:"directoryScopeId"`
	CreatedAt        time.Time `json:"createdDateTime"`
}

// Authorize returns nil when c may exercise p in tenant tid: the system
// may do anything; everyone else only in its own tenant and only with a
// role that holds p.
func (d *Directory) Authorize(ctx context.Context, c Caller, tid string, p Permission) error {
	if c.isSystem() {
		return nil
	}
	if c.TenantID != tid {
		return errkind.Errorf(errkind.PermissionDenied, "the caller %s belongs to another tenant and cannot %s in tenant %s", c.ID, p, tid)
	}
	var roles []string
	err := d.store.View(ctx, func(tx storage.Tx) error {
		var err error
		roles, err = rolesOf(tx, tid, c.ID)
		return err
	})
	if err != nil {
		return err
	}
	for _, r := range holders[p] {
		if slices.Contains(roles, r.ID) {
			return nil
		}
	}
	names := make([]string, len(holders[p]))
	for i, r := range holders[p] {
		names[i] = r.DisplayName
	}
	return errkind.Errorf(errkind.PermissionDenied, "the caller %s needs one of the directory roles %s to %s",
		c.ID, strings.Join(names, ", "), p).WithCode("Authorization_RequestDenied")
}

// CanRead returns nil when c may read tenant tid's directory: its own
// tenant, or the system.
func (d *Directory) CanRead(c Caller, tid string) error {
	if c.isSystem() || c.TenantID == tid {
		return nil
	}
	return errkind.Errorf(errkind.PermissionDenied, "the caller %s belongs to another tenant and cannot read tenant %s", c.ID, tid).
		WithCode("Authorization_RequestDenied")
}

func rolesOf(tx storage.Tx, tid, principalID string) ([]string, error) {
	entries, err := tx.List(kPrincipalRA+tid+"/"+principalID+"/", "", 0)
	if err != nil {
		return nil, err
	}
	roles := make([]string, 0, len(entries))
	for _, e := range entries {
		roles = append(roles, string(e.Value))
	}
	return roles, nil
}

// RolesOf returns the role definition ids held by a principal in a tenant.
func (d *Directory) RolesOf(ctx context.Context, tid, principalID string) ([]string, error) {
	var roles []string
	err := d.store.View(ctx, func(tx storage.Tx) error {
		var err error
		roles, err = rolesOf(tx, tid, principalID)
		return err
	})
	return roles, err
}

// AssignRole grants role to a user or service principal of tenant tid.
// Assigning a role the principal already holds returns the existing
// assignment.
func (d *Directory) AssignRole(ctx context.Context, c Caller, tid, roleID, principalID string) (RoleAssignment, error) {
	const action = "directory/roleAssignments/create"
	role, ok := LookupRole(roleID)
	if !ok {
		return RoleAssignment{}, errkind.Errorf(errkind.Invalid, "the role %q is not a directory role; use one of the ids of GET /v1.0/roleManagement/directory/roleDefinitions", roleID)
	}
	if !IsGUID(principalID) {
		return RoleAssignment{}, ErrPrincipalNotFound
	}
	principalID = lower(principalID)
	if err := d.Authorize(ctx, c, tid, ManageRoleAssignments); err != nil {
		d.recordDenied(ctx, c, tid, action, principalID, err)
		return RoleAssignment{}, err
	}
	id, err := newID(d.rand)
	if err != nil {
		return RoleAssignment{}, err
	}
	ra := RoleAssignment{ID: id, TenantID: tid, RoleDefinitionID: role.ID, PrincipalID: principalID,
		DirectoryScopeID: "/", CreatedAt: d.now().UTC()}
	err = d.store.Update(ctx, func(tx storage.Tx) error {
		if _, err := tx.Get(kObject + tid + "/" + principalID); err != nil {
			return notFound(err, ErrPrincipalNotFound)
		}
		existing, err := tx.List(kPrincipalRA+tid+"/"+principalID+"/", "", 0)
		if err != nil {
			return err
		}
		for _, e := range existing {
			if string(e.Value) == role.ID {
				id := strings.TrimPrefix(e.Key, kPrincipalRA+tid+"/"+principalID+"/")
				_, err := storage.GetJSON(tx, kRole+tid+"/"+id, &ra)
				return err
			}
		}
		if err := storage.PutJSON(tx, kRole+tid+"/"+ra.ID, ra, storage.MustNotExist); err != nil {
			return err
		}
		if _, err := tx.Put(kPrincipalRA+tid+"/"+principalID+"/"+ra.ID, []byte(role.ID), storage.MustNotExist); err != nil {
			return err
		}
		return d.record(ctx, tx, c, tid, action, role.DisplayName+" -> "+principalID)
	})
	return ra, err
}

// RoleAssignments lists the role assignments of a tenant, optionally only
// those of one principal.
func (d *Directory) RoleAssignments(ctx context.Context, c Caller, tid, principalID string) ([]RoleAssignment, error) {
	if err := d.CanRead(c, tid); err != nil {
		return nil, err
	}
	var out []RoleAssignment
	err := d.store.View(ctx, func(tx storage.Tx) error {
		all, err := listJSON[RoleAssignment](tx, kRole+tid+"/")
		for _, ra := range all {
			if principalID == "" || ra.PrincipalID == principalID {
				out = append(out, ra)
			}
		}
		return err
	})
	return out, err
}

// RoleAssignment returns one assignment.
func (d *Directory) RoleAssignment(ctx context.Context, c Caller, tid, id string) (RoleAssignment, error) {
	if err := d.CanRead(c, tid); err != nil {
		return RoleAssignment{}, err
	}
	var ra RoleAssignment
	if !IsGUID(id) {
		return ra, ErrAssignmentMissing
	}
	err := d.store.View(ctx, func(tx storage.Tx) error {
		_, err := storage.GetJSON(tx, kRole+lower(tid)+"/"+lower(id), &ra)
		return notFound(err, ErrAssignmentMissing)
	})
	return ra, err
}

// RemoveRoleAssignment deletes an assignment.
func (d *Directory) RemoveRoleAssignment(ctx context.Context, c Caller, tid, id string) error {
	const action = "directory/roleAssignments/delete"
	if err := d.Authorize(ctx, c, tid, ManageRoleAssignments); err != nil {
		d.recordDenied(ctx, c, tid, action, id, err)
		return err
	}
	if !IsGUID(id) {
		return ErrAssignmentMissing
	}
	tid, id = lower(tid), lower(id)
	return d.store.Update(ctx, func(tx storage.Tx) error {
		var ra RoleAssignment
		if _, err := storage.GetJSON(tx, kRole+tid+"/"+id, &ra); err != nil {
			return notFound(err, ErrAssignmentMissing)
		}
		if err := tx.Delete(kRole+tid+"/"+id, storage.AnyVersion); err != nil {
			return err
		}
		if err := tx.Delete(kPrincipalRA+tid+"/"+ra.PrincipalID+"/"+id, storage.AnyVersion); err != nil {
			return err
		}
		return d.record(ctx, tx, c, tid, action, ra.RoleDefinitionID+" -> "+ra.PrincipalID)
	})
}
