package resources

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/resourceid"
	"github.com/customerkey/customerkey/internal/storage"
)

// Subscription is an Azure subscription: a billing container in one
// tenant that holds resource groups and, in them, key vaults. Customer Key
// calls it a key custody domain.
type Subscription struct {
	ID          string    `json:"id"`
	TenantID    string    `json:"tenantId"`
	DisplayName string    `json:"displayName"`
	Offer       Offer     `json:"offer"`
	State       State     `json:"state"`
	CreatedAt   time.Time `json:"createdAt"`
	// CreatedBy is the object id (or system name) of the creator.
	CreatedBy    string       `json:"createdBy,omitempty"`
	Cancellation Cancellation `json:"cancellation,omitzero"`
}

// Cancellation records a requested cancellation and when it takes effect.
type Cancellation struct {
	RequestedAt time.Time `json:"requestedAt"`
	RequestedBy string    `json:"requestedBy,omitempty"`
	// Retained reports that the mandatory retention period held the
	// cancellation: the subscription stayed Enabled until DisableAt.
	Retained bool `json:"retained,omitempty"`
	// DisableAt is when the subscription is (or was) disabled: at once
	// without the retention period, RetentionPeriod later with it.
	DisableAt time.Time `json:"disableAt"`
	// DeleteAt is when it is (or was) deleted, DeletionDelay after DisableAt.
	DeleteAt time.Time `json:"deleteAt"`
}

// Cancelled reports whether a cancellation was requested and not withdrawn.
func (s Subscription) Cancelled() bool { return !s.Cancellation.RequestedAt.IsZero() }

// ResourceID is the subscription's ARM id, /subscriptions/{id}.
func (s Subscription) ResourceID() resourceid.ID { return resourceid.Subscription(s.ID) }

// subRecord is what is stored: the subscription with its materialized
// state, and the billing state the operator set, which a cancellation
// overrides once it takes effect.
type subRecord struct {
	Subscription
	Billing State `json:"billing,omitempty"`
}

// stateAt derives the state at now from the stored timestamps.
func (r subRecord) stateAt(now time.Time) State {
	if c := r.Cancellation; !c.RequestedAt.IsZero() {
		switch {
		case !now.Before(c.DeleteAt):
			return Deleted
		case !now.Before(c.DisableAt):
			return Disabled
		}
	}
	if r.Billing == "" {
		return Enabled
	}
	return r.Billing
}

func (r subRecord) view(now time.Time) Subscription {
	s := r.Subscription
	s.State = r.stateAt(now)
	return s
}

