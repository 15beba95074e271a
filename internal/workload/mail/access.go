package mail

import (
	"context"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/workload/scope"
)

// admins may manage a tenant's mailboxes and read the mailboxes that have
// no owner (shared, group, public folder).
var admins = scope.Admins{
	Roles:  []directory.RoleDefinition{directory.GlobalAdministrator, directory.ExchangeAdministrator},
	Scopes: "mailboxes", Code: "AccessDenied",
}

// authorizeAdmin returns nil when c may manage tid's mailboxes, and
// otherwise audits and returns the refusal.
func (s *Service) authorizeAdmin(ctx context.Context, c directory.Caller, tid, action, target string) error {
	return admins.Authorize(ctx, s.dir, c, tid, func(err error) { s.audit.Denied(ctx, c, tid, action, target, err) })
}

// authorizeContent returns nil when c may read and write the messages of
// m: its owner, or, for a mailbox without one (shared, group, public
// folder), a Global or Exchange Administrator of its tenant. The caller has
// already checked that c is in m's tenant.
func (s *Service) authorizeContent(ctx context.Context, c directory.Caller, m Mailbox) error {
	if scope.IsSystem(c) {
		return nil
	}
	if m.Owner != "" {
		if lower(c.ID) == m.Owner {
			return nil
		}
		return errkind.Errorf(errkind.PermissionDenied,
			"only the owner of the mailbox %s can read or change its messages", m.PrimarySMTPAddress).WithCode("AccessDenied")
	}
	ok, err := admins.Is(ctx, s.dir, c, m.TenantID)
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
