package files

import (
	"context"
	"slices"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/workload/scope"
)

// admins may create sites and read and write every site's files.
var admins = scope.Admins{
	Roles:  []directory.RoleDefinition{directory.GlobalAdministrator, directory.SharePointAdministrator},
	Scopes: "sites", Code: "AccessDenied",
}

// authorizeAdmin returns nil when c may manage tid's sites, and otherwise
// audits and returns the refusal.
func (s *Service) authorizeAdmin(ctx context.Context, c directory.Caller, tid, action, target string) error {
	return admins.Authorize(ctx, s.dir, c, tid, func(err error) { s.audit.Denied(ctx, c, tid, action, target, err) })
}

// authorizeSite returns nil when c may read and write site's files: one of
// its owners, or a Global or SharePoint Administrator of its tenant. The
// caller has already checked that c is in the site's tenant.
func (s *Service) authorizeSite(ctx context.Context, c directory.Caller, site Site) error {
	if slices.Contains(site.Owners, lower(c.ID)) {
		return nil
	}
	ok, err := admins.Is(ctx, s.dir, c, site.TenantID)
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
