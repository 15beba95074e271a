package dep

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/envelope"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/onboarding"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
)

// keyVersion is one version of a policy key, as stored: only wrapped
// copies, never the key.
type keyVersion struct {
	Version int `json:"version"`
	// Roots are the copies wrapped by the customer root keys, in the order
	// of the policy's key URIs when the version was made.
	Roots []WrappedRoot `json:"roots,omitempty"`
	// Available is the copy sealed under the policy's availability key: an
	// envelope blob, or AES-GCM of the HSM when the key is kept there.
	Available []byte `json:"available,omitempty"`
	// Operator is, for a service-managed default, the copy sealed under the
	// operator key.
	Operator  []byte    `json:"operator,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

func rootIDs(ws []WrappedRoot) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.KeyID
	}
	return out
}

// newPolicyKey returns a fresh AES-256 key.
func newPolicyKey() (secret.Bytes, error) { return envelope.NewKey() }

// keyURI is a parsed root key identifier.
type keyURI struct {
	raw, vault, name, version string
}

// checkURIs validates 2 to MaxKeyURIs root key identifiers, each in its
// own vault (rule V6); versioned says whether versions are allowed
// (SharePoint pins them; M365 and Exchange take versionless identifiers).
func checkURIs(uris []string, versioned bool) ([]string, error) {
	if len(uris) < 2 || len(uris) > MaxKeyURIs {
		return nil, errkind.Errorf(errkind.Invalid,
			"give %d to %d root key identifiers, each in a different key vault (got %d)", 2, MaxKeyURIs, len(uris))
	}
	out := make([]string, 0, len(uris))
	var vaults []string
	for _, u := range uris {
		k, err := parseKeyURI(u)
		if err != nil {
			return nil, err
		}
		if !versioned && k.version != "" {
			return nil, errkind.Errorf(errkind.Invalid,
				"the key identifier %s names a version; give it without the version (https://%s.…/keys/%s) so that Refresh can pick up new versions",
				k.raw, k.vault, k.name)
		}
		if slices.Contains(vaults, strings.ToLower(k.vault)) {
			return nil, errkind.Errorf(errkind.Invalid,
				"two root keys are in the vault %s; each root key must be in its own vault, in its own subscription (rule V6)", k.vault).
				WithCode("KeysInSameVault")
		}
		vaults = append(vaults, strings.ToLower(k.vault))
		out = append(out, k.raw)
	}
	return out, nil
}

func parseKeyURI(u string) (keyURI, error) {
	raw := strings.TrimRight(strings.TrimSpace(u), "/")
	v, n, ver, err := onboarding.ParseKeyIdentifier(raw)
	if err != nil {
		return keyURI{}, errkind.Wrap(errkind.Invalid, fmt.Sprintf(
			"%q is not a key identifier; copy the key's kid (https://{vault}.vault.{suffix}/keys/{name}[/{version}])", u), err)
	}
	return keyURI{raw: raw, vault: v, name: n, version: ver}, nil
}

// keyProblem turns a root key failure into the error a caller sees: a
// transient failure is Unavailable (try again), anything else is for the
// customer to fix.
func keyProblem(appName, uri string, err error) error {
	kind := errkind.FailedPrecondition
	if ClassOf(err) == Transient {
		kind = errkind.Unavailable
	}
	msg := err.Error()
	if ke, ok := errors.AsType[*KeyError](err); ok {
		msg = ke.Message
	}
	return errkind.Wrap(kind, fmt.Sprintf("%s cannot use the root key %s: %s", appName, uri, msg), err).WithCode("RootKeyUnusable")
}

// neverExpires is the one expiry date besides none a root key may carry
// (the legacy path's 9999-12-31).
func neverExpires(t *time.Time) bool {
	if t == nil {
		return true
	}
	u := t.UTC()
	return u.Year() == 9999 && u.Month() == time.December && u.Day() == 31
}

// checkKeyInfo applies the key rules V2, V3, V4 and V19 and the key
// operations a wrapping key needs.
func checkKeyInfo(uri string, info RootKeyInfo, now time.Time) error {
	var why []string
	if info.Kty != "RSA" && info.Kty != "RSA-HSM" {
		why = append(why, fmt.Sprintf("it is a %s key; Customer Key root keys are RSA (RSA-HSM in production) because the vault wraps only with RSA (rule V2)", info.Kty))
	} else if info.Size < minRSABits || info.Size > maxRSABits {
		why = append(why, fmt.Sprintf("it has %d bits; use an RSA key of %d to %d bits (rule V3)", info.Size, minRSABits, maxRSABits))
	}
	for _, op := range []string{"wrapKey", "unwrapKey"} {
		if !slices.Contains(info.Ops, op) {
			why = append(why, fmt.Sprintf("its key_ops lack %s; update the key with --ops wrapKey unwrapKey", op))
		}
	}
	if !info.Enabled {
		why = append(why, "it is disabled; enable it (customerkey key set-attributes --enable true) (rule V19)")
	}
	if info.NotBefore != nil && info.NotBefore.After(now) {
		why = append(why, fmt.Sprintf("it is not valid before %s (rule V19)", info.NotBefore.UTC().Format(time.RFC3339)))
	}
	switch {
	case info.Expires != nil && !info.Expires.After(now):
		why = append(why, fmt.Sprintf("it expired on %s; an expired root key makes the data unreadable (rule V19)", info.Expires.UTC().Format(time.RFC3339)))
	case !neverExpires(info.Expires):
		why = append(why, fmt.Sprintf("it expires on %s; Customer Key root keys must not expire (rule V4): create a key without an expiry date",
			info.Expires.UTC().Format("2006-01-02")))
	}
	if len(why) == 0 {
		return nil
	}
	return errkind.Errorf(errkind.FailedPrecondition, "the root key %s cannot protect a policy: %s", uri, strings.Join(why, "; ")).
		WithCode("RootKeyNotAccepted")
}

// wrapLive checks a root key's attributes, wraps key with it as the
// workload identity and unwraps the copy again, so that a policy never
// stores a copy its workload could not open.
func (s *Service) wrapLive(ctx context.Context, k Kind, tid, uri string, key secret.Bytes) (WrappedRoot, error) {
	app, appName := appOf(k)
	info, err := s.roots.Describe(ctx, app, tid, uri)
	if err != nil {
		return WrappedRoot{}, keyProblem(appName, uri, err)
	}
	if err := checkKeyInfo(uri, info, s.now()); err != nil {
		return WrappedRoot{}, err
	}
	w, err := s.roots.Wrap(ctx, app, tid, uri, key.Reveal())
	if err != nil {
		return WrappedRoot{}, keyProblem(appName, uri, err)
	}
	back, err := s.roots.Unwrap(ctx, app, tid, w)
	if err != nil {
		return WrappedRoot{}, keyProblem(appName, uri, err)
	}
	same := subtle.ConstantTimeCompare(back, key.Reveal()) == 1
	secret.Wipe(back)
	if !same {
		return WrappedRoot{}, errkind.Errorf(errkind.FailedPrecondition,
			"the root key %s unwrapped a different value than it wrapped; check the key vault", uri).WithCode("RootKeyUnusable")
	}
	return w, nil
}

// wrapVersion makes key version v of policy p: key wrapped live by every
// root key of uris and sealed under the availability key ak. Problems of
// all keys are reported together, so the customer can fix them at once.
func (s *Service) wrapVersion(ctx context.Context, p Policy, v int, uris []string, key secret.Bytes, ak availabilityKey) (keyVersion, error) {
	roots, err := s.wrapAll(ctx, p, uris, key)
	if err != nil {
		return keyVersion{}, err
	}
	kv := keyVersion{Version: v, Roots: roots, CreatedAt: s.now().UTC()}
	blob, err := s.sealAK(ctx, ak, p, v, key)
	if err != nil {
		return keyVersion{}, err
	}
	kv.Available = blob
	return kv, nil
}

// joinProblems keeps one error's kind and code for several: Unavailable
// when any is transient (trying again may be all it takes).
func joinProblems(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	// One code when every problem has the same one (both keys not revoked,
	// say); otherwise the general RootKeyUnusable.
	kind, msgs, code := errkind.FailedPrecondition, make([]string, len(errs)), ""
	for i, e := range errs {
		msgs[i] = errkind.Public(e)
		c := ""
		if ke, ok := errkind.As(e); ok {
			c = ke.Code
		}
		if i == 0 {
			code = c
		} else if c != code {
			code = ""
		}
		if errkind.Is(e, errkind.Unavailable) {
			kind = errkind.Unavailable
		} else if errkind.Is(e, errkind.Invalid) && kind == errkind.FailedPrecondition {
			kind = errkind.Invalid
		}
	}
	if code == "" {
		code = "RootKeyUnusable"
	}
	return errkind.Wrap(kind, strings.Join(msgs, "; "), errors.Join(errs...)).WithCode(code)
}

// The availability key's envelope names it "ak:{policy id}"; the additional
// data (of the envelope, or of the HSM's AES-GCM) binds the tenant, the
// policy and the key version it seals.
func akID(policyID string) string { return "ak:" + policyID }

func akAAD(tid, id string, v int) []byte {
	return []byte("dep-availability-key\x00" + tid + "\x00" + id + "\x00" + strconv.Itoa(v))
}

func operatorAAD(tid, id string, v int) []byte {
	return []byte("dep-operator-key\x00" + tid + "\x00" + id + "\x00" + strconv.Itoa(v))
}

// operatorKey returns the operator key, creating it on first use. It is
// kept in the (encrypting) store like every other key.
func (s *Service) operatorKey(ctx context.Context) (secret.Bytes, error) {
	key := kOperator + strconv.Itoa(operatorKeyV)
	var raw []byte
	err := s.store.View(ctx, func(tx storage.Tx) error {
		e, err := tx.Get(key)
		if err == nil {
			raw = append([]byte(nil), e.Value...)
		}
		return err
	})
	if err == nil {
		return secret.New(raw), nil
	}
	if !errkind.Is(err, errkind.NotFound) {
		return secret.Bytes{}, err
	}
	fresh, err := envelope.NewKey()
	if err != nil {
		return secret.Bytes{}, err
	}
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		e, err := tx.Get(key)
		switch {
		case err == nil: // another request created it first
			fresh.Wipe()
			fresh = secret.Copy(e.Value)
			return nil
		case !errkind.Is(err, errkind.NotFound):
			return err
		}
		_, err = tx.Put(key, fresh.Reveal(), storage.MustNotExist)
		return err
	})
	if err != nil {
		fresh.Wipe()
		return secret.Bytes{}, err
	}
	return fresh, nil
}

// unwrapOperator opens a service-managed version with the operator key.
func (s *Service) unwrapOperator(ctx context.Context, p Policy, kv keyVersion) (secret.Bytes, error) {
	op, err := s.operatorKey(ctx)
	if err != nil {
		return secret.Bytes{}, err
	}
	defer op.Wipe()
	key, err := envelope.Open(op, kv.Operator, operatorAAD(p.TenantID, p.ID, kv.Version))
	if err != nil {
		return secret.Bytes{}, errkind.Wrap(errkind.Internal, "dep: the operator copy of "+p.label()+" does not open", err)
	}
	return secret.New(key), nil
}