func when(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// Usable returns nil when sub's resources may be used: it is Enabled,
// Warned or PastDue. A Disabled subscription is read-only and its vaults do
// not serve (errkind.FailedPrecondition); a Deleted one is gone
// (errkind.NotFound). The vault and key surfaces call it on every request.
func Usable(sub Subscription) error {
	switch sub.State {
	case Disabled:
		return errkind.Errorf(errkind.FailedPrecondition,
			"the subscription '%s' is disabled (cancelled on %s); its vaults cannot be used until it is reactivated, and it will be deleted on %s",
			sub.ID, when(sub.Cancellation.RequestedAt), when(sub.Cancellation.DeleteAt)).WithCode(CodeReadOnlyDisabledSubscription)
	case Deleted:
		return errkind.Errorf(errkind.NotFound, "the subscription '%s' was deleted on %s (cancelled on %s)",
			sub.ID, when(sub.Cancellation.DeleteAt), when(sub.Cancellation.RequestedAt)).WithCode(CodeSubscriptionNotFound)
	}
	return nil
}

// SubscriptionSpec describes a new subscription.
type SubscriptionSpec struct {
	// TenantID is the directory the subscription trusts; empty means the
	// caller's tenant.
	TenantID string
	// DisplayName defaults to the offer's display name.
	DisplayName string
	// Offer defaults to PayAsYouGo.
	Offer Offer
	// Owners are object ids of users or service principals of the tenant
	// that get the Owner role on the subscription. Empty means the
	// tenant's first administrators plus the creator, if the creator is a
	// member of the tenant.
	Owners []string
	// ID forces the subscription id (tests, restores); empty picks a
	// random GUID.
	ID string
}

// MaxOwners bounds SubscriptionSpec.Owners.
const MaxOwners = 20

// Create creates a subscription. The operator may create any offer in any
// tenant; a Global Administrator of the tenant may sign up for
// Pay-As-You-Go only, as an organization signs up for Azure; anyone else
// is refused. The owners get the Owner role in the same transaction.
func (s *Service) Create(ctx context.Context, c directory.Caller, spec SubscriptionSpec) (Subscription, error) {
	const action = "resources/subscriptions/create"
	tid := strings.ToLower(strings.TrimSpace(spec.TenantID))
	if tid == "" {
		tid = c.TenantID
	}
	offer := spec.Offer
	if offer == "" {
		offer = PayAsYouGo
	}
	if !offer.Valid() {
		_, err := ParseOffer(string(offer))
		return Subscription{}, err
	}
	if !directory.IsGUID(tid) {
		return Subscription{}, errkind.Errorf(errkind.Invalid, "the subscription needs the id (a GUID) of its tenant; '%s' is not one", tid).WithCode(CodeInvalidSubscription)
	}
	op, err := s.isOperator(ctx, c)
	if err != nil {
		return Subscription{}, err
	}
	if !op {
		ga, err := s.isGlobalAdmin(ctx, c, tid)
		if err != nil {
			return Subscription{}, err
		}
		switch {
		case !ga:
			err = errDenied("only the operator or a Global Administrator of tenant '%s' can create subscriptions in it", tid)
		case offer != PayAsYouGo:
			err = errDenied("a Global Administrator can sign up for %s subscriptions only; %s subscriptions are created by the operator",
				PayAsYouGo.DisplayName(), offer.DisplayName())
		}
		if err != nil {
			s.recordDenied(ctx, c, tid, action, "a "+string(offer)+" subscription", err)
			return Subscription{}, err
		}
	}
	t, err := s.dir.Tenant(ctx, tid)
	if err != nil {
		return Subscription{}, err
	}
	name := strings.TrimSpace(spec.DisplayName)
	if name == "" {
		name = offer.DisplayName()
	}
	if utf8.RuneCountInString(name) > 64 || strings.ContainsFunc(name, unicode.IsControl) {
		return Subscription{}, errkind.New(errkind.Invalid, "the subscription display name must have at most 64 characters and no control characters").WithCode(CodeInvalidSubscription)
	}
	owners, err := s.owners(ctx, c, t, spec.Owners)
	if err != nil {
		return Subscription{}, err
	}
	id := strings.ToLower(spec.ID)
	if id == "" {
		if id, err = newID(s.rand); err != nil {
			return Subscription{}, err
		}
	} else if !directory.IsGUID(id) {
		return Subscription{}, errkind.Errorf(errkind.Invalid, "the subscription id '%s' is not a GUID", spec.ID).WithCode(CodeInvalidSubscription)
	}
	creator := c.ID
	if creator == "" {
		creator = c.Type
	}
	rec := subRecord{Subscription: Subscription{ID: id, TenantID: t.ID, DisplayName: name, Offer: offer, State: Enabled,
		CreatedAt: s.now().UTC(), CreatedBy: creator}, Billing: Enabled}
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		if err := storage.PutJSON(tx, kSub+id, rec, storage.MustNotExist); err != nil {
			if errors.Is(err, storage.ErrConflict) {
				return errkind.Errorf(errkind.AlreadyExists, "a subscription with id '%s' already exists", id).WithCode(CodeInvalidSubscription)
			}
			return err
		}
		if _, err := tx.Put(kTenantSub+t.ID+"/"+id, nil, storage.MustNotExist); err != nil {
			return err
		}
		ids := make([]string, len(owners))
		for i, o := range owners {
			ids[i] = o.PrincipalID
			if s.granter == nil {
				continue
			}
			o.Scope = rec.ResourceID()
			if err := s.granter.GrantOwnerTx(ctx, tx, actor(c, t.ID), o); err != nil {
				return fmt.Errorf("resources: granting Owner to %s: %w", o.PrincipalID, err)
			}
		}
		return s.record(ctx, tx, c, t.ID, action, subTarget(id),
			fmt.Sprintf("offer %s; owners %s", offer, strings.Join(ids, ", ")))
	})
	if err != nil {
		return Subscription{}, err
	}
	if inv, ok := s.granter.(interface{ Invalidate() }); ok {
		inv.Invalidate()
	}
	return rec.Subscription, nil
}

