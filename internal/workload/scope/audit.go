package scope

import (
	"context"
	"log/slog"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// Audit records the changes a workload makes to its scopes, and the
// refused attempts, in the tenant's audit log.
type Audit struct {
	// Log is the audit log; nil records nothing (tests).
	Log *audit.Log
	// Warn receives the refusals that could not be recorded; required
	// with Log.
	Warn *slog.Logger
	// Scope names what changed in those warnings ("mailbox").
	Scope string
}

// Record writes the success of c's action on target inside tx, so that
// the change and its record commit together.
func (a Audit) Record(ctx context.Context, tx storage.Tx, c directory.Caller, tid, action, target string) error {
	if a.Log == nil {
		return nil
	}
	return a.Log.RecordTx(ctx, tx, audit.Event{TenantID: tid, Actor: actor(c, tid), Action: action, Target: target, Result: audit.Success})
}

// Denied records a refusal in its own transaction: the refusal changed
// nothing else. A failure to record it is logged, not returned: the caller
// answers with the refusal either way.
func (a Audit) Denied(ctx context.Context, c directory.Caller, tid, action, target string, why error) {
	if a.Log == nil {
		return
	}
	if err := a.Log.Record(ctx, audit.Event{TenantID: tid, Actor: actor(c, tid), Action: action, Target: target,
		Result: audit.Denied, Reason: errkind.Public(why)}); err != nil {
		a.Warn.Warn("recording a refused "+a.Scope+" change", "tenant", tid, "action", action, "err", err)
	}
}

// actor is c as the audit log of tid names it: with its own tenant when
// that is another one.
func actor(c directory.Caller, tid string) audit.Actor {
	a := c.Actor
	if c.TenantID != "" && c.TenantID != tid {
		a.TenantID = c.TenantID
	}
	return a
}
