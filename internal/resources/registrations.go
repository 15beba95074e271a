package resources

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// Resource provider namespaces.
const (
	NamespaceKeyVault      = "Microsoft.KeyVault"
	NamespaceResources     = "Microsoft.Resources"
	NamespaceFeatures      = "Microsoft.Features"
	NamespaceAuthorization = "Microsoft.Authorization"
)

// Namespaces lists the resource providers every subscription knows, in
// the order Providers returns them.
var Namespaces = []string{NamespaceAuthorization, NamespaceFeatures, NamespaceKeyVault, NamespaceResources}

// platform providers are always Registered: registering them again is
// allowed (the seed asks for it) and changes nothing; unregistering them
// is refused.
func platform(ns string) bool { return ns != NamespaceKeyVault }

func lookupNamespace(ns string) (string, error) {
	for _, n := range Namespaces {
		if strings.EqualFold(n, strings.TrimSpace(ns)) {
			return n, nil
		}
	}
	return "", errkind.Errorf(errkind.NotFound, "the resource namespace '%s' is invalid; known namespaces: %s",
		ns, strings.Join(Namespaces, ", ")).WithCode(CodeInvalidResourceNamespace)
}

// The mandatory retention period feature.
const (
	MandatoryRetentionNamespace = NamespaceResources
	MandatoryRetentionName      = "mandatoryRetentionPeriodEnabled"
	// MandatoryRetentionFeature is its full name, namespace/name.
	MandatoryRetentionFeature = MandatoryRetentionNamespace + "/" + MandatoryRetentionName
)

type featureDef struct{ ns, name string }

var (
	mandatoryRetention = featureDef{MandatoryRetentionNamespace, MandatoryRetentionName}
	features           = []featureDef{mandatoryRetention}
)

// KnownFeatures lists the features a subscription can register, as
// namespace/name.
func KnownFeatures() []string {
	out := make([]string, len(features))
	for i, f := range features {
		out[i] = f.ns + "/" + f.name
	}
	return out
}

func lookupFeature(ns, name string) (featureDef, error) {
	for _, f := range features {
		if strings.EqualFold(f.ns, strings.TrimSpace(ns)) && strings.EqualFold(f.name, strings.TrimSpace(name)) {
			return f, nil
		}
	}
	return featureDef{}, errkind.Errorf(errkind.NotFound, "the feature '%s/%s' was not found; known features: %s",
		ns, name, strings.Join(KnownFeatures(), ", ")).WithCode(CodeFeatureNotFound)
}

// Provider is a resource provider's registration in a subscription.
type Provider struct {
	SubscriptionID string            `json:"subscriptionId"`
	Namespace      string            `json:"namespace"`
	State          RegistrationState `json:"registrationState"`
	// ChangedAt is when registering or unregistering was last asked for;
	// zero while the provider is in its initial state.
	ChangedAt time.Time `json:"changedAt,omitzero"`
}

// Feature is a preview feature's registration in a subscription.
type Feature struct {
	SubscriptionID string            `json:"subscriptionId"`
	Namespace      string            `json:"namespace"`
	Name           string            `json:"name"`
	State          RegistrationState `json:"state"`
	// ChangedAt is when registering or unregistering was last asked for.
	ChangedAt time.Time `json:"changedAt,omitzero"`
	// ReadyAt is when the last registering or unregistering completes (or
	// completed).
	ReadyAt time.Time `json:"readyAt,omitzero"`
}

// FullName is namespace/name, as ARM names a feature.
func (f Feature) FullName() string { return f.Namespace + "/" + f.Name }

// registration is the stored form of both: what was last asked for, when
// it completes, and the state last materialized.
type registration struct {
	TenantID    string            `json:"tenantId"`
	Sub         string            `json:"subscriptionId"`
	Namespace   string            `json:"namespace"`
	Name        string            `json:"name,omitempty"` // features only
	Target      RegistrationState `json:"target"`         // Registered or NotRegistered
	RequestedAt time.Time         `json:"requestedAt,omitzero"`
	RequestedBy string            `json:"requestedBy,omitempty"`
	ReadyAt     time.Time         `json:"readyAt,omitzero"`
	State       RegistrationState `json:"state"`
}

// stateAt derives the state at now: Registering until ReadyAt, then
// Registered; Unregistering until ReadyAt, then NotRegistered.
func (r registration) stateAt(now time.Time) RegistrationState {
	done := !now.Before(r.ReadyAt)
	switch {
	case r.Target == Registered && done:
		return Registered
	case r.Target == Registered:
		return Registering
	case done:
		return NotRegistered
	}
	return Unregistering
}

