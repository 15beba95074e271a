package app

import (
	"context"
	"strings"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/rbac"
	"github.com/customerkey/customerkey/internal/resourceid"
	"github.com/customerkey/customerkey/internal/resources"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/vault"
)

// The domain packages meet here: each declares what it needs of the
// others, and these adapters connect them.

// ownerGranter gives a new subscription's owners the Owner role in the
// transaction that creates it.
type ownerGranter struct{ r *rbac.Service }

func (g ownerGranter) GrantOwnerTx(ctx context.Context, tx storage.Tx, by audit.Actor, o resources.OwnerGrant) error {
	t, ok := rbac.ParsePrincipalType(o.PrincipalType)
	if !ok {
		return errkind.Errorf(errkind.Internal, "app: unknown principal type %q", o.PrincipalType)
	}
	_, err := g.r.GrantTx(ctx, tx, by, rbac.Grant{TenantID: o.TenantID, Scope: o.Scope, RoleID: rbac.OwnerID,
		PrincipalID: o.PrincipalID, PrincipalType: t})
	return err
}

func (g ownerGranter) Invalidate() { g.r.Invalidate() }

// scopes tells rbac which tenant a scope belongs to: subscriptions and
// resource groups from resources, vaults (and keys below them) from vault.
type scopes struct{ s *Server }

var errScopeNotFound = errkind.New(errkind.NotFound, "The scope does not exist.").WithCode("ScopeNotFound")

func (s scopes) TenantOf(ctx context.Context, scope resourceid.ID) (string, error) {
	tid, err := s.s.res.TenantOf(ctx, scope)
	if err != nil || scope.Namespace == "" {
		return tid, err
	}
	if !strings.EqualFold(scope.Namespace, vault.Namespace) || !strings.EqualFold(scope.Types[0], "vaults") {
		return "", errScopeNotFound
	}
	v, err := s.s.kv.Get(ctx, scope.SubscriptionID, scope.ResourceGroup, scope.Names[0])
	if err != nil {
		return "", err
	}
	// Below the vault only keys are scopes (step 3 checks they exist).
	if len(scope.Types) > 2 || (len(scope.Types) == 2 && !strings.EqualFold(scope.Types[1], "keys")) {
		return "", errScopeNotFound
	}
	return v.TenantID, nil
}

// contents tells resources what a resource group holds: its vaults.
type contents struct{ s *Server }

func (c contents) CountInResourceGroup(ctx context.Context, sub, rg string) (int, error) {
	return c.s.kv.CountInResourceGroup(ctx, sub, rg)
}

func (c contents) DeleteResourcesIn(ctx context.Context, by directory.Caller, sub, rg string) error {
	return c.s.kv.DeleteResourcesIn(ctx, by, sub, rg)
}

// keysOf gives the data plane vault's key operations and its lookup of a
// live vault by the name a vault host carries.
type keysOf struct{ *vault.Service }

func (k keysOf) Vault(ctx context.Context, name string) (vault.Vault, error) {
	return k.DataPlaneVault(ctx, name)
}
