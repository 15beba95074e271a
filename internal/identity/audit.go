package identity

import (
	"context"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// Audited actions.
const (
	actionToken         = "identity/token"
	actionDeviceStart   = "identity/deviceCode/start"
	actionDeviceApprove = "identity/deviceCode/approve"
	actionDeviceDeny    = "identity/deviceCode/deny"
	actionAuthorize     = "identity/authorize"
)

func appActor(appID, spID, homeTenant, tid string) audit.Actor {
	a := audit.Actor{Type: "servicePrincipal", ID: spID, Name: clip(appID)}
	if homeTenant != "" && homeTenant != tid {
		a.TenantID = homeTenant
	}
	return a
}

func userActor(oid, upn string) audit.Actor {
	return audit.Actor{Type: "user", ID: oid, Name: clip(upn)}
}

// event builds an audit record; err nil means success. The reason is the
// public message only: it never holds a secret.
func event(tid string, actor audit.Actor, action, target string, err error) audit.Event {
	ev := audit.Event{TenantID: tid, Actor: actor, Action: action, Target: clip(target), Result: audit.Success}
	if err != nil {
		ev.Result = audit.Failure
		switch errkind.KindOf(err) {
		case errkind.Unauthenticated, errkind.PermissionDenied, errkind.TooManyRequests:
			ev.Result = audit.Denied
		}
		ev.Reason = errkind.Public(err)
	}
	return ev
}

// recordRefusal writes the audit record of a refused request in its own
// transaction. Without a tenant (the one asked does not exist) there is
// no log to write to, so the refusal goes to the service log at info level.
func (s *Service) recordRefusal(ctx context.Context, tid string, actor audit.Actor, action, target string, err error) {
	if tid == "" || s.audit == nil {
		if tid == "" {
			m := audit.MetaFrom(ctx)
			s.log.InfoContext(ctx, "identity: request refused", "action", action, "actor", actor.Name,
				"target", clip(target), "reason", errkind.Public(err), "request_id", m.RequestID, "client_ip", m.ClientIP)
		}
		return
	}
	if rerr := s.audit.Record(ctx, event(tid, actor, action, target, err)); rerr != nil {
		s.log.WarnContext(ctx, "identity: writing an audit record failed", "action", action, "tenant", tid, "err", rerr)
	}
}

// recordTx writes a success record inside tx, so that the grant and its
// record commit together: no token leaves without its record.
func (s *Service) recordTx(ctx context.Context, tx storage.Tx, tid string, actor audit.Actor, action, target string) error {
	if s.audit == nil {
		return nil
	}
	return s.audit.RecordTx(ctx, tx, event(tid, actor, action, target, nil))
}

// recordSuccess writes a success record in its own transaction.
func (s *Service) recordSuccess(ctx context.Context, tid string, actor audit.Actor, action, target string) error {
	if s.audit == nil {
		return nil
	}
	return s.store.Update(ctx, func(tx storage.Tx) error { return s.recordTx(ctx, tx, tid, actor, action, target) })
}