func (r registration) target() string {
	if r.Name == "" {
		return subTarget(r.Sub) + "/providers/" + r.Namespace
	}
	return subTarget(r.Sub) + "/providers/" + NamespaceFeatures + "/providers/" + r.Namespace + "/features/" + r.Name
}

func (r registration) provider(now time.Time) Provider {
	return Provider{SubscriptionID: r.Sub, Namespace: r.Namespace, State: r.stateAt(now), ChangedAt: r.RequestedAt}
}

func (r registration) feature(now time.Time) Feature {
	return Feature{SubscriptionID: r.Sub, Namespace: r.Namespace, Name: r.Name, State: r.stateAt(now),
		ChangedAt: r.RequestedAt, ReadyAt: r.ReadyAt}
}

// loadReg reads a registration, or returns initial (version 0) when none
// is stored.
func loadReg(tx storage.Tx, key string, initial registration) (registration, int64, error) {
	var r registration
	v, err := storage.GetJSON(tx, key, &r)
	if errkind.Is(err, errkind.NotFound) {
		return initial, storage.MustNotExist, nil
	}
	return r, v, err
}

func providerKey(sub, ns string) string { return kProvider + sub + "/" + fold(ns) }

func featureKey(sub string, f featureDef) string {
	return kFeature + sub + "/" + fold(f.ns) + "/" + fold(f.name)
}

func (s *Service) loadProvider(tx storage.Tx, sub Subscription, ns string) (registration, int64, error) {
	initial := NotRegistered
	if platform(ns) {
		initial = Registered
	}
	return loadReg(tx, providerKey(sub.ID, ns), registration{TenantID: sub.TenantID, Sub: sub.ID, Namespace: ns,
		Target: initial, State: initial})
}

func (s *Service) loadFeature(tx storage.Tx, sub Subscription, f featureDef) (registration, int64, error) {
	return loadReg(tx, featureKey(sub.ID, f), registration{TenantID: sub.TenantID, Sub: sub.ID, Namespace: f.ns,
		Name: f.name, Target: NotRegistered, State: NotRegistered})
}

// settleReg materializes r's state as of now and records the transition
// (actor system) when one happened since it was stored.
func (s *Service) settleReg(ctx context.Context, tx storage.Tx, r *registration, now time.Time) error {
	want := r.stateAt(now)
	if want == r.State {
		return nil
	}
	action := "resources/providers/stateChange"
	if r.Name != "" {
		action = "resources/features/stateChange"
	}
	if err := s.record(ctx, tx, directory.System, r.TenantID, action, r.target(),
		fmt.Sprintf("%s -> %s on %s", r.State, want, when(r.ReadyAt))); err != nil {
		return err
	}
	r.State = want
	return nil
}

// Providers returns the registration of every known resource provider in
// a subscription.
func (s *Service) Providers(ctx context.Context, sub string) ([]Provider, error) {
	var out []Provider
	err := s.store.View(ctx, func(tx storage.Tx) error {
		r, _, err := loadSub(tx, sub)
		if err != nil {
			return err
		}
		now := s.now()
		for _, ns := range Namespaces {
			p, _, err := s.loadProvider(tx, r.Subscription, ns)
			if err != nil {
				return err
			}
			out = append(out, p.provider(now))
		}
		return nil
	})
	return out, err
}

// Provider returns the registration of one resource provider; the
// namespace is matched without regard to case.
func (s *Service) Provider(ctx context.Context, sub, ns string) (Provider, error) {
	n, err := lookupNamespace(ns)
	if err != nil {
		return Provider{}, err
	}
	var p Provider
	err = s.store.View(ctx, func(tx storage.Tx) error {
		r, _, err := loadSub(tx, sub)
		if err != nil {
			return err
		}
		reg, _, err := s.loadProvider(tx, r.Subscription, n)
		p = reg.provider(s.now())
		return err
	})
	return p, err
}

// ProviderState returns a resource provider's registration state.
func (s *Service) ProviderState(ctx context.Context, sub, ns string) (RegistrationState, error) {
	p, err := s.Provider(ctx, sub, ns)
	return p.State, err
}

