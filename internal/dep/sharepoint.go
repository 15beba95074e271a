package dep

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/onboarding"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
)

// Geos are the Microsoft 365 multi-geo location codes: a SharePoint policy
// and a site live in one of them.
var Geos = []string{"APC", "ARE", "AUS", "BRA", "CAN", "CHE", "DEU", "EUR", "FRA", "GBR", "IND", "JPN", "KOR", "NAM",
	"NOR", "POL", "QAT", "SWE", "ZAF"}

// DefaultGeo is the geo of a tenant that is not multi-geo, and of a site
// created without one.
const DefaultGeo = "NAM"

// ParseGeo accepts a geo code of Geos in any case; empty is DefaultGeo.
func ParseGeo(geo string) (string, error) {
	g := strings.ToUpper(strings.TrimSpace(geo))
	if g == "" {
		return DefaultGeo, nil
	}
	if !slices.Contains(Geos, g) {
		return "", errkind.Errorf(errkind.Invalid, "the geo %q is not a Microsoft 365 geo location; use one of %s", geo, strings.Join(Geos, ", "))
	}
	return g, nil
}

func geoKey(tid, geo string) string { return kGeo + tid + "/" + geo }

// geoPolicy returns the geo's SharePoint policy, NotFound when it has none
// (a purged one counts as none).
func geoPolicy(tx storage.Tx, tid, geo string) (Policy, error) {
	p, _, err := geoPolicyVer(tx, tid, geo)
	return p, err
}

func geoPolicyVer(tx storage.Tx, tid, geo string) (Policy, int64, error) {
	notFound := errkind.Errorf(errkind.NotFound, "tenant %s has no SharePoint data encryption policy in geo %s", tid, geo).
		WithCode("PolicyNotFound")
	e, err := tx.Get(geoKey(tid, geo))
	if errkind.Is(err, errkind.NotFound) {
		return Policy{}, 0, notFound
	}
	if err != nil {
		return Policy{}, 0, err
	}
	var p Policy
	ver, err := storage.GetJSON(tx, policyKey(tid, string(e.Value)), &p)
	if err != nil {
		return Policy{}, 0, err
	}
	if p.State == Purged {
		return Policy{}, 0, notFound
	}
	return p, ver, nil
}

// KeyType names the key of a SharePoint policy that an update rolls.
type KeyType string

// Key types.
const (
	Primary   KeyType = "Primary"
	Secondary KeyType = "Secondary"
)

// ParseKeyType accepts Primary and Secondary in any case.
func ParseKeyType(s string) (KeyType, error) {
	for _, t := range []KeyType{Primary, Secondary} {
		if strings.EqualFold(strings.TrimSpace(s), string(t)) {
			return t, nil
		}
	}
	return "", errkind.Errorf(errkind.Invalid, "the key type %q is not known; use Primary or Secondary", s)
}

// SharePointSpec registers (or restores) a geo's policy. The key
// identifiers may name versions (pinned) or not (the current version is
// resolved and pinned).
type SharePointSpec struct {
	Geo             string
	PrimaryKeyURI   string
	SecondaryKeyURI string
}

// checkCustody applies rule V18 to the vaults of uris: each is a vault of
// the tenant in a subscription whose mandatory retention period is
// Registered.
func (s *Service) checkCustody(ctx context.Context, tid string, uris []string) error {
	var problems []error
	for _, u := range uris {
		k, err := parseKeyURI(u)
		if err != nil {
			return err
		}
		v, err := s.vaults.ByName(ctx, k.vault)
		switch {
		case errkind.Is(err, errkind.NotFound) || (err == nil && !strings.EqualFold(v.TenantID, tid)):
			problems = append(problems, errkind.Errorf(errkind.FailedPrecondition,
				"no key vault named %s exists in tenant %s; copy the key identifier from the vault that holds the key", k.vault, tid))
			continue
		case err != nil:
			return err
		}
		ok, err := s.subs.Protected(ctx, v.SubscriptionID)
		if err != nil {
			return err
		}
		if !ok {
			problems = append(problems, errkind.Errorf(errkind.FailedPrecondition,
				"the subscription %s that holds the key vault %s does not have the mandatory retention period Registered (rule V18): "+
					"run Register-AzProviderFeature -FeatureName mandatoryRetentionPeriodEnabled -ProviderNamespace Microsoft.Resources "+
					"in that subscription and wait until Get-AzProviderFeature shows Registered", v.SubscriptionID, v.Name).
				WithCode("MandatoryRetentionPeriodNotRegistered"))
		}
	}
	if len(problems) > 0 {
		return joinProblems(problems)
	}
	return nil
}

