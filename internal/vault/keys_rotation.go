package vault

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/storage"
)

// Rotation policy actions.
const (
	ActionRotate = "Rotate"
	ActionNotify = "Notify"
)

// Rotation policy limits, as Key Vault documents them: a rotation comes at
// least 7 days after the version's creation and at least 7 days before its
// expiry, and a policy's expiryTime is at least 28 days.
const (
	minRotationDays = 7
	minExpiryDays   = 28
)

// defaultNotify is the action Key Vault adds to a policy given without a
// Notify action, and the whole policy of a key that never had one.
var defaultNotify = LifetimeAction{TimeBeforeExpiry: "P30D", Type: ActionNotify}

// RotationPolicy is a key's rotation policy (AKV's KeyRotationPolicy; the
// surface renders its id from the vault and key name).
type RotationPolicy struct {
	LifetimeActions []LifetimeAction `json:"lifetimeActions"`
	// ExpiryTime is an ISO 8601 duration ("P90D"): versions made by a
	// rotation expire that long after their creation. Empty: no expiry.
	ExpiryTime string `json:"expiryTime,omitempty"`
	// Created and Updated are zero for the default policy of a key that
	// never had one set.
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// LifetimeAction is an action and its trigger: exactly one of
// TimeAfterCreate and TimeBeforeExpiry, an ISO 8601 duration.
type LifetimeAction struct {
	TimeAfterCreate  string `json:"timeAfterCreate,omitempty"`
	TimeBeforeExpiry string `json:"timeBeforeExpiry,omitempty"`
	// Type is Rotate or Notify (given in any case). Notify is stored and
	// returned; this service sends no notifications.
	Type string `json:"type"`
}

// isoDuration is an ISO 8601 duration: calendar years, months and days
// plus a clock part.
type isoDuration struct {
	years, months, days int
	clock               time.Duration
}

var isoRE = regexp.MustCompile(`^P(?:(\d{1,4})Y)?(?:(\d{1,5})M)?(?:(\d{1,5})W)?(?:(\d{1,6})D)?(?:T(?:(\d{1,7})H)?(?:(\d{1,9})M)?(?:(\d{1,10})S)?)?$`)

// parseDuration reads PnYnMnWnDTnHnMnS (whole numbers, any of the parts,
// at least one, case-insensitive).
func parseDuration(s string) (isoDuration, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	m := isoRE.FindStringSubmatch(u)
	if m == nil || u == "P" || strings.HasSuffix(u, "T") {
		return isoDuration{}, fmt.Errorf("'%s' is not an ISO 8601 duration such as P90D, P1Y or PT12H", s)
	}
	n := make([]int, len(m))
	for i := 1; i < len(m); i++ {
		if m[i] != "" {
			n[i], _ = strconv.Atoi(m[i])
		}
	}
	d := isoDuration{years: n[1], months: n[2], days: n[3]*7 + n[4],
		clock: time.Duration(n[5])*time.Hour + time.Duration(n[6])*time.Minute + time.Duration(n[7])*time.Second}
	if d == (isoDuration{}) {
		return isoDuration{}, fmt.Errorf("the duration '%s' is zero", s)
	}
	return d, nil
}

func (d isoDuration) addTo(t time.Time) time.Time {
	return t.AddDate(d.years, d.months, d.days).Add(d.clock)
}

func (d isoDuration) subFrom(t time.Time) time.Time {
	return t.AddDate(-d.years, -d.months, -d.days).Add(-d.clock)
}

// length is how long d is when it starts at ref.
func (d isoDuration) length(ref time.Time) time.Duration { return d.addTo(ref).Sub(ref) }

const day24 = 24 * time.Hour

// checkRotationPolicy validates p against Key Vault's rules and returns it
// canonical: durations uppercased, action types spelled Rotate and Notify,
// and the default Notify action added when only Rotate is given. ref is
// the time calendar durations are measured from.
func checkRotationPolicy(p RotationPolicy, ref time.Time) (RotationPolicy, error) {
	out := RotationPolicy{LifetimeActions: []LifetimeAction{}}
	var expiry *isoDuration
	if p.ExpiryTime != "" {
		d, err := parseDuration(p.ExpiryTime)
		if err != nil {
			return RotationPolicy{}, errBadParameter("The policy's expiryTime is not valid: %v.", err)
		}
		if d.length(ref) < minExpiryDays*day24 {
			return RotationPolicy{}, errBadParameter("The policy's expiryTime %s is too short: the minimum is P%dD.",
				p.ExpiryTime, minExpiryDays)
		}
		expiry = &d
		out.ExpiryTime = strings.ToUpper(strings.TrimSpace(p.ExpiryTime))
	}
	if len(p.LifetimeActions) > 2 {
		return RotationPolicy{}, errBadParameter("A rotation policy has at most two lifetime actions, one Rotate and "+
			"one Notify; %d were given.", len(p.LifetimeActions))
	}
	for i, a := range p.LifetimeActions {
		var typ string
		switch {
		case strings.EqualFold(a.Type, ActionRotate):
			typ = ActionRotate
		case strings.EqualFold(a.Type, ActionNotify):
			typ = ActionNotify
		default:
			return RotationPolicy{}, errBadParameter("Lifetime action %d: the action type '%s' is not valid; use Rotate "+
				"or Notify.", i, a.Type)
		}
		if slices.ContainsFunc(out.LifetimeActions, func(o LifetimeAction) bool { return o.Type == typ }) {
			return RotationPolicy{}, errBadParameter("The policy has two %s actions; give each action at most once.", typ)
		}
		if (a.TimeAfterCreate == "") == (a.TimeBeforeExpiry == "") {
			return RotationPolicy{}, errBadParameter("Lifetime action %d (%s) needs exactly one trigger: timeAfterCreate "+
				"or timeBeforeExpiry.", i, typ)
		}
		trig, given := a.TimeAfterCreate, "timeAfterCreate"
		if trig == "" {
			trig, given = a.TimeBeforeExpiry, "timeBeforeExpiry"
		}
		d, err := parseDuration(trig)
		if err != nil {
			return RotationPolicy{}, errBadParameter("Lifetime action %d (%s): %s is not valid: %v.", i, typ, given, err)
		}
		c := LifetimeAction{Type: typ}
		canon := strings.ToUpper(strings.TrimSpace(trig))
		if given == "timeAfterCreate" {
			c.TimeAfterCreate = canon
		} else {
			c.TimeBeforeExpiry = canon
		}
		if typ == ActionNotify {
			if given != "timeBeforeExpiry" {
				return RotationPolicy{}, errBadParameter("Lifetime action %d: a Notify action is triggered by "+
					"timeBeforeExpiry only.", i)
			}
			out.LifetimeActions = append(out.LifetimeActions, c)
			continue
		}
		// Rotate: at least 7 days after creation and 7 days before expiry.
		minGap := minRotationDays * day24
		if d.length(ref) < minGap {
			return RotationPolicy{}, errBadParameter("Lifetime action %d: %s %s is too short: a key can be rotated at "+
				"most every %d days (P%dD).", i, given, trig, minRotationDays, minRotationDays)
		}
		switch {
		case given == "timeBeforeExpiry" && expiry == nil:
			return RotationPolicy{}, errBadParameter("Lifetime action %d: rotating by timeBeforeExpiry needs the "+
				"policy's expiryTime, which gives rotated versions their expiry date.", i)
		case expiry != nil && expiry.length(ref)-d.length(ref) < minGap:
			return RotationPolicy{}, errBadParameter("Lifetime action %d: %s %s leaves less than %d days between a "+
				"version's rotation and the end of the policy's expiryTime %s.", i, given, trig, minRotationDays, out.ExpiryTime)
		}
		out.LifetimeActions = append(out.LifetimeActions, c)
	}
	hasRotate := slices.ContainsFunc(out.LifetimeActions, func(a LifetimeAction) bool { return a.Type == ActionRotate })
	hasNotify := slices.ContainsFunc(out.LifetimeActions, func(a LifetimeAction) bool { return a.Type == ActionNotify })
	if hasRotate && !hasNotify {
		out.LifetimeActions = append(out.LifetimeActions, defaultNotify)
	}
	return out, nil
}

// nextRotation is when policy p rotates a key whose latest version is m,
// or nil when it does not.
func nextRotation(p *RotationPolicy, m versionRecord) *time.Time {
	if p == nil {
		return nil
	}
	for _, a := range p.LifetimeActions {
		if a.Type != ActionRotate {
			continue
		}
		switch {
		case a.TimeAfterCreate != "":
			if d, err := parseDuration(a.TimeAfterCreate); err == nil {
				t := d.addTo(m.Created).UTC()
				return &t
			}
		case a.TimeBeforeExpiry != "" && m.Expires != nil:
			if d, err := parseDuration(a.TimeBeforeExpiry); err == nil {
				t := d.subFrom(*m.Expires).UTC()
				return &t
			}
		}
	}
	return nil
}

// scheduleRotation sets rec's next automatic rotation from its policy and
// latest version m, and keeps the due index in step. rec is saved by the
// caller.
func (s *Service) scheduleRotation(tx storage.Tx, v Vault, rec *keyRecord, m versionRecord) error {
	next := nextRotation(rec.Policy, m)
	if rec.NextRotation != nil && next != nil && rec.NextRotation.Equal(*next) {
		return nil
	}
	if err := dropRotation(tx, v, rec); err != nil {
		return err
	}
	if next == nil {
		return nil
	}
	if _, err := tx.Put(keyDueKey(*next, v, dueRotate, rec.Name), nil, storage.AnyVersion); err != nil {
		return err
	}
	rec.NextRotation = next
	return nil
}

// dropRotation removes rec's scheduled rotation.
func dropRotation(tx storage.Tx, v Vault, rec *keyRecord) error {
	if rec.NextRotation == nil {
		return nil
	}
	if err := tx.Delete(keyDueKey(*rec.NextRotation, v, dueRotate, rec.Name), storage.AnyVersion); err != nil {
		return err
	}
	rec.NextRotation = nil
	return nil
}

// liveKey reads the live key name of v and its latest version.
func liveKey(tx storage.Tx, v Vault, name string) (keyRecord, int64, versionRecord, error) {
	var rec keyRecord
	var meta versionRecord
	if !ValidKeyName(name) {
		return rec, 0, meta, errKeyNotFound(name)
	}
	ver, err := storage.GetJSON(tx, keyKey(v.UID, name), &rec)
	if isNotFound(err) {
		return rec, 0, meta, errKeyNotFound(name)
	} else if err != nil {
		return rec, 0, meta, err
	}
	if _, err := storage.GetJSON(tx, verKey(v.UID, name, rec.Latest), &meta); err != nil {
		return rec, 0, meta, fmt.Errorf("vault: latest version of %s: %w", name, err)
	}
	return rec, ver, meta, nil
}

// GetRotationPolicy returns the rotation policy of the live key name: the
// one set, or Key Vault's default (a Notify action 30 days before expiry,
// zero Created) when none was.
func (s *Service) GetRotationPolicy(ctx context.Context, vault, name string) (RotationPolicy, error) {
	v, _, err := s.keyVault(ctx, vault)
	if err != nil {
		return RotationPolicy{}, err
	}
	var rec keyRecord
	err = s.store.View(ctx, func(tx storage.Tx) error {
		var err error
		rec, _, _, err = liveKey(tx, v, name)
		return err
	})
	if err != nil {
		return RotationPolicy{}, err
	}
	if rec.Policy == nil {
		return RotationPolicy{LifetimeActions: []LifetimeAction{defaultNotify}}, nil
	}
	return clonePolicy(*rec.Policy), nil
}

func clonePolicy(p RotationPolicy) RotationPolicy {
	p.LifetimeActions = slices.Clone(p.LifetimeActions)
	return p
}

// SetRotationPolicy replaces the rotation policy of the live key name and
// returns it as stored (see checkRotationPolicy for the rules). A Rotate
// action schedules automatic rotations, which SweepKeys performs.
func (s *Service) SetRotationPolicy(ctx context.Context, c directory.Caller, vault, name string, p RotationPolicy) (RotationPolicy, error) {
	now := s.now().UTC().Truncate(time.Second)
	pol, err := checkRotationPolicy(p, now)
	if err != nil {
		return RotationPolicy{}, err
	}
	v, _, err := s.keyVaultFresh(ctx, vault)
	if err != nil {
		return RotationPolicy{}, err
	}
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		if err := sameVault(tx, v); err != nil {
			return err
		}
		rec, recVer, meta, err := liveKey(tx, v, name)
		if err != nil {
			return err
		}
		pol.Created, pol.Updated = now, now
		if rec.Policy != nil {
			pol.Created = rec.Policy.Created
		}
		stored := clonePolicy(pol)
		rec.Policy = &stored
		if err := s.scheduleRotation(tx, v, &rec, meta); err != nil {
			return err
		}
		if err := storage.PutJSON(tx, keyKey(v.UID, name), rec, recVer); err != nil {
			return err
		}
		return s.recordKey(ctx, tx, c, v, ref(v, rec.Name, rec.Latest), actKeySetPolicy, "")
	})
	if err != nil {
		return RotationPolicy{}, err
	}
	return pol, nil
}

