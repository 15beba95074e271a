package onboarding

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/rbac"
	"github.com/customerkey/customerkey/internal/resourceid"
	"github.com/customerkey/customerkey/internal/resources"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/vault"
)

func jsonUnmarshal(e storage.Entry, v any) error {
	if err := json.Unmarshal(e.Value, v); err != nil {
		return fmt.Errorf("onboarding: decoding %s: %w", e.Key, err)
	}
	return nil
}

// target is one of the request's two subscription/vault/key triples, as
// named and as found.
type target struct {
	n                 int
	sub               string
	vaultName, key    string
	version           string // from a key identifier
	keyID             string
	idErr             string // why the key identifier is not one
	present           bool
	subFound, inOrg   bool
	subscription      resources.Subscription
	vault             *vault.Vault
	keyFound          bool
	k                 vault.Key
	feature           resources.Feature
	featureRegistered bool
}

// ParseKeyIdentifier splits a key URI of the form
// https://{vault}.{suffix}[:{port}]/keys/{name}[/{version}] into the vault
// name (the first host label), the key name and the version.
func ParseKeyIdentifier(s string) (vaultName, key, version string, err error) {
	bad := func(why string) (string, string, string, error) {
		return "", "", "", fmt.Errorf("%q is not a key identifier (https://{vault}.vault.{suffix}/keys/{name}[/{version}]): %s", s, why)
	}
	u, perr := url.Parse(strings.TrimSpace(s))
	if perr != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return bad("it is not an https URL without query or fragment")
	}
	label, rest, ok := strings.Cut(u.Hostname(), ".")
	if !ok || rest == "" || !vault.ValidName(label) {
		return bad("its host does not start with a vault name")
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] != "keys" || !vault.ValidKeyName(parts[1]) {
		return bad("its path is not /keys/{name}[/{version}]")
	}
	if len(parts) == 3 {
		version = parts[2]
		if version == "" {
			return bad("its version is empty")
		}
	}
	return label, parts[1], version, nil
}

// checkSpec turns a Spec into a Request skeleton and the two targets.
func checkSpec(spec Spec) (Request, []*target, error) {
	org, err := checkOrg(spec.Organization)
	if err != nil {
		return Request{}, nil, err
	}
	sc, err := ParseScenario(spec.Scenario)
	if err != nil {
		return Request{}, nil, err
	}
	mode, err := ParseMode(spec.Mode)
	if err != nil {
		return Request{}, nil, err
	}
	r := Request{Organization: org, Scenario: sc, OnboardingMode: mode,
		Subscription1: lower(spec.Subscription1), VaultName1: strings.TrimSpace(spec.VaultName1), KeyName1: strings.TrimSpace(spec.KeyName1),
		Subscription2: lower(spec.Subscription2), VaultName2: strings.TrimSpace(spec.VaultName2), KeyName2: strings.TrimSpace(spec.KeyName2),
		KeyIdentifier1: strings.TrimSpace(spec.KeyIdentifier1), KeyIdentifier2: strings.TrimSpace(spec.KeyIdentifier2)}
	var ts []*target
	for i, in := range [][4]string{
		{r.Subscription1, r.VaultName1, r.KeyName1, r.KeyIdentifier1},
		{r.Subscription2, r.VaultName2, r.KeyName2, r.KeyIdentifier2},
	} {
		t := &target{n: i + 1, sub: in[0], vaultName: in[1], key: in[2], keyID: in[3]}
		t.present = in[0] != "" || in[1] != "" || in[2] != "" || in[3] != ""
		if !t.present {
			continue
		}
		if t.sub == "" {
			return Request{}, nil, errkind.Errorf(errkind.Invalid, "Subscription%d is required when VaultName%d, KeyName%d or KeyIdentifier%d is given", t.n, t.n, t.n, t.n)
		}
		if strings.Contains(t.sub, "/") {
			return Request{}, nil, errkind.Errorf(errkind.Invalid, "Subscription%d %q is not a subscription id", t.n, t.sub)
		}
		if t.keyID != "" {
			v, k, ver, err := ParseKeyIdentifier(t.keyID)
			if err != nil {
				t.idErr = err.Error()
			}
			t.vaultName, t.key, t.version = v, k, ver
		} else if t.vaultName == "" || t.key == "" {
			return Request{}, nil, errkind.Errorf(errkind.Invalid, "give VaultName%d and KeyName%d, or KeyIdentifier%d", t.n, t.n, t.n)
		}
		ts = append(ts, t)
	}
	if len(ts) == 0 {
		return Request{}, nil, errkind.New(errkind.Invalid, "name the two subscriptions, vaults and keys (Subscription1, VaultName1, KeyName1, Subscription2, VaultName2, KeyName2)")
	}
	// Key identifiers replace the names; report what was used.
	for _, t := range ts {
		if t.keyID != "" && t.idErr == "" {
			if t.n == 1 {
				r.VaultName1, r.KeyName1 = t.vaultName, t.key
			} else {
				r.VaultName2, r.KeyName2 = t.vaultName, t.key
			}
		}
	}
	return r, ts, nil
}