// pin resolves versionless key identifiers to the current version, as the
// SharePoint workload identity sees it.
func (s *Service) pin(ctx context.Context, tid string, uris []string) ([]string, error) {
	out := make([]string, len(uris))
	for i, u := range uris {
		k, err := parseKeyURI(u)
		if err != nil {
			return nil, err
		}
		if k.version != "" {
			out[i] = k.raw
			continue
		}
		app, appName := appOf(SharePoint)
		info, err := s.roots.Describe(ctx, app, tid, k.raw)
		if err != nil {
			return nil, keyProblem(appName, k.raw, err)
		}
		out[i] = info.KeyID
	}
	return out, nil
}

// RegisterSharePoint registers the geo's SharePoint policy
// (Register-SPODataEncryptionPolicy): the tenant must have enabled EXO or
// MDEP and both keys' subscriptions must have the mandatory retention
// period Registered (rule V18); one policy per geo (rule V13). Its policy
// key, the TIK, is wrapped live by both keys; the policy is Registering
// until the files workload has moved every site of the geo onto it.
func (s *Service) RegisterSharePoint(ctx context.Context, c directory.Caller, tenantID string, spec SharePointSpec) (Policy, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return Policy{}, err
	}
	geo, err := ParseGeo(spec.Geo)
	if err != nil {
		return Policy{}, err
	}
	if err := s.authorize(ctx, c, tid, SharePoint, actionRegister); err != nil {
		return Policy{}, err
	}
	uris, err := checkURIs([]string{spec.PrimaryKeyURI, spec.SecondaryKeyURI}, true)
	if err != nil {
		return Policy{}, err
	}
	if err := s.requireScenario(ctx, tid, "a SharePoint data encryption policy", onboarding.EXO, onboarding.MDEP); err != nil {
		return Policy{}, err
	}
	if err := s.checkCustody(ctx, tid, uris); err != nil {
		return Policy{}, err
	}
	geoTaken := func(tx storage.Tx) error {
		p, err := geoPolicy(tx, tid, geo)
		if err == nil {
			return errkind.Errorf(errkind.AlreadyExists,
				"geo %s of tenant %s already has a SharePoint data encryption policy (%s); a geo has one (rule V13): roll its keys with an update instead",
				geo, tid, p.ID).WithCode("PolicyExists")
		}
		if errkind.Is(err, errkind.NotFound) {
			return nil
		}
		return err
	}
	if err := s.store.View(ctx, geoTaken); err != nil {
		return Policy{}, err
	}
	if uris, err = s.pin(ctx, tid, uris); err != nil {
		return Policy{}, err
	}
	id, err := s.newID()
	if err != nil {
		return Policy{}, err
	}
	now := s.now().UTC()
	p := Policy{ID: id, TenantID: tid, Kind: SharePoint, Name: "SharePoint " + geo, Enabled: true, Geo: geo, KeyURIs: uris,
		State: Registering, KeyVersion: 1, CreatedAt: now, UpdatedAt: now}
	p, err = s.insert(ctx, p, func(tx storage.Tx) error {
		if err := geoTaken(tx); err != nil {
			return err
		}
		_, err := tx.Put(geoKey(tid, geo), []byte(id), storage.AnyVersion)
		return err
	}, func(Policy) audit.Event {
		return audit.Event{TenantID: tid, Actor: actorOf(c, tid), Action: actionRegister, Target: id,
			Result: audit.Success, Reason: fmt.Sprintf("geo %s with primary key %s and secondary key %s", geo, uris[0], uris[1])}
	})
	if err != nil {
		return Policy{}, err
	}
	s.kick(tid)
	return s.withProgress(ctx, p)
}

// SharePointPolicy returns the geo's policy with its state and progress
// (Get-SPODataEncryptionPolicy).
func (s *Service) SharePointPolicy(ctx context.Context, c directory.Caller, tenantID, geo string) (Policy, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return Policy{}, err
	}
	g, err := ParseGeo(geo)
	if err != nil {
		return Policy{}, err
	}
	if err := s.authorize(ctx, c, tid, SharePoint, actionRead); err != nil {
		return Policy{}, err
	}
	var p Policy
	if err := s.store.View(ctx, func(tx storage.Tx) error {
		p, err = geoPolicy(tx, tid, g)
		return err
	}); err != nil {
		return Policy{}, err
	}
	return s.withProgress(ctx, p)
}

// withProgress fills a SharePoint policy's PercentComplete and, when every
// site of the geo is on the newest key version, moves it from Registering
// or Rolling to Registered.
func (s *Service) withProgress(ctx context.Context, p Policy) (Policy, error) {
	if p.Kind != SharePoint {
		return p, nil
	}
	pct := 100
	switch p.State {
	case Registered:
	case Registering, Rolling:
		done, total, err := s.progress(ctx, p)
		if err != nil {
			return Policy{}, err
		}
		if done < total {
			pct = done * 100 / total
			break
		}
		if p, err = s.settle(ctx, p, total); err != nil {
			return Policy{}, err
		}
	default:
		return p, nil
	}
	p.PercentComplete = &pct
	return p, nil
}