// CheckRegistered returns nil when the subscription may use namespace ns,
// and otherwise ARM's 409 MissingSubscriptionRegistration, on which the
// ARM SDK registers the provider itself and retries.
func (s *Service) CheckRegistered(ctx context.Context, sub, ns string) error {
	p, err := s.Provider(ctx, sub, ns)
	if err != nil {
		return err
	}
	if p.State != Registered {
		return errkind.Errorf(errkind.Conflict,
			"the subscription is not registered to use namespace '%s' (its state is %s); register the resource provider first, e.g. az provider register --namespace %s",
			p.Namespace, p.State, p.Namespace).WithCode(CodeMissingSubscriptionRegistration)
	}
	return nil
}

// writableSub returns the subscription when c may change it and it is not
// Disabled or Deleted.
func (s *Service) writableSub(ctx context.Context, c directory.Caller, id, action string) (Subscription, error) {
	sub, err := s.Get(ctx, id)
	if err != nil {
		return Subscription{}, err
	}
	if err := s.authorizeMember(ctx, c, sub, action); err != nil {
		return Subscription{}, err
	}
	return sub, Usable(sub)
}

// RegisterProvider registers a resource provider: Registering, then
// Registered after ProviderRegistrationDelay. Registering one that is
// Registered or Registering again is allowed and changes nothing.
func (s *Service) RegisterProvider(ctx context.Context, c directory.Caller, sub, ns string) (Provider, error) {
	return s.changeProvider(ctx, c, sub, ns, Registered)
}

// UnregisterProvider unregisters a resource provider: Unregistering, then
// NotRegistered after ProviderRegistrationDelay. The platform providers
// (Microsoft.Resources, Microsoft.Features, Microsoft.Authorization) cannot
// be unregistered, nor Microsoft.KeyVault while the subscription holds
// vaults.
func (s *Service) UnregisterProvider(ctx context.Context, c directory.Caller, sub, ns string) (Provider, error) {
	return s.changeProvider(ctx, c, sub, ns, NotRegistered)
}

func (s *Service) changeProvider(ctx context.Context, c directory.Caller, subID, ns string, target RegistrationState) (Provider, error) {
	action := "resources/providers/register"
	if target == NotRegistered {
		action = "resources/providers/unregister"
	}
	n, err := lookupNamespace(ns)
	if err != nil {
		return Provider{}, err
	}
	sub, err := s.writableSub(ctx, c, subID, action)
	if err != nil {
		return Provider{}, err
	}
	if target == NotRegistered {
		if platform(n) {
			return Provider{}, errkind.Errorf(errkind.Conflict, "the resource provider '%s' is part of the platform and cannot be unregistered", n).
				WithCode(CodeProviderUnregistrationBlocked)
		}
		if held, err := s.countInSubscription(ctx, sub.ID); err != nil {
			return Provider{}, err
		} else if held > 0 {
			return Provider{}, errkind.Errorf(errkind.Conflict,
				"the resource provider '%s' cannot be unregistered while the subscription holds %d of its resources; delete them first", n, held).
				WithCode(CodeProviderUnregistrationBlocked)
		}
	}
	var p Provider
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		r, v, err := s.loadProvider(tx, sub, n)
		if err != nil {
			return err
		}
		now := s.now().UTC()
		from := r.State
		if err := s.settleReg(ctx, tx, &r, now); err != nil {
			return err
		}
		reason := fmt.Sprintf("already %s", r.State)
		changed := r.State != from
		if r.Target != target && !platform(n) {
			r.Target, r.RequestedAt, r.RequestedBy, r.ReadyAt = target, now, c.ID, now.Add(s.providerDelay)
			prev := r.State
			r.State = r.stateAt(now)
			reason = fmt.Sprintf("%s -> %s", prev, r.State)
			changed = true
		}
		if changed {
			if err := storage.PutJSON(tx, providerKey(sub.ID, n), r, v); err != nil {
				return err
			}
		}
		p = r.provider(now)
		return s.record(ctx, tx, c, sub.TenantID, action, r.target(), reason)
	})
	return p, err
}