// RotateKey makes a new version of the live key name with the latest
// version's type, size or curve, operations and tags; with a policy
// expiryTime the new version expires that long after its creation.
func (s *Service) RotateKey(ctx context.Context, c directory.Caller, vault, name string) (Key, error) {
	v, st, err := s.keyVaultFresh(ctx, vault)
	if err != nil {
		return Key{}, err
	}
	return s.rotate(ctx, c, v, st, name, addOptions{action: actKeyRotate, mustExist: true, rotation: true})
}

func (s *Service) rotate(ctx context.Context, c directory.Caller, v Vault, st cachedSub, name string, o addOptions) (Key, error) {
	var latest versionRecord
	err := s.store.View(ctx, func(tx storage.Tx) error {
		var err error
		_, _, latest, err = liveKey(tx, v, name)
		return err
	})
	if err != nil {
		return Key{}, err
	}
	meta := versionRecord{Type: latest.Type, Size: latest.Size, Curve: latest.Curve, Ops: slices.Clone(latest.Ops),
		Enabled: true, Tags: cloneTags(latest.Tags)}
	nv, err := s.newKey(ctx, meta) // an -HSM key rotates to a new HSM object
	if err != nil {
		return Key{}, err
	}
	return s.addVersion(ctx, c, v, st, name, nv, o)
}