// progress sums the files workloads' progress of p's geo onto its newest
// key version.
func (s *Service) progress(ctx context.Context, p Policy) (done, total int, err error) {
	for _, w := range s.workloads() {
		if w.Workload() != Files {
			continue
		}
		d, t, err := w.Progress(ctx, p.TenantID, p.Geo, p.Ref())
		if err != nil {
			return 0, 0, err
		}
		done, total = done+d, total+t
	}
	return done, total, nil
}

// settle records that every one of the geo's sites is on p's newest key
// version: the policy is Registered.
func (s *Service) settle(ctx context.Context, p Policy, sites int) (Policy, error) {
	var out Policy
	err := s.store.Update(ctx, func(tx storage.Tx) error {
		var cur Policy
		ver, err := storage.GetJSON(tx, policyKey(p.TenantID, p.ID), &cur)
		if err != nil {
			return err
		}
		out = cur
		if cur.KeyVersion != p.KeyVersion || (cur.State != Registering && cur.State != Rolling) {
			return nil // changed meanwhile; report what is stored
		}
		from := cur.State
		cur.State, cur.UpdatedAt = Registered, s.now().UTC()
		out = cur
		if err := storage.PutJSON(tx, policyKey(p.TenantID, p.ID), cur, ver); err != nil {
			return err
		}
		return s.audit.RecordTx(ctx, tx, audit.Event{TenantID: p.TenantID, Actor: systemActor, Action: actionRegistered, Target: p.ID,
			Result: audit.Success, Reason: fmt.Sprintf("%s -> Registered: all %d sites of geo %s are on key version %d", from, sites, p.Geo, p.KeyVersion)})
	})
	return out, err
}

// loadGeoForChange reads the geo's policy for a key change: settled, not
// rolling or registering (rule V14), not being purged.
func (s *Service) loadGeoForChange(ctx context.Context, tid, geo string) (Policy, int64, error) {
	var p Policy
	var ver int64
	if err := s.store.View(ctx, func(tx storage.Tx) error {
		var err error
		p, ver, err = geoPolicyVer(tx, tid, geo)
		return err
	}); err != nil {
		return Policy{}, 0, err
	}
	if p.purgeStarted() {
		return Policy{}, 0, errkind.Errorf(errkind.FailedPrecondition, "the %s is %s and can no longer change", p.label(), p.State).
			WithCode("PolicyPurgeRequested")
	}
	return p, ver, nil
}

// UpdateSharePoint rolls one key of the geo's policy
// (Update-SPODataEncryptionPolicy -KeyType Primary|Secondary) to a new
// version, vault or key: a new TIK version wrapped under the new pair,
// Rolling until every site is on it. Only one roll runs at a time (rule
// V14).
func (s *Service) UpdateSharePoint(ctx context.Context, c directory.Caller, tenantID, geo string, t KeyType, keyURI string) (Policy, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return Policy{}, err
	}
	g, err := ParseGeo(geo)
	if err != nil {
		return Policy{}, err
	}
	if t != Primary && t != Secondary {
		return Policy{}, errkind.Errorf(errkind.Invalid, "the key type %q is not known; use Primary or Secondary", t)
	}
	if err := s.authorize(ctx, c, tid, SharePoint, actionRoll); err != nil {
		return Policy{}, err
	}
	p, _, err := s.loadGeoForChange(ctx, tid, g)
	if err != nil {
		return Policy{}, err
	}
	// A roll that has finished is recorded before deciding.
	if p, err = s.withProgress(ctx, p); err != nil {
		return Policy{}, err
	}
	if p.State != Registered {
		return Policy{}, errkind.Errorf(errkind.FailedPrecondition,
			"the %s is %s (%d%% of sites done); one key rolls at a time: wait until it is Registered (rule V14)", p.label(), p.State, *p.PercentComplete).
			WithCode("RollInProgress")
	}
	i := 0
	if t == Secondary {
		i = 1
	}
	uris := append([]string(nil), p.KeyURIs...)
	uris[i] = keyURI
	if uris, err = checkURIs(uris, true); err != nil {
		return Policy{}, err
	}
	if err := s.checkCustody(ctx, tid, uris[i:i+1]); err != nil {
		return Policy{}, err
	}
	if uris, err = s.pin(ctx, tid, uris); err != nil {
		return Policy{}, err
	}
	if strings.EqualFold(uris[i], p.KeyURIs[i]) {
		return Policy{}, errkind.Errorf(errkind.Invalid, "the %s key of the %s is %s already; give a new version, key or vault", t, p.label(), uris[i])
	}
	var ver int64
	if err := s.store.View(ctx, func(tx storage.Tx) error {
		p, ver, err = geoPolicyVer(tx, tid, g)
		return err
	}); err != nil {
		return Policy{}, err
	}
	tik, err := newPolicyKey()
	if err != nil {
		return Policy{}, err
	}
	defer tik.Wipe()
	ak, err := s.loadAK(ctx, p)
	if err != nil {
		return Policy{}, err
	}
	defer ak.Wipe()
	next, err := s.wrapVersion(ctx, p, p.KeyVersion+1, uris, tik, ak)
	if err != nil {
		return Policy{}, err
	}
	old := p.KeyURIs[i]
	p.KeyURIs, p.State, p.PercentComplete = uris, Rolling, nil
	p, err = s.commitVersion(ctx, c, p, ver, next, actionRoll,
		fmt.Sprintf("%s key %s -> %s; rolling to key version %d", t, old, uris[i], next.Version))
	if err != nil {
		return Policy{}, err
	}
	return s.withProgress(ctx, p)
}

