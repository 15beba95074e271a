package mail

import (
	"context"
	"slices"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
)

// adminRoles may manage a tenant's mailboxes and read the mailboxes that
// have no owner (shared, group, public folder).
var adminRoles = []directory.RoleDefinition{directory.GlobalAdministrator, directory.ExchangeAdministrator}

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

// authorizeAdmin returns nil when c may manage tid's mailboxes, and
// otherwise audits and returns the refusal.
func (s *Service) authorizeAdmin(ctx context.Context, c directory.Caller, tid, action, target string) error {
	if !inTenant(c, tid) {
		err := errkind.Errorf(errkind.PermissionDenied,
			"the caller %s belongs to tenant %s and cannot manage the mailboxes of tenant %s; sign in to %s",
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
			"the caller %s needs the directory role Global Administrator or Exchange Administrator in tenant %s to manage mailboxes "+
				"(customerkey directory-role assign --role \"Exchange Administrator\" --principal-id %s)", c.ID, tid, c.ID).
			WithCode("AccessDenied")
		s.recordDenied(ctx, c, tid, action, target, err)
		return err
	}
	return nil
}

// authorizeContent returns nil when c may read and write the messages of
// m: its owner, or, for a mailbox without one (shared, group, public
// folder), a Global or Exchange Administrator of its tenant. The caller has
// already checked that c is in m's tenant.
func (s *Service) authorizeContent(ctx context.Context, c directory.Caller, m Mailbox) error {
	if isSystem(c) {
		return nil
	}
	if m.Owner != "" {
		if lower(c.ID) == m.Owner {
			return nil
		}
		return errkind.Errorf(errkind.PermissionDenied,
			"only the owner of the mailbox %s can read or change its messages", m.PrimarySMTPAddress).WithCode("AccessDenied")
	}
	ok, err := s.isAdmin(ctx, c, m.TenantID)
	if err != nil {
		return err
	}
	if !ok {
		return errkind.Errorf(errkind.PermissionDenied,
			"the %s %s has no owner; only a Global Administrator or Exchange Administrator of its tenant can read or change its messages",
			m.Type, m.PrimarySMTPAddress).WithCode("AccessDenied")
	}
	return nil
}
