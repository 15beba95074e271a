package rbac_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/customerkey/customerkey/internal/notify"
	"github.com/customerkey/customerkey/internal/rbac"
)

// TestRevocationAcrossNodes: with a notify.Bus between them, a role
// assignment removed (or made) through node A is seen by node B at once,
// though B's cache TTL is an hour and the clock never moves.
func TestRevocationAcrossNodes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	hub := notify.NewHub()
	node := func() *rbac.Service {
		return rbac.New(rbac.Options{Store: e.store, Audit: e.audit, Directory: e.dir, Scopes: e.scopes,
			Now: e.clock.Now, CacheTTL: time.Hour, Bus: hub.Node()})
	}
	a, b := node(), node()
	workload := e.app(t, e.a, "workload")
	check := func() error { return b.CheckData(ctx, workload, rbac.DataKeysUnwrap, e.a.key1) }
	if err := check(); !isDenied(err) {
		t.Fatalf("node B before any grant err = %v, want denied", err)
	}
	as, err := a.CreateAssignment(ctx, e.a.admin, rbac.AssignmentSpec{ID: uuid.NewString(), Scope: e.a.key1,
		RoleDefinitionID: rbac.DefinitionID(e.a.key1.SubscriptionID, rbac.KeyVaultCryptoServiceEncryptionUserID),
		PrincipalID:      workload.ObjectID, PrincipalType: workload.Type})
	if err != nil {
		t.Fatal(err)
	}
	if err := check(); err != nil {
		t.Errorf("node B right after node A granted the role err = %v, want allowed", err)
	}
	if _, err := a.DeleteAssignment(ctx, e.a.admin, e.a.key1, as.ID); err != nil {
		t.Fatal(err)
	}
	if err := check(); !isDenied(err) {
		t.Errorf("node B right after node A revoked the role err = %v, want denied", err)
	}
}