// owners returns the owners of a new subscription of tenant t, with their
// principal types.
func (s *Service) owners(ctx context.Context, c directory.Caller, t directory.Tenant, named []string) ([]OwnerGrant, error) {
	var out []OwnerGrant
	// add adds a principal of t once; it reports false for an object id
	// that is not one.
	add := func(id string) (bool, error) {
		id = strings.ToLower(strings.TrimSpace(id))
		if !directory.IsGUID(id) {
			return false, nil
		}
		if slices.ContainsFunc(out, func(g OwnerGrant) bool { return g.PrincipalID == id }) {
			return true, nil
		}
		kind, err := s.dir.PrincipalKind(ctx, t.ID, id)
		if errkind.Is(err, errkind.NotFound) {
			return false, nil
		} else if err != nil {
			return false, err
		}
		out = append(out, OwnerGrant{TenantID: t.ID, PrincipalID: id, PrincipalType: kind})
		return true, nil
	}
	if len(named) > MaxOwners {
		return nil, errkind.Errorf(errkind.Invalid, "a subscription can be created with at most %d owners", MaxOwners).WithCode(CodeInvalidSubscription)
	}
	for _, o := range named {
		ok, err := add(o)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errkind.Errorf(errkind.Invalid, "the owner '%s' is not the object id of a user or service principal of tenant '%s'",
				o, t.ID).WithCode(CodeInvalidSubscription)
		}
	}
	if len(named) > 0 {
		return out, nil
	}
	// A first administrator deleted since is skipped.
	for _, o := range t.FirstAdmins {
		if _, err := add(o); err != nil {
			return nil, err
		}
	}
	if c.TenantID == t.ID && (c.Type == "user" || c.Type == "servicePrincipal") {
		if _, err := add(c.ID); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, errkind.Errorf(errkind.Invalid, "tenant '%s' has no first administrators; name the subscription's owners", t.ID).WithCode(CodeInvalidSubscription)
	}
	return out, nil
}

// Get returns a subscription with its state as of now.
func (s *Service) Get(ctx context.Context, id string) (Subscription, error) {
	var sub Subscription
	err := s.store.View(ctx, func(tx storage.Tx) error {
		r, _, err := loadSub(tx, id)
		sub = r.view(s.now())
		return err
	})
	return sub, err
}

// CheckUsable returns Usable of subscription id, or its lookup error.
func (s *Service) CheckUsable(ctx context.Context, id string) error {
	sub, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	return Usable(sub)
}

func loadSub(tx storage.Tx, id string) (subRecord, int64, error) {
	var r subRecord
	id = strings.ToLower(strings.TrimSpace(id))
	if !directory.IsGUID(id) {
		return r, 0, errSubscriptionNotFound(id)
	}
	v, err := storage.GetJSON(tx, kSub+id, &r)
	return r, v, notFound(err, errSubscriptionNotFound(id))
}

// List returns the subscriptions of a tenant, or of every tenant when
// tenantID is empty (the operator's view), Deleted ones included.
func (s *Service) List(ctx context.Context, tenantID string) ([]Subscription, error) {
	var out []Subscription
	err := s.store.View(ctx, func(tx storage.Tx) error {
		now := s.now()
		if tenantID == "" {
			entries, err := tx.List(kSub, "", 0)
			if err != nil {
				return err
			}
			for _, e := range entries {
				r, _, err := loadSub(tx, strings.TrimPrefix(e.Key, kSub))
				if err != nil {
					return err
				}
				out = append(out, r.view(now))
			}
			return nil
		}
		tid := strings.ToLower(tenantID)
		entries, err := tx.List(kTenantSub+tid+"/", "", 0)
		if err != nil {
			return err
		}
		for _, e := range entries {
			r, _, err := loadSub(tx, strings.TrimPrefix(e.Key, kTenantSub+tid+"/"))
			if err != nil {
				return err
			}
			out = append(out, r.view(now))
		}
		return nil
	})
	return out, err
}

