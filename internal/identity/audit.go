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

// Recorder durably records an event that commits with no other change;
// *audit.Batcher is one. Record returns once the record is durable.
type Recorder interface {
	Record(ctx context.Context, ev audit.Event) error
}

// record writes ev on its own: through the Recorder when there is one (a
// group commit shared with other requests), else in a transaction of its
// own. Either way it is durable when record returns nil.
func (s *Service) record(ctx context.Context, ev audit.Event) error {
	if s.recorder != nil {
		return s.recorder.Record(ctx, ev)
	}
	return s.audit.Record(ctx, ev)
}

// recordRefusal writes the audit record of a refused request on its own.
// Without a tenant (the one asked does not exist) there is
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
	if rerr := s.record(ctx, event(tid, actor, action, target, err)); rerr != nil {
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

// recordSuccess writes a success record on its own; the token is issued
// only once it is durable.
func (s *Service) recordSuccess(ctx context.Context, tid string, actor audit.Actor, action, target string) error {
	if s.audit == nil {
		return nil
	}
	return s.record(ctx, event(tid, actor, action, target, nil))
}