// SweepKeys does the key work that is due: it purges soft-deleted keys
// whose scheduled purge date has passed (purge protection and subscription
// protection notwithstanding: they guard against an early purge, not the
// scheduled one) and performs the automatic rotations their policies call
// for. Both are audited as the system. A rotation waits while the vault is
// soft-deleted or its subscription is not usable. Then it destroys the HSM
// objects of purged -HSM versions that are still queued (those of vaults
// purged by Sweep, and any the HSM could not destroy at purge time). It
// returns how many purges and rotations it did; one failure does not stop
// the others.
func (s *Service) SweepKeys(ctx context.Context) (int, error) {
	now := s.now()
	var due []string
	err := s.store.View(ctx, func(tx storage.Tx) error {
		entries, err := tx.List(kKeyDue, "", 0)
		if err != nil {
			return err
		}
		for _, e := range entries {
			at, _, _, _, _, ok := parseKeyDue(e.Key)
			if ok && at.After(now) {
				break
			}
			due = append(due, e.Key)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	done := 0
	var errs []error
	for _, key := range due {
		ok, err := s.sweepKey(ctx, key)
		if err != nil {
			errs = append(errs, fmt.Errorf("vault: due key work %s: %w", key, err))
		}
		if ok {
			done++
		}
	}
	if _, err := s.collectHSM(ctx); err != nil {
		errs = append(errs, err)
	}
	return done, errors.Join(errs...)
}

// sweepKey does the work of one due entry and reports whether it did any.
func (s *Service) sweepKey(ctx context.Context, key string) (bool, error) {
	at, vaultName, uid, kind, name, ok := parseKeyDue(key)
	drop := func() (bool, error) {
		return false, s.store.Update(ctx, func(tx storage.Tx) error { return tx.Delete(key, storage.AnyVersion) })
	}
	if !ok || (kind != duePurge && kind != dueRotate) {
		return drop()
	}
	var v Vault
	err := s.store.View(ctx, func(tx storage.Tx) error {
		var err error
		v, _, err = load(tx, vaultName)
		return err
	})
	switch {
	case isNotFound(err) || (err == nil && v.UID != uid):
		return drop()
	case err != nil:
		return false, err
	}
	nk := nameKey{uid: uid, name: name}
	if kind == duePurge {
		purged := false
		err := s.store.Update(ctx, func(tx storage.Tx) error {
			purged = false
			var rec keyRecord
			_, err := storage.GetJSON(tx, delKeyKey(uid, name), &rec)
			switch {
			case isNotFound(err):
				return tx.Delete(key, storage.AnyVersion)
			case err != nil:
				return err
			case !rec.Deleted.ScheduledPurgeDate.Equal(at):
				return tx.Delete(key, storage.AnyVersion)
			}
			if err := s.purgeKeyTx(tx, v, rec); err != nil {
				return err
			}
			purged = true
			return s.recordKey(ctx, tx, directory.System, v, ref(v, rec.Name, rec.Latest), actKeyPurge,
				"the scheduled purge date was reached")
		})
		if purged && err == nil {
			s.forgetKey(ctx, nk, true)
		}
		return purged && err == nil, err
	}
	// A rotation.
	if v.IsDeleted() {
		return false, nil // waits for the vault's recovery (or goes with its purge)
	}
	stale := false
	err = s.store.View(ctx, func(tx storage.Tx) error {
		var rec keyRecord
		_, err := storage.GetJSON(tx, keyKey(uid, name), &rec)
		switch {
		case isNotFound(err):
			stale = true
			return nil
		case err != nil:
			return err
		}
		stale = rec.NextRotation == nil || !rec.NextRotation.Equal(at)
		return nil
	})
	if err != nil {
		return false, err
	}
	if stale {
		return drop()
	}
	st, err := s.loadSub(ctx, v.SubscriptionID)
	if err != nil {
		return false, err
	}
	if st.usable != nil {
		return false, nil // waits until the subscription accepts changes again
	}
	_, err = s.rotate(ctx, directory.System, s.out(v), st, name, addOptions{action: actKeyRotate, mustExist: true,
		rotation: true, due: &at, reason: "automatic rotation by the key's rotation policy"})
	switch {
	case errors.Is(err, errNotDue):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}