// countInSubscription sums the resources of every group of a subscription.
func (s *Service) countInSubscription(ctx context.Context, sub string) (int, error) {
	if s.contents == nil {
		return 0, nil
	}
	groups, err := s.Groups(ctx, sub)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, g := range groups {
		n, err := s.contents.CountInResourceGroup(ctx, g.SubscriptionID, g.Name)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// Features returns the registration of every known feature in a
// subscription.
func (s *Service) Features(ctx context.Context, sub string) ([]Feature, error) {
	var out []Feature
	err := s.store.View(ctx, func(tx storage.Tx) error {
		r, _, err := loadSub(tx, sub)
		if err != nil {
			return err
		}
		now := s.now()
		for _, f := range features {
			reg, _, err := s.loadFeature(tx, r.Subscription, f)
			if err != nil {
				return err
			}
			out = append(out, reg.feature(now))
		}
		return nil
	})
	return out, err
}

// Feature returns the registration of one feature; namespace and name are
// matched without regard to case. An unknown feature is NotFound, with a
// message listing the known ones.
func (s *Service) Feature(ctx context.Context, sub, ns, name string) (Feature, error) {
	f, err := lookupFeature(ns, name)
	if err != nil {
		return Feature{}, err
	}
	var out Feature
	err = s.store.View(ctx, func(tx storage.Tx) error {
		r, _, err := loadSub(tx, sub)
		if err != nil {
			return err
		}
		reg, _, err := s.loadFeature(tx, r.Subscription, f)
		out = reg.feature(s.now())
		return err
	})
	return out, err
}

// Protected reports whether the subscription's mandatory retention period
// is Registered: what the +ProtectedSubscription key recovery levels and
// the onboarding rule MandatoryRetentionPeriodState look at.
func (s *Service) Protected(ctx context.Context, sub string) (bool, error) {
	f, err := s.Feature(ctx, sub, MandatoryRetentionNamespace, MandatoryRetentionName)
	return f.State == Registered, err
}

// RegisterFeature registers a feature: Registering, then Registered after
// FeatureRegistrationDelay. Registering one that is Registered or
// Registering again changes nothing.
func (s *Service) RegisterFeature(ctx context.Context, c directory.Caller, sub, ns, name string) (Feature, error) {
	return s.changeFeature(ctx, c, sub, ns, name, Registered)
}

// UnregisterFeature unregisters a feature: Unregistering, then
// NotRegistered after FeatureRegistrationDelay. The mandatory retention
// period cannot be unregistered while the subscription is cancelled: the
// lock it put on that cancellation stays until the cancellation is
// withdrawn (Reactivate) or has run its course.
func (s *Service) UnregisterFeature(ctx context.Context, c directory.Caller, sub, ns, name string) (Feature, error) {
	return s.changeFeature(ctx, c, sub, ns, name, NotRegistered)
}

func (s *Service) changeFeature(ctx context.Context, c directory.Caller, subID, ns, name string, target RegistrationState) (Feature, error) {
	action := "resources/features/register"
	if target == NotRegistered {
		action = "resources/features/unregister"
	}
	f, err := lookupFeature(ns, name)
	if err != nil {
		return Feature{}, err
	}
	sub, err := s.writableSub(ctx, c, subID, action)
	if err != nil {
		return Feature{}, err
	}
	var out Feature
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		sr, _, err := loadSub(tx, sub.ID)
		if err != nil {
			return err
		}
		r, v, err := s.loadFeature(tx, sub, f)
		if err != nil {
			return err
		}
		now := s.now().UTC()
		if target == NotRegistered && f == mandatoryRetention && sr.Cancelled() && r.Target == Registered {
			return errkind.Errorf(errkind.Conflict,
				"the mandatory retention period of subscription '%s' holds its cancellation of %s until %s; it cannot be unregistered while the subscription is cancelled (reactivate the subscription first)",
				sub.ID, when(sr.Cancellation.RequestedAt), when(sr.Cancellation.DisableAt)).WithCode(CodeRetentionPeriodActive)
		}
		from := r.State
		if err := s.settleReg(ctx, tx, &r, now); err != nil {
			return err
		}
		reason := fmt.Sprintf("already %s", r.State)
		changed := r.State != from
		if r.Target != target {
			r.Target, r.RequestedAt, r.RequestedBy, r.ReadyAt = target, now, c.ID, now.Add(s.featureDelay)
			prev := r.State
			r.State = r.stateAt(now)
			reason = fmt.Sprintf("%s -> %s, %s at %s", prev, r.State, target, when(r.ReadyAt))
			changed = true
		}
		if changed {
			if err := storage.PutJSON(tx, featureKey(sub.ID, f), r, v); err != nil {
				return err
			}
		}
		out = r.feature(now)
		return s.record(ctx, tx, c, sub.TenantID, action, r.target(), reason)
	})
	return out, err
}