// RestoreSharePoint re-onboards a geo whose root keys were lost
// (Restore-SPODataEncryptionPolicy): an operator Global Administrator
// recovers every stored version of the TIK with the availability key and
// wraps the same TIKs under the new root keys, so that every site opens
// again without rewrapping. The new keys pass the same checks as at
// registration.
func (s *Service) RestoreSharePoint(ctx context.Context, c directory.Caller, tenantID string, spec SharePointSpec) (Policy, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return Policy{}, err
	}
	geo, err := ParseGeo(spec.Geo)
	if err != nil {
		return Policy{}, err
	}
	if err := s.authorizeOperator(ctx, c, true, "restore a SharePoint data encryption policy"); err != nil {
		return Policy{}, err
	}
	uris, err := checkURIs([]string{spec.PrimaryKeyURI, spec.SecondaryKeyURI}, true)
	if err != nil {
		return Policy{}, err
	}
	if err := s.checkCustody(ctx, tid, uris); err != nil {
		return Policy{}, err
	}
	p, ver, err := s.loadGeoForChange(ctx, tid, geo)
	if err != nil {
		return Policy{}, err
	}
	if uris, err = s.pin(ctx, tid, uris); err != nil {
		return Policy{}, err
	}
	var versions []keyVersion
	if err := s.store.View(ctx, func(tx storage.Tx) error {
		for v := 1; v <= p.KeyVersion; v++ {
			kv, err := loadVersion(tx, tid, p.ID, v)
			if err != nil {
				return err
			}
			versions = append(versions, kv)
		}
		return nil
	}); err != nil {
		return Policy{}, err
	}
	for i := range versions {
		tik, err := s.unwrapAvailable(ctx, p, versions[i])
		if err != nil {
			return Policy{}, err
		}
		roots, err := s.wrapAll(ctx, p, uris, tik)
		tik.Wipe()
		if err != nil {
			return Policy{}, err
		}
		versions[i].Roots = roots
	}
	old := p.KeyURIs
	p.KeyURIs = uris
	p.RootKeyIDs = rootIDs(versions[len(versions)-1].Roots)
	p.UpdatedAt = s.now().UTC()
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		for _, kv := range versions {
			if err := storage.PutJSON(tx, versionKey(tid, p.ID, kv.Version), kv, storage.AnyVersion); err != nil {
				return err
			}
		}
		if err := storage.PutJSON(tx, policyKey(tid, p.ID), p, ver); err != nil {
			if errkind.Is(err, errkind.Conflict) {
				return versionConflict(p)
			}
			return err
		}
		return s.audit.RecordTx(ctx, tx, audit.Event{TenantID: tid, Actor: actorOf(c, tid), Action: actionRestore, Target: p.ID,
			Result: audit.Success, Reason: fmt.Sprintf("the TIK of geo %s (key versions 1 to %d), recovered with the availability key, rewrapped: root keys %s replaced by %s",
				geo, p.KeyVersion, strings.Join(old, ", "), strings.Join(uris, ", "))})
	})
	if err != nil {
		return Policy{}, err
	}
	s.kick(tid)
	return s.withProgress(ctx, p)
}

// wrapAll wraps key live under every root key of uris.
func (s *Service) wrapAll(ctx context.Context, p Policy, uris []string, key secret.Bytes) ([]WrappedRoot, error) {
	var roots []WrappedRoot
	var problems []error
	for _, u := range uris {
		w, err := s.wrapLive(ctx, p.Kind, p.TenantID, u, key)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		roots = append(roots, w)
	}
	if len(problems) > 0 {
		return nil, joinProblems(problems)
	}
	return roots, nil
}