// resolve looks up what t names. Only subscriptions of the organization
// are looked into: another tenant's vaults are none of the caller's
// business.
func (s *Service) resolve(ctx context.Context, org string, t *target) error {
	sub, err := s.res.Get(ctx, t.sub)
	switch {
	case errkind.Is(err, errkind.NotFound):
		return nil
	case err != nil:
		return err
	}
	t.subFound, t.subscription = true, sub
	t.inOrg = strings.EqualFold(sub.TenantID, org)
	if !t.inOrg || t.idErr != "" {
		return nil
	}
	vs, err := s.kv.ListBySubscription(ctx, sub.ID)
	if err != nil {
		return err
	}
	for i := range vs {
		if strings.EqualFold(vs[i].Name, t.vaultName) {
			t.vault = &vs[i]
			break
		}
	}
	if t.vault == nil {
		return nil
	}
	k, err := s.kv.GetKey(ctx, t.vault.Name, t.key, t.version)
	switch {
	case errkind.Is(err, errkind.NotFound):
	case err != nil:
		return err
	default:
		t.keyFound, t.k = true, k
	}
	return nil
}

func (s *Service) readFeature(ctx context.Context, t *target) error {
	if !t.inOrg {
		return nil
	}
	f, err := s.res.Feature(ctx, t.subscription.ID, resources.MandatoryRetentionNamespace, resources.MandatoryRetentionName)
	if err != nil {
		return err
	}
	t.feature, t.featureRegistered = f, f.State == resources.Registered
	return nil
}

// denyRole turns an rbac refusal into one naming the role and scope.
func denyRole(err error, c Caller, role, what string, sc resourceid.ID) error {
	if !errkind.Is(err, errkind.PermissionDenied) {
		return err
	}
	return errkind.Errorf(errkind.PermissionDenied,
		"the caller %s needs the role %s on %s to %s (customerkey role assignment create --assignee %s --role %s --scope %s)",
		c.ObjectID, role, sc, what, c.ObjectID, role, sc).WithCode("AuthorizationFailed")
}

