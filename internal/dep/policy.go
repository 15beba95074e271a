package dep

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/onboarding"
	"github.com/customerkey/customerkey/internal/storage"
)

// State is where a policy is in its life.
type State string

// States. M365, Exchange and service-managed policies are Active until an
// Exchange purge; SharePoint policies go Registering → Registered, and
// Registered → Rolling → Registered on every key update.
const (
	Active         State = "Active"
	Registering    State = "Registering" // the geo's sites are being moved onto the policy
	Registered     State = "Registered"
	Rolling        State = "Rolling"        // the sites are being moved onto a new key version
	PurgeRequested State = "PurgeRequested" // awaiting two operator approvals; no new assignments
	Purging        State = "Purging"        // approved; the purge job runs
	Purged         State = "Purged"         // tombstone: keys and data are gone
)

// Limits.
const (
	MaxExchangePolicies = 50 // per tenant, purged ones not counted (rule V9)
	MaxKeyURIs          = 4
	MaxNameLen          = 64
	MaxDescriptionLen   = 1024
	MaxPurgeTextLen     = 1024
	minRSABits          = 2048
	maxRSABits          = 4096
)

// Policy is a data encryption policy as stored and shown.
type Policy struct {
	ID          string `json:"id"`
	TenantID    string `json:"tenantId"`
	Kind        Kind   `json:"kind"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Enabled     bool   `json:"enabled"`
	// KeyURIs are the root keys: versionless for M365 and Exchange
	// policies (the current version is used on every Refresh); for a
	// SharePoint policy the pinned primary and secondary key versions.
	KeyURIs []string `json:"keyUris,omitempty"`
	// RootKeyIDs are the versioned root keys that wrap the newest key
	// version, in the order of KeyURIs.
	RootKeyIDs []string `json:"rootKeyIds,omitempty"`
	Geo        string   `json:"geo,omitempty"`      // SharePoint
	Workload   Workload `json:"workload,omitempty"` // ServiceManaged
	State      State    `json:"state"`
	// KeyVersion is the newest policy key version (PolicyRef.KeyVersion).
	KeyVersion int `json:"keyVersion"`
	// PercentComplete is, for a SharePoint policy, the share of the geo's
	// sites on the newest key version; computed when read, not stored.
	PercentComplete *int `json:"percentComplete,omitempty"`

	PermanentDataPurgeRequested bool         `json:"permanentDataPurgeRequested,omitempty"`
	PermanentDataPurgeReason    string       `json:"permanentDataPurgeReason,omitempty"`
	PermanentDataPurgeContact   string       `json:"permanentDataPurgeContact,omitempty"`
	PurgeRequestedAt            *time.Time   `json:"purgeRequestedAt,omitempty"`
	PurgeRequestedBy            *audit.Actor `json:"purgeRequestedBy,omitempty"`
	PurgeForced                 bool         `json:"purgeForced,omitempty"`
	PurgeApprovals              []Approval   `json:"purgeApprovals,omitempty"`
	PurgedAt                    *time.Time   `json:"purgedAt,omitempty"`
	PurgedScopes                int          `json:"purgedScopes,omitempty"`
	// Recovery is set while the operator helps a customer who lost both
	// root keys (see Recovery); nil otherwise.
	Recovery *Recovery `json:"recovery,omitempty"`

	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Approval is one operator administrator's approval of a purge.
type Approval struct {
	By audit.Actor `json:"by"`
	At time.Time   `json:"at"`
}

// Ref is the newest version of p's key.
func (p Policy) Ref() PolicyRef {
	return PolicyRef{TenantID: p.TenantID, PolicyID: p.ID, Kind: p.Kind, KeyVersion: p.KeyVersion}
}

func (p Policy) purgeStarted() bool {
	return p.State == PurgeRequested || p.State == Purging || p.State == Purged
}

// label names p in messages.
func (p Policy) label() string {
	if p.Kind == SharePoint {
		return fmt.Sprintf("SharePoint policy of geo %s (%s)", p.Geo, p.ID)
	}
	return fmt.Sprintf("policy %s (%s)", p.Name, p.ID)
}

// Spec describes a new multi-workload or Exchange policy.
type Spec struct {
	Name        string
	Description string
	// KeyURIs are 2 to MaxKeyURIs versionless root key identifiers, each
	// in its own vault.
	KeyURIs []string
	// Enabled defaults to true.
	Enabled *bool
}

// Change edits a policy; nil fields stay as they are.
type Change struct {
	Name        *string
	Description *string
	Enabled     *bool
}

// checkName validates a policy name. Names may hold spaces (the guide
// only recommends against them) but not control characters, and must not
// look like a policy id, so that an identity is never ambiguous.
func checkName(name string) (string, error) {
	n := strings.TrimSpace(name)
	if n == "" || utf8.RuneCountInString(n) > MaxNameLen || !utf8.ValidString(n) {
		return "", errkind.Errorf(errkind.Invalid, "a policy name is 1 to %d characters", MaxNameLen)
	}
	if strings.ContainsFunc(n, unicode.IsControl) {
		return "", errkind.New(errkind.Invalid, "a policy name must not contain control characters")
	}
	if directory.IsGUID(lower(n)) {
		return "", errkind.Errorf(errkind.Invalid, "the policy name %q looks like a policy id; choose a name that is not a GUID", n)
	}
	return n, nil
}

func checkDescription(d string) (string, error) {
	d = strings.TrimSpace(d)
	if utf8.RuneCountInString(d) > MaxDescriptionLen || strings.ContainsFunc(d, func(r rune) bool { return r != '\n' && unicode.IsControl(r) }) {
		return "", errkind.Errorf(errkind.Invalid, "a policy description is at most %d characters, without control characters", MaxDescriptionLen)
	}
	return d, nil
}

// requireScenario checks that tid enabled one of the scenarios.
func (s *Service) requireScenario(ctx context.Context, tid, what string, any ...onboarding.Scenario) error {
	enabled, err := s.sc.EnabledScenarios(ctx, tid)
	if err != nil {
		return err
	}
	for _, sc := range any {
		if slices.Contains(enabled, sc) {
			return nil
		}
	}
	names := make([]string, len(any))
	for i, sc := range any {
		names[i] = string(sc)
	}
	return errkind.Errorf(errkind.FailedPrecondition,
		"tenant %s has not enabled Customer Key for %s, which %s needs: complete onboarding with customerkey onboarding new --scenario %s --onboarding-mode Enable",
		tid, strings.Join(names, " or "), what, names[0]).WithCode("ScenarioNotEnabled")
}

func scenarioOf(k Kind) onboarding.Scenario {
	if k == Exchange {
		return onboarding.EXO
	}
	return onboarding.MDEP
}

// Create creates a multi-workload (M365) or Exchange policy: checks the
// keys and the caller, generates the policy key and its availability key,
// wraps the policy key live with every root key as the workload identity
// (and unwraps it again, to prove both directions work), and stores only
// the wrapped copies.
func (s *Service) Create(ctx context.Context, c directory.Caller, tenantID string, k Kind, spec Spec) (Policy, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return Policy{}, err
	}
	if k != M365 && k != Exchange {
		return Policy{}, errkind.Errorf(errkind.Invalid, "Create makes %s and %s policies; SharePoint policies are registered per geo", M365, Exchange)
	}
	if err := s.authorize(ctx, c, tid, k, actionCreate); err != nil {
		return Policy{}, err
	}
	name, err := checkName(spec.Name)
	if err != nil {
		return Policy{}, err
	}
	desc, err := checkDescription(spec.Description)
	if err != nil {
		return Policy{}, err
	}
	uris, err := checkURIs(spec.KeyURIs, false)
	if err != nil {
		return Policy{}, err
	}
	if err := s.requireScenario(ctx, tid, "a "+kindName(k)+" policy", scenarioOf(k)); err != nil {
		return Policy{}, err
	}
	// Fail fast on the name and the count; the transaction checks again.
	if err := s.store.View(ctx, func(tx storage.Tx) error { return s.checkRoom(tx, tid, k, name) }); err != nil {
		return Policy{}, err
	}
	id, err := s.newID()
	if err != nil {
		return Policy{}, err
	}
	now := s.now().UTC()
	p := Policy{ID: id, TenantID: tid, Kind: k, Name: name, Description: desc, Enabled: spec.Enabled == nil || *spec.Enabled,
		KeyURIs: uris, State: Active, KeyVersion: 1, CreatedAt: now, UpdatedAt: now}
	return s.insert(ctx, p, func(tx storage.Tx) error {
		if err := s.checkRoom(tx, tid, k, name); err != nil {
			return err
		}
		_, err := tx.Put(nameKey(tid, k, name), []byte(id), storage.MustNotExist)
		return err
	}, func(p Policy) audit.Event {
		return audit.Event{TenantID: tid, Actor: actorOf(c, tid), Action: actionCreate, Target: id,
			Result: audit.Success, Reason: fmt.Sprintf("%s policy %q with root keys %s", k, name, strings.Join(p.RootKeyIDs, ", "))}
	})
}

// insert stores the new policy p: a fresh policy key (SharePoint's tenant
// intermediate key) and availability key, version 1 wrapped live under
// p.KeyURIs, and in one transaction the caller's index entries and checks
// (index), the availability key, the version, the policy and its audit
// record (made by event once p names its root keys). If anything fails,
// the new availability key is discarded.
func (s *Service) insert(ctx context.Context, p Policy, index func(storage.Tx) error, event func(Policy) audit.Event) (Policy, error) {
	key, err := newPolicyKey()
	if err != nil {
		return Policy{}, err
	}
	defer key.Wipe()
	ak, err := s.newAK(ctx)
	if err != nil {
		return Policy{}, err
	}
	defer ak.Wipe()
	created := false
	defer func() {
		if !created {
			s.discardAK(ctx, ak)
		}
	}()
	akRec, err := ak.record()
	if err != nil {
		return Policy{}, err
	}
	kv, err := s.wrapVersion(ctx, p, 1, p.KeyURIs, key, ak)
	if err != nil {
		return Policy{}, err
	}
	p.RootKeyIDs = rootIDs(kv.Roots)
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		if err := index(tx); err != nil {
			return err
		}
		if _, err := tx.Put(akKey(p.TenantID, p.ID), akRec, storage.MustNotExist); err != nil {
			return err
		}
		if err := storage.PutJSON(tx, versionKey(p.TenantID, p.ID, 1), kv, storage.MustNotExist); err != nil {
			return err
		}
		if err := storage.PutJSON(tx, policyKey(p.TenantID, p.ID), p, storage.MustNotExist); err != nil {
			return err
		}
		return s.audit.RecordTx(ctx, tx, event(p))
	})
	if err != nil {
		return Policy{}, err
	}
	created = true
	return p, nil
}

// checkRoom refuses a name in use by another policy of the kind, and an
// Exchange policy beyond the tenant's limit.
func (s *Service) checkRoom(tx storage.Tx, tid string, k Kind, name string) error {
	if _, err := tx.Get(nameKey(tid, k, name)); err == nil {
		return errkind.Errorf(errkind.AlreadyExists, "tenant %s already has a %s policy named %q; policy names are unique", tid, k, name).
			WithCode("PolicyNameInUse")
	} else if !errkind.Is(err, errkind.NotFound) {
		return err
	}
	if k != Exchange {
		return nil
	}
	all, err := listPolicies(tx, tid)
	if err != nil {
		return err
	}
	n := 0
	for _, p := range all {
		if p.Kind == Exchange && p.State != Purged {
			n++
		}
	}
	if n >= MaxExchangePolicies {
		return errkind.Errorf(errkind.FailedPrecondition,
			"tenant %s has %d Exchange data encryption policies, the most allowed; move mailboxes onto fewer policies and purge the unused ones",
			tid, n).WithCode("PolicyLimitReached")
	}
	return nil
}

func listPolicies(tx storage.Tx, tid string) ([]Policy, error) {
	entries, err := tx.List(kPolicy+tid+"/", "", 0)
	if err != nil {
		return nil, err
	}
	out := make([]Policy, 0, len(entries))
	for _, e := range entries {
		var p Policy
		if err := json.Unmarshal(e.Value, &p); err != nil {
			return nil, fmt.Errorf("dep: decoding %s: %w", e.Key, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func notFoundPolicy(k Kind, tid, identity string) error {
	return errkind.Errorf(errkind.NotFound, "tenant %s has no %s policy with the name or id %q", tid, k, identity).
		WithCode("PolicyNotFound")
}

// find resolves identity (an id or a name) among tid's policies of kind k.
// An empty identity is refused: it never means "all".
func find(tx storage.Tx, tid string, k Kind, identity string) (Policy, int64, error) {
	ident := strings.TrimSpace(identity)
	if ident == "" {
		return Policy{}, 0, errkind.New(errkind.Invalid, "give the policy's name or id")
	}
	id := lower(ident)
	if !directory.IsGUID(id) {
		e, err := tx.Get(nameKey(tid, k, ident))
		if errkind.Is(err, errkind.NotFound) {
			return Policy{}, 0, notFoundPolicy(k, tid, ident)
		}
		if err != nil {
			return Policy{}, 0, err
		}
		id = string(e.Value)
	}
	var p Policy
	ver, err := storage.GetJSON(tx, policyKey(tid, id), &p)
	if errkind.Is(err, errkind.NotFound) || (err == nil && p.Kind != k) {
		return Policy{}, 0, notFoundPolicy(k, tid, ident)
	}
	return p, ver, err
}

// Get returns one of tenant's policies of kind k by name or id.
func (s *Service) Get(ctx context.Context, c directory.Caller, tenantID string, k Kind, identity string) (Policy, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return Policy{}, err
	}
	if err := s.authorize(ctx, c, tid, kindForAuth(k), actionRead); err != nil {
		return Policy{}, err
	}
	var p Policy
	err = s.store.View(ctx, func(tx storage.Tx) error {
		var err error
		p, _, err = find(tx, tid, k, identity)
		return err
	})
	if err != nil {
		return Policy{}, err
	}
	return s.withProgress(ctx, p)
}

// List returns tenant's policies of kind k, oldest first.
func (s *Service) List(ctx context.Context, c directory.Caller, tenantID string, k Kind) ([]Policy, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, c, tid, kindForAuth(k), actionRead); err != nil {
		return nil, err
	}
	var all []Policy
	if err := s.store.View(ctx, func(tx storage.Tx) error {
		all, err = listPolicies(tx, tid)
		return err
	}); err != nil {
		return nil, err
	}
	out := []Policy{}
	for _, p := range all {
		if p.Kind != k {
			continue
		}
		if p, err = s.withProgress(ctx, p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Policy) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// kindForAuth maps the service-managed kind, which has no roles of its
// own, to the multi-workload roles: who manages tenant-wide encryption.
func kindForAuth(k Kind) Kind {
	if _, ok := managers[k]; ok {
		return k
	}
	return M365
}

// Set changes a policy's name, description or enabled flag. A
// multi-workload policy can be disabled only while it is not assigned
// (rule V12); a purged or purge-requested policy cannot change.
func (s *Service) Set(ctx context.Context, c directory.Caller, tenantID string, k Kind, identity string, ch Change) (Policy, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return Policy{}, err
	}
	if k != M365 && k != Exchange {
		return Policy{}, errkind.Errorf(errkind.Invalid, "only %s and %s policies have a name, description and enabled flag", M365, Exchange)
	}
	if err := s.authorize(ctx, c, tid, k, actionUpdate); err != nil {
		return Policy{}, err
	}
	var name, desc string
	if ch.Name != nil {
		if name, err = checkName(*ch.Name); err != nil {
			return Policy{}, err
		}
	}
	if ch.Description != nil {
		if desc, err = checkDescription(*ch.Description); err != nil {
			return Policy{}, err
		}
	}
	var out Policy
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		p, ver, err := find(tx, tid, k, identity)
		if err != nil {
			return err
		}
		if p.purgeStarted() {
			return errkind.Errorf(errkind.FailedPrecondition, "the %s is %s and can no longer change", p.label(), p.State)
		}
		var changes []string
		if ch.Name != nil && name != p.Name {
			if !strings.EqualFold(name, p.Name) {
				if _, err := tx.Get(nameKey(tid, k, name)); err == nil {
					return errkind.Errorf(errkind.AlreadyExists, "tenant %s already has a %s policy named %q; policy names are unique", tid, k, name).
						WithCode("PolicyNameInUse")
				} else if !errkind.Is(err, errkind.NotFound) {
					return err
				}
			}
			if err := tx.Delete(nameKey(tid, k, p.Name), storage.AnyVersion); err != nil {
				return err
			}
			if _, err := tx.Put(nameKey(tid, k, name), []byte(p.ID), storage.AnyVersion); err != nil {
				return err
			}
			changes = append(changes, fmt.Sprintf("name %q -> %q", p.Name, name))
			p.Name = name
		}
		if ch.Description != nil && desc != p.Description {
			p.Description = desc
			changes = append(changes, "description")
		}
		if ch.Enabled != nil && *ch.Enabled != p.Enabled {
			if !*ch.Enabled && k == M365 {
				a, err := loadAssignment(tx, tid)
				if err != nil {
					return err
				}
				if a.PolicyID == p.ID {
					return errkind.Errorf(errkind.FailedPrecondition,
						"the %s is assigned to tenant %s and cannot be disabled; assign another policy first (rule V12)", p.label(), tid).
						WithCode("PolicyAssigned")
				}
			}
			p.Enabled = *ch.Enabled
			changes = append(changes, fmt.Sprintf("enabled %v", p.Enabled))
		}
		out = p
		if len(changes) == 0 {
			return nil
		}
		p.UpdatedAt = s.now().UTC()
		out = p
		if err := storage.PutJSON(tx, policyKey(tid, p.ID), p, ver); err != nil {
			return err
		}
		return s.audit.RecordTx(ctx, tx, audit.Event{TenantID: tid, Actor: actorOf(c, tid), Action: actionUpdate, Target: p.ID,
			Result: audit.Success, Reason: strings.Join(changes, "; ")})
	})
	return out, err
}

// loadVersion reads one key version of a policy.
func loadVersion(tx storage.Tx, tid, id string, v int) (keyVersion, error) {
	var kv keyVersion
	_, err := storage.GetJSON(tx, versionKey(tid, id, v), &kv)
	return kv, err
}

// versionConflict is the error of a change that lost a race.
func versionConflict(p Policy) error {
	return errkind.Errorf(errkind.Conflict, "the %s changed while this request ran; try again", p.label())
}