// SetState sets the billing state (Enabled, Warned or PastDue) of a
// subscription that is not cancelled; only the operator may.
func (s *Service) SetState(ctx context.Context, c directory.Caller, id string, st State) (Subscription, error) {
	const action = "resources/subscriptions/setState"
	switch st {
	case Enabled, Warned, PastDue:
	default:
		return Subscription{}, errkind.Errorf(errkind.Invalid,
			"the billing state can be set to Enabled, Warned or PastDue; %q is reached by cancelling", st).WithCode(CodeInvalidSubscription)
	}
	sub, err := s.Get(ctx, id)
	if err != nil {
		return Subscription{}, err
	}
	if op, err := s.isOperator(ctx, c); err != nil {
		return Subscription{}, err
	} else if !op {
		err := errDenied("only the operator can change a subscription's billing state")
		s.recordDenied(ctx, c, sub.TenantID, action, subTarget(sub.ID), err)
		return Subscription{}, err
	}
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		r, v, err := loadSub(tx, id)
		if err != nil {
			return err
		}
		now := s.now()
		if err := s.settleSub(ctx, tx, &r, now); err != nil {
			return err
		}
		if r.Cancelled() {
			return errkind.Errorf(errkind.Conflict, "the subscription '%s' is cancelled (state %s); reactivate it before changing its billing state",
				r.ID, r.State).WithCode(CodeSubscriptionCancelled)
		}
		from := r.State
		r.Billing = st
		r.State = r.stateAt(now)
		if err := storage.PutJSON(tx, kSub+r.ID, r, v); err != nil {
			return err
		}
		sub = r.Subscription
		return s.record(ctx, tx, c, r.TenantID, action, subTarget(r.ID), fmt.Sprintf("%s -> %s", from, st))
	})
	return sub, err
}

// Cancel cancels a subscription; the operator and Global Administrators
// of its tenant may. Without the mandatory retention period (the feature
// Microsoft.Resources/mandatoryRetentionPeriodEnabled not Registered) it is
// Disabled at once and Deleted DeletionDelay later. With it (Registered, or
// Unregistering: the lock holds until it is released) the cancellation is
// recorded but takes effect only after RetentionPeriod: the subscription
// stays as it is meanwhile, so its keys keep working, then it is Disabled,
// then Deleted DeletionDelay after that. Cancelling again changes nothing.
func (s *Service) Cancel(ctx context.Context, c directory.Caller, id string) (Subscription, error) {
	const action = "resources/subscriptions/cancel"
	sub, err := s.Get(ctx, id)
	if err != nil {
		return Subscription{}, err
	}
	if err := s.authorizeAdmin(ctx, c, sub, action, "cancel"); err != nil {
		return Subscription{}, err
	}
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		r, v, err := loadSub(tx, id)
		if err != nil {
			return err
		}
		now := s.now().UTC()
		from := r.State
		if err := s.settleSub(ctx, tx, &r, now); err != nil {
			return err
		}
		if r.Cancelled() {
			sub = r.Subscription
			if r.State != from {
				return storage.PutJSON(tx, kSub+r.ID, r, v)
			}
			return nil
		}
		fr, _, err := s.loadFeature(tx, r.Subscription, mandatoryRetention)
		if err != nil {
			return err
		}
		fs := fr.stateAt(now)
		cn := Cancellation{RequestedAt: now, RequestedBy: c.ID, Retained: fs == Registered || fs == Unregistering, DisableAt: now}
		if cn.Retained {
			cn.DisableAt = now.Add(s.retention)
		}
		cn.DeleteAt = cn.DisableAt.Add(s.deletionDelay)
		r.Cancellation = cn
		r.State = r.stateAt(now)
		if err := storage.PutJSON(tx, kSub+r.ID, r, v); err != nil {
			return err
		}
		sub = r.Subscription
		reason := fmt.Sprintf("no mandatory retention period: disabled at once, deleted on %s", when(cn.DeleteAt))
		if cn.Retained {
			reason = fmt.Sprintf("the mandatory retention period holds the cancellation: %s until %s, disabled then, deleted on %s",
				r.State, when(cn.DisableAt), when(cn.DeleteAt))
		}
		return s.record(ctx, tx, c, r.TenantID, action, subTarget(r.ID), reason)
	})
	return sub, err
}