// Submit runs an onboarding request and stores it. The caller must be a
// Global Administrator of the organization with Reader on each named vault
// (and, for Prepare, the right to register features on each subscription);
// otherwise it is refused before anything changes. A rule that fails is
// no error: it is in FailedValidations.
func (s *Service) Submit(ctx context.Context, c Caller, spec Spec) (Request, error) {
	r, ts, err := checkSpec(spec)
	if err != nil {
		return Request{}, err
	}
	org := r.Organization
	if err := s.authorizeAdmin(ctx, c, org, actionCreate); err != nil {
		return Request{}, err
	}
	tenant, err := s.dir.Tenant(ctx, org)
	if err != nil {
		return Request{}, err
	}
	for _, t := range ts {
		if err := s.resolve(ctx, org, t); err != nil {
			return Request{}, err
		}
	}
	p := c.principal()
	for _, t := range ts {
		if t.vault == nil {
			continue
		}
		if err := s.rbac.Check(ctx, p, rbac.ActionVaultRead, t.vault.ResourceID()); err != nil {
			err = denyRole(err, c, "Reader", "read the vault named in the request", t.vault.ResourceID())
			s.recordDenied(ctx, c, org, actionCreate, err)
			return Request{}, err
		}
	}
	if r.OnboardingMode == Prepare {
		for _, t := range ts {
			if !t.inOrg {
				continue
			}
			sc := resourceid.Subscription(t.subscription.ID)
			if err := s.rbac.Check(ctx, p, rbac.ActionFeatureRegister, sc); err != nil {
				err = denyRole(err, c, "Contributor", "register the mandatory retention period", sc)
				s.recordDenied(ctx, c, org, actionCreate, err)
				return Request{}, err
			}
		}
		r.Messages = s.prepare(ctx, c, ts)
	}
	for _, t := range ts {
		if err := s.readFeature(ctx, t); err != nil {
			return Request{}, err
		}
	}
	e := &evaluation{s: s, req: &r, tenant: tenant.HasServicePlan, ts: ts}
	if err := e.run(ctx); err != nil {
		return Request{}, err
	}
	pass := len(r.FailedValidations) == 0
	r.ValidationResult, r.EnablementResult = Failed, NotApplicable
	if pass {
		r.ValidationResult = Success
	}
	if r.OnboardingMode == Enable {
		r.EnablementResult = Failed
		if pass {
			r.EnablementResult = Success
		}
	}
	now := s.now().UTC()
	if r.ID, err = s.newID(); err != nil {
		return Request{}, err
	}
	r.CreatedDate = now
	by := c.actor(org)
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		if err := storage.PutJSON(tx, kRequest+org+"/"+r.ID, r, storage.MustNotExist); err != nil {
			return err
		}
		reason := fmt.Sprintf("%s %s: validation %s, enablement %s, %d rules failed", r.OnboardingMode, r.Scenario,
			r.ValidationResult, r.EnablementResult, len(r.FailedValidations))
		if err := s.audit.RecordTx(ctx, tx, audit.Event{TenantID: org, Actor: by, Action: actionCreate, Target: r.ID,
			Result: audit.Success, Reason: reason}); err != nil {
			return err
		}
		if r.OnboardingMode == Enable && pass {
			return s.enableTx(ctx, tx, org, r.Scenario, r.ID, by, false, now)
		}
		return nil
	})
	if err != nil {
		return Request{}, err
	}
	return r, nil
}

// prepare registers the mandatory retention period on each subscription
// of the organization and says what came of it.
func (s *Service) prepare(ctx context.Context, c Caller, ts []*target) []string {
	var msgs []string
	done := map[string]bool{}
	for _, t := range ts {
		if !t.inOrg {
			msgs = append(msgs, fmt.Sprintf("%s was not registered on subscription %s: it is not a subscription of the organization",
				resources.MandatoryRetentionName, t.sub))
			continue
		}
		id := t.subscription.ID
		if done[lower(id)] {
			continue
		}
		done[lower(id)] = true
		f, err := s.res.RegisterFeature(ctx, c.directory(), id, resources.MandatoryRetentionNamespace, resources.MandatoryRetentionName)
		switch {
		case err != nil:
			msgs = append(msgs, fmt.Sprintf("%s could not be registered on subscription %s: %s", resources.MandatoryRetentionName, id, errkind.Public(err)))
		case f.State == resources.Registered:
			msgs = append(msgs, fmt.Sprintf("%s is Registered on subscription %s", resources.MandatoryRetentionName, id))
		default:
			msgs = append(msgs, fmt.Sprintf("%s is %s on subscription %s until %s; run Validate again after %s",
				resources.MandatoryRetentionName, f.State, id, f.ReadyAt.UTC().Format(time.RFC3339), f.ReadyAt.UTC().Format(time.RFC3339)))
		}
	}
	return msgs
}
