package resources

import (
	"context"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/resourceid"
	"github.com/customerkey/customerkey/internal/storage"
)

// The methods below answer what other domain packages ask through their
// own interfaces (vault.Subscriptions, vault.Locations,
// rbac.ScopeResolver), so that the composition root can pass the Service
// itself.

// Subscription returns the tenant of a subscription and whether it may be
// used (Usable): usable is non-nil for a Disabled subscription. A Deleted
// subscription is reported as err (kind NotFound, SubscriptionNotFound),
// like an unknown one.
func (s *Service) Subscription(ctx context.Context, id string) (tenantID string, usable error, err error) {
	sub, err := s.Get(ctx, id)
	if err != nil {
		return "", nil, err
	}
	if sub.State == Deleted {
		return "", nil, Usable(sub)
	}
	return sub.TenantID, Usable(sub), nil
}

// ResourceGroupExists reports whether resource group rg exists in
// subscription sub (names compared without regard to case); an unknown
// subscription is an error.
func (s *Service) ResourceGroupExists(ctx context.Context, sub, rg string) (bool, error) {
	_, err := s.Group(ctx, sub, rg)
	if e, ok := errkind.As(err); ok && e.Code == CodeResourceGroupNotFound {
		return false, nil
	}
	return err == nil, err
}

// ProviderRegistered reports whether resource provider ns is Registered
// in subscription sub.
func (s *Service) ProviderRegistered(ctx context.Context, sub, ns string) (bool, error) {
	st, err := s.ProviderState(ctx, sub, ns)
	return st == Registered, err
}

// KnownLocation reports whether name is a known region (see LookupRegion).
func (s *Service) KnownLocation(name string) bool {
	_, ok := LookupRegion(name)
	return ok
}

// TenantOf returns the tenant of the subscription that holds scope, after
// checking that the subscription exists (and is not Deleted) and, for
// scopes at or below a resource group, that the group exists. Whether a
// resource below the group (a vault, a key) exists is the owning
// package's to say.
func (s *Service) TenantOf(ctx context.Context, scope resourceid.ID) (string, error) {
	var tid string
	err := s.store.View(ctx, func(tx storage.Tx) error {
		r, _, err := loadSub(tx, scope.SubscriptionID)
		if err != nil {
			return err
		}
		if v := r.view(s.now()); v.State == Deleted {
			return Usable(v)
		}
		if scope.ResourceGroup != "" {
			if _, _, err := loadGroup(tx, r.ID, scope.ResourceGroup); err != nil {
				return err
			}
		}
		tid = r.TenantID
		return nil
	})
	return tid, err
}