// Reactivate withdraws a cancellation: a subscription whose cancellation is
// still held by the retention period, or that is Disabled, returns to its
// billing state. A Deleted subscription cannot be reactivated. The
// operator and Global Administrators of its tenant may.
func (s *Service) Reactivate(ctx context.Context, c directory.Caller, id string) (Subscription, error) {
	const action = "resources/subscriptions/reactivate"
	sub, err := s.Get(ctx, id)
	if err != nil {
		return Subscription{}, err
	}
	if err := s.authorizeAdmin(ctx, c, sub, action, "reactivate"); err != nil {
		return Subscription{}, err
	}
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		r, v, err := loadSub(tx, id)
		if err != nil {
			return err
		}
		now := s.now()
		from := r.State
		if err := s.settleSub(ctx, tx, &r, now); err != nil {
			return err
		}
		sub = r.Subscription
		switch {
		case r.State == Deleted:
			return errkind.Errorf(errkind.FailedPrecondition, "the subscription '%s' was deleted on %s and cannot be reactivated",
				r.ID, when(r.Cancellation.DeleteAt)).WithCode(CodeSubscriptionDeleted)
		case !r.Cancelled():
			if r.State != from {
				return storage.PutJSON(tx, kSub+r.ID, r, v)
			}
			return nil
		}
		requested := r.Cancellation.RequestedAt
		prev := r.State
		r.Cancellation = Cancellation{}
		r.State = r.stateAt(now)
		if err := storage.PutJSON(tx, kSub+r.ID, r, v); err != nil {
			return err
		}
		sub = r.Subscription
		return s.record(ctx, tx, c, r.TenantID, action, subTarget(r.ID),
			fmt.Sprintf("cancellation of %s withdrawn; %s -> %s", when(requested), prev, r.State))
	})
	return sub, err
}

// settleSub materializes r's state as of now, recording one audit event
// (actor system) per milestone passed since it was last stored.
func (s *Service) settleSub(ctx context.Context, tx storage.Tx, r *subRecord, now time.Time) error {
	want := r.stateAt(now)
	if want == r.State {
		return nil
	}
	c := r.Cancellation
	steps := []struct {
		at time.Time
		st State
	}{{c.DisableAt, Disabled}, {c.DeleteAt, Deleted}}
	for _, m := range steps {
		if c.RequestedAt.IsZero() || now.Before(m.at) || m.st.rank() <= r.State.rank() {
			continue
		}
		reason := fmt.Sprintf("%s -> %s on %s: the cancellation requested on %s took effect", r.State, m.st, when(m.at), when(c.RequestedAt))
		if m.st == Deleted {
			reason = fmt.Sprintf("%s -> %s on %s, %s after it was disabled", r.State, m.st, when(m.at), c.DeleteAt.Sub(c.DisableAt))
		}
		if err := s.record(ctx, tx, directory.System, r.TenantID, "resources/subscriptions/stateChange", subTarget(r.ID), reason); err != nil {
			return err
		}
		r.State = m.st
	}
	if r.State != want {
		if err := s.record(ctx, tx, directory.System, r.TenantID, "resources/subscriptions/stateChange", subTarget(r.ID),
			fmt.Sprintf("%s -> %s", r.State, want)); err != nil {
			return err
		}
		r.State = want
	}
	return nil
}
