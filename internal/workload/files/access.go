package files

import (
	"context"
	"slices"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
)

// adminRoles may create sites and read and write every site's files.
var adminRoles = []directory.RoleDefinition{directory.GlobalAdministrator, directory.SharePointAdministrator}

func isSystem(c directory.Caller) bool { return c.Type == "system" }

// inTenant reports whether c may see tenant tid's objects at all. Callers
// of other tenants are answered NotFound for anything inside tid.
func inTenant(c directory.Caller, tid string) bool { return isSystem(c) || lower(c.TenantID) == tid }

// isAdmin reports whether c holds one of adminRoles in tid.
func (s *Service) isAdmin(ctx context.Context, c directory.Caller, tid string) (bool, error) {
	if isSystem(c) {
		return true, nil
	}
	if !inTenant(c, tid) || c.ID == "" {
		return false, nil
	}
	roles, err := s.dir.RolesOf(ctx, tid, lower(c.ID))
	if err != nil {
		return false, err
	}
	for _, r := range adminRoles {
		if slices.Contains(roles, r.ID) {
			return true, nil
		}
	}
	return false, nil
}

// authorizeAdmin returns nil when c may manage tid's sites, and otherwise
// audits and returns the refusal.
func (s *Service) authorizeAdmin(ctx context.Context, c directory.Caller, tid, action, target string) error {
	if !inTenant(c, tid) {
		err := errkind.Errorf(errkind.PermissionDenied,
			"the caller %s belongs to tenant %s and cannot manage the sites of tenant %s; sign in to %s",
			c.ID, c.TenantID, tid, tid).WithCode("AccessDenied")
		s.recordDenied(ctx, c, tid, action, target, err)
		return err
	}
	ok, err := s.isAdmin(ctx, c, tid)
	if err != nil {
		return err
	}
	if !ok {
		err := errkind.Errorf(errkind.PermissionDenied,
			"the caller %s needs the directory role Global Administrator or SharePoint Administrator in tenant %s to manage sites "+
				"(customerkey directory-role assign --role \"SharePoint Administrator\" --principal-id %s)", c.ID, tid, c.ID).
			WithCode("AccessDenied")
		s.recordDenied(ctx, c, tid, action, target, err)
		return err
	}
	return nil
}

// authorizeSite returns nil when c may read and write site's files: one of
// its owners, or a Global or SharePoint Administrator of its tenant. The
// caller has already checked that c is in the site's tenant.
func (s *Service) authorizeSite(ctx context.Context, c directory.Caller, site Site) error {
	if slices.Contains(site.Owners, lower(c.ID)) {
		return nil
	}
	ok, err := s.isAdmin(ctx, c, site.TenantID)
	if err != nil {
		return err
	}
	if !ok {
		return errkind.Errorf(errkind.PermissionDenied,
			"only the owners of the site %s and the Global and SharePoint Administrators of its tenant can use its files", site.URL).
			WithCode("AccessDenied")
	}
	return nil
}
