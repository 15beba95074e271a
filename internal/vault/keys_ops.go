package vault

import (
	"context"
	"crypto"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/hsm"
	"github.com/customerkey/customerkey/internal/jwk"
	"github.com/customerkey/customerkey/internal/kcrypto"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
)

// Audit actions of key changes. Reads and crypto operations are audited by
// the REST surface.
const (
	actKeyCreate    = "keys/create"
	actKeyImport    = "keys/import"
	actKeyUpdate    = "keys/update"
	actKeyDelete    = "keys/delete"
	actKeyRecover   = "keys/recover"
	actKeyPurge     = "keys/purge"
	actKeyRestore   = "keys/restore"
	actKeyRotate    = "keys/rotate"
	actKeySetPolicy = "keys/setRotationPolicy"
)

// The vault side of key operations.

// usableErr is the error of a subscription that does not accept changes.
func usableErr(sub string, usable error) error {
	if usable == nil {
		return nil
	}
	if _, ok := errkind.As(usable); ok {
		return usable
	}
	return errkind.Wrap(errkind.FailedPrecondition,
		fmt.Sprintf("The subscription '%s' does not accept changes in its current state.", sub), usable).
		WithCode("ReadOnlyDisabledSubscription")
}

// loadSub asks the subscription's state and caches it.
func (s *Service) loadSub(ctx context.Context, sub string) (cachedSub, error) {
	_, usable, err := s.subs.Subscription(ctx, sub)
	if err != nil {
		return cachedSub{}, err
	}
	protected, err := s.subs.Protected(ctx, sub)
	if err != nil {
		return cachedSub{}, err
	}
	st := cachedSub{usable: usableErr(sub, usable), protected: protected, at: s.now()}
	s.keys.putSub(sub, st)
	return st, nil
}

// keyVault returns the live vault called name and its subscription's
// state, from the cache when it is fresh. Every key operation starts here:
// a vault whose subscription is not usable refuses them all.
func (s *Service) keyVault(ctx context.Context, name string) (Vault, cachedSub, error) {
	now := s.now()
	v, ok := s.keys.vault(name, now)
	if !ok {
		gen := s.keys.generation()
		var err error
		if v, err = s.ByName(ctx, name); err != nil {
			return Vault{}, cachedSub{}, err
		}
		s.keys.putVault(gen, v, now)
	}
	st, ok := s.keys.sub(v.SubscriptionID, now)
	if !ok {
		var err error
		if st, err = s.loadSub(ctx, v.SubscriptionID); err != nil {
			return Vault{}, cachedSub{}, err
		}
	}
	if st.usable != nil {
		return Vault{}, cachedSub{}, st.usable
	}
	return v, st, nil
}

// keyVaultFresh is keyVault reading the store and the subscription, for
// changes: they must not act on a stale view.
func (s *Service) keyVaultFresh(ctx context.Context, name string) (Vault, cachedSub, error) {
	gen := s.keys.generation()
	v, err := s.ByName(ctx, name)
	if err != nil {
		return Vault{}, cachedSub{}, err
	}
	s.keys.putVault(gen, v, s.now())
	st, err := s.loadSub(ctx, v.SubscriptionID)
	if err != nil {
		return Vault{}, cachedSub{}, err
	}
	if st.usable != nil {
		return Vault{}, cachedSub{}, st.usable
	}
	return v, st, nil
}

// sameVault checks, inside a transaction, that v is still the live vault
// of its name.
func sameVault(tx storage.Tx, v Vault) error {
	cur, _, err := load(tx, v.Name)
	switch {
	case isNotFound(err) || (err == nil && (cur.IsDeleted() || cur.UID != v.UID)):
		return errkind.Errorf(errkind.NotFound, "No vault named '%s' was found.", v.Name).WithCode("VaultNotFound")
	case err != nil:
		return err
	}
	return nil
}

// ref is the reference of version ver of key name in v.
func ref(v Vault, name, ver string) KeyRef {
	return KeyRef{Vault: fold(v.Name), Name: name, Version: fold(ver)}
}

func attributes(m versionRecord, level string, days int) KeyAttributes {
	return KeyAttributes{Enabled: m.Enabled, NotBefore: cloneTime(m.NotBefore), Expires: cloneTime(m.Expires),
		Created: m.Created, Updated: m.Updated, Exportable: m.Exportable, RecoveryLevel: level, RecoverableDays: days,
		HSMPlatform: m.hsmPlatform()}
}

func properties(v Vault, st cachedSub, name string, m versionRecord) KeyProperties {
	level, days := RecoveryLevel(v, st.protected)
	return KeyProperties{Ref: ref(v, name, m.Version), Type: m.Type, Attributes: attributes(m, level, days),
		Tags: cloneTags(m.Tags)}
}

// bundle is the KeyBundle of version m of key name.
func bundle(v Vault, st cachedSub, name string, m versionRecord) Key {
	k := Key{KeyProperties: properties(v, st, name, m), JWK: m.Public.Strip()}
	k.JWK.KID = ""
	k.JWK.Kty = m.Type
	k.JWK.KeyOps = append([]string{}, m.Ops...)
	return k
}

func deletion(d *keyDeleted) *KeyDeletion {
	if d == nil {
		return nil
	}
	return &KeyDeletion{DeletedDate: d.DeletedDate, ScheduledPurgeDate: d.ScheduledPurgeDate}
}

// recordKey writes an audit event about key ref in tx under v's tenant.
func (s *Service) recordKey(ctx context.Context, tx storage.Tx, c directory.Caller, v Vault, r KeyRef, action, reason string) error {
	if s.audit == nil {
		return nil
	}
	return s.audit.RecordTx(ctx, tx, audit.Event{TenantID: v.TenantID, Actor: actor(c, v.TenantID), Action: action,
		Target: r.String(), Result: audit.Success, Reason: reason})
}

// recordKeyRefused records a refused destructive request in its own
// transaction.
func (s *Service) recordKeyRefused(ctx context.Context, c directory.Caller, v Vault, r KeyRef, action string, why error) {
	if s.audit == nil {
		return
	}
	_ = s.audit.Record(ctx, audit.Event{TenantID: v.TenantID, Actor: actor(c, v.TenantID), Action: action,
		Target: r.String(), Result: audit.Failure, Reason: errkind.Public(why)})
}

func (s *Service) newVersionID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fmt.Errorf("vault: reading random: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// The hot path.

// version returns version (or, when empty, the latest version) of the live
// key name in v, from the cache when it is fresh and otherwise with one
// read transaction. The entry is held: release it when done.
func (s *Service) version(ctx context.Context, v Vault, name, version string) (*cachedVersion, versionRecord, error) {
	if !ValidKeyName(name) {
		return nil, versionRecord{}, errKeyNotFound(name)
	}
	if version != "" && !validVersion(version) {
		return nil, versionRecord{}, errKeyVersionNotFound(name, version)
	}
	nk := nameKey{uid: v.UID, name: fold(name)}
	now := s.now()
	ver, latestFresh := fold(version), true
	if version == "" {
		ver, latestFresh = s.keys.latestVersion(nk, now)
	}
	var held *cachedVersion
	if ver != "" {
		e, meta, fresh := s.keys.acquire(verCacheKey{nk, ver}, now)
		if e != nil && fresh && latestFresh {
			return e, meta, nil
		}
		held = e // revalidated below, keeping its parsed key if still the one wanted
	}
	gen := s.keys.generation()
	var rec keyRecord
	var meta versionRecord
	var mat []byte
	needMat, gone := false, false
	err := s.store.View(ctx, func(tx storage.Tx) error {
		mat, needMat, gone = nil, false, false
		if _, err := storage.GetJSON(tx, keyKey(v.UID, name), &rec); err != nil {
			if isNotFound(err) {
				gone = true
				return errKeyNotFound(name)
			}
			return err
		}
		want := fold(version)
		if want == "" {
			want = fold(rec.Latest)
		}
		if _, err := storage.GetJSON(tx, verKey(v.UID, name, want), &meta); err != nil {
			if isNotFound(err) {
				return errKeyVersionNotFound(name, version)
			}
			return err
		}
		if held != nil && held.key.version == want {
			return nil
		}
		needMat = true
		if meta.HSM != nil {
			return nil // the private key is in the HSM; the record names it
		}
		e, err := tx.Get(matKey(v.UID, name, want))
		if err != nil {
			return fmt.Errorf("vault: the private key of %s/%s: %w", name, want, err)
		}
		mat = append([]byte(nil), e.Value...)
		return nil
	})
	if err != nil {
		s.keys.release(held)
		if gone { // deleted through another node: forget its private keys
			s.keys.evictKey(nk)
		}
		return nil, versionRecord{}, err
	}
	isLatest := fold(meta.Version) == fold(rec.Latest)
	if !needMat {
		s.keys.refresh(gen, held, meta, isLatest, now)
		return held, meta, nil
	}
	s.keys.release(held)
	var signer privateKey
	if meta.HSM != nil {
		signer, err = hsmKeyOf(meta)
	} else {
		signer, err = kcrypto.ParsePrivate(mat)
		secret.Wipe(mat)
	}
	if err != nil {
		return nil, versionRecord{}, fmt.Errorf("vault: parsing the private key of %s/%s: %w", name, meta.Version, err)
	}
	e := s.keys.put(gen, verCacheKey{nk, fold(meta.Version)}, meta, signer, isLatest, now)
	return e, meta, nil
}

// GetKey returns version of the live key name in vault, or its latest
// version when version is empty, without key material. It reads the store
// only when its cache is stale (Options.KeyCacheTTL).
func (s *Service) GetKey(ctx context.Context, vault, name, version string) (Key, error) {
	v, st, err := s.keyVault(ctx, vault)
	if err != nil {
		return Key{}, err
	}
	e, meta, err := s.version(ctx, v, name, version)
	if err != nil {
		return Key{}, err
	}
	s.keys.release(e)
	return bundle(v, st, meta.Name, meta), nil
}

// Creating versions.

// generate makes a new private key.
func (s *Service) generate(kty string, size int, crv string) (crypto.Signer, error) {
	switch kty {
	case KeyTypeRSA:
		k, err := kcrypto.GenerateRSA(s.rand, size)
		if err != nil {
			return nil, err
		}
		return k, nil
	case KeyTypeEC:
		return kcrypto.GenerateEC(s.rand, crv)
	}
	return nil, errBadParameter("The key type '%s' is not valid; use RSA or EC.", kty)
}

// newVersion is a version about to be added, with its private key: a
// software key in signer, or the HSM object made for it in hsm.
type newVersion struct {
	meta   versionRecord
	signer crypto.Signer
	hsm    *hsm.Key
}

// prepare validates the attributes common to create and import and fills
// meta; kty, size, crv and ops are set by the caller.
func prepare(meta *versionRecord, enabled *bool, nbf, exp *time.Time, exportable bool, tags map[string]string) error {
	var err error
	if exportable {
		return errExportable()
	}
	if meta.NotBefore, err = keyTime("nbf", nbf); err != nil {
		return err
	}
	if meta.Expires, err = keyTime("exp", exp); err != nil {
		return err
	}
	if err := checkWindow(meta.NotBefore, meta.Expires); err != nil {
		return err
	}
	if meta.Tags, err = checkKeyTags(tags); err != nil {
		return err
	}
	meta.Enabled = enabled == nil || *enabled
	return nil
}

// CreateKey creates key name in vault, or a new version of it when it
// exists (the new version becomes the latest). Types: RSA (2048, 3072 or
// 4096 bits) and EC (P-256, P-384, P-521, P-256K), and the same as RSA-HSM
// and EC-HSM, generated inside the HSM, in premium vaults (BadParameter on
// a standard vault; FailedPrecondition "HSMNotConfigured" when the service
// has no HSM, Unavailable "HSMUnavailable" when it failed to start). An
// RSA-HSM key with key_ops ["import"] is a key exchange key for Bring Your
// Own Key. The version is stored only once its HSM object exists, and the
// object is destroyed if storing fails. A soft-deleted name is Conflict
// "ObjectIsDeletedButRecoverable".
func (s *Service) CreateKey(ctx context.Context, c directory.Caller, vault, name string, spec KeySpec) (Key, error) {
	if err := checkKeyName(name); err != nil {
		return Key{}, err
	}
	kty, hsm, err := canonType(spec.Type)
	if err != nil {
		return Key{}, err
	}
	v, st, err := s.keyVaultFresh(ctx, vault)
	if err != nil {
		return Key{}, err
	}
	meta := versionRecord{Type: kty}
	if hsm {
		meta.Type = kty + "-HSM"
	}
	switch kty {
	case KeyTypeRSA:
		if spec.Curve != "" {
			return Key{}, errBadParameter("An RSA key has no curve; leave crv out.")
		}
		meta.Size = spec.Size
		if meta.Size == 0 {
			meta.Size = 2048
		}
		if err := checkRSASize(meta.Size); err != nil {
			return Key{}, err
		}
		if spec.PublicExponent != 0 && spec.PublicExponent != 65537 {
			return Key{}, errBadParameter("The public exponent %d is not supported; only 65537 is.", spec.PublicExponent)
		}
	case KeyTypeEC:
		if spec.Size != 0 || spec.PublicExponent != 0 {
			return Key{}, errBadParameter("An EC key has a curve, not a key size or public exponent; give crv instead.")
		}
		meta.Curve = "P-256"
		if spec.Curve != "" {
			if meta.Curve, err = canonCurve(spec.Curve); err != nil {
				return Key{}, err
			}
		}
	}
	if meta.Ops, err = checkOps(meta.Type, spec.Ops); err != nil {
		return Key{}, err
	}
	if err := prepare(&meta, spec.Enabled, spec.NotBefore, spec.Expires, spec.Exportable, spec.Tags); err != nil {
		return Key{}, err
	}
	if hsm {
		if err := s.checkHSM(v, meta.Type); err != nil {
			return Key{}, err
		}
	}
	nv, err := s.newKey(ctx, meta)
	if err != nil {
		return Key{}, err
	}
	return s.addVersion(ctx, c, v, st, name, nv, addOptions{action: actKeyCreate})
}

// newKey makes the private key of the new version meta: in the HSM for an
// -HSM type, in software otherwise.
func (s *Service) newKey(ctx context.Context, meta versionRecord) (newVersion, error) {
	if meta.Type != baseType(meta.Type) {
		k, err := s.generateHSM(ctx, meta)
		return newVersion{meta: meta, hsm: k}, err
	}
	signer, err := s.generate(meta.Type, meta.Size, meta.Curve)
	return newVersion{meta: meta, signer: signer}, err
}

// ImportKey stores the private key in.Key as a new version of key name in
// vault (creating the key when needed). RSA keys must be 2048, 3072 or 4096
// bits; EC keys on P-256, P-384, P-521 or P-256K. The key's key_ops are
// kept (checked against its type); none given means the type's defaults.
// An HSM key (a -HSM kty or in.HSM) is copied into the HSM, which keeps it
// from then on, with the rules of CreateKey. With a key transfer blob in
// in.Key.T (key_hsm, Bring Your Own Key) the target key is unwrapped inside
// the HSM with the vault's key exchange key the blob names, and is never in
// the clear on the way. The caller still owns in.Key and should Wipe it.
func (s *Service) ImportKey(ctx context.Context, c directory.Caller, vault, name string, in KeyImport) (Key, error) {
	if err := checkKeyName(name); err != nil {
		return Key{}, err
	}
	kty, hsm, err := canonType(in.Key.Kty)
	if err != nil {
		return Key{}, err
	}
	v, st, err := s.keyVaultFresh(ctx, vault)
	if err != nil {
		return Key{}, err
	}
	if len(in.Key.T) > 0 {
		return s.importTransfer(ctx, c, v, st, name, kty, in)
	}
	hsm = hsm || in.HSM
	if hsm {
		if err := s.checkHSM(v, kty+"-HSM"); err != nil {
			return Key{}, err
		}
	}
	if !in.Key.HasPrivate() {
		return Key{}, errBadParameter("The key to import has no private part: import needs the private key (d and the " +
			"other private members).")
	}
	priv := in.Key
	priv.Kty = kty
	signer, err := priv.PrivateKey()
	if err != nil {
		return Key{}, errkind.Wrap(errkind.Invalid, "The key to import is not valid: "+errkind.Public(err), err).
			WithCode("BadParameter")
	}
	meta := versionRecord{Type: kty, Imported: true}
	pub, err := jwk.FromPublic("", signer.Public(), nil)
	if err != nil {
		wipeSigner(signer)
		return Key{}, err
	}
	switch kty {
	case KeyTypeRSA:
		rk, _ := signer.(*rsa.PrivateKey)
		if rk == nil {
			wipeSigner(signer)
			return Key{}, errBadParameter("The key to import is not an RSA key.")
		}
		meta.Size = rk.N.BitLen()
		if err := checkRSASize(meta.Size); err != nil {
			wipeSigner(signer)
			return Key{}, err
		}
	case KeyTypeEC:
		if meta.Curve, err = canonCurve(pub.Crv); err != nil {
			wipeSigner(signer)
			return Key{}, err
		}
	}
	ops := in.Key.KeyOps
	if len(ops) == 0 {
		ops = nil
	}
	if meta.Ops, err = checkOps(kty, ops); err != nil {
		wipeSigner(signer)
		return Key{}, err
	}
	if err := prepare(&meta, in.Enabled, in.NotBefore, in.Expires, in.Exportable, in.Tags); err != nil {
		wipeSigner(signer)
		return Key{}, err
	}
	if !hsm {
		return s.addVersion(ctx, c, v, st, name, newVersion{meta: meta, signer: signer}, addOptions{action: actKeyImport})
	}
	defer wipeSigner(signer) // the HSM keeps its own copy
	meta.Type = kty + "-HSM"
	if isKEK(meta.Ops) {
		return Key{}, errBadParameter("A key exchange key must be created in the vault, not imported.")
	}
	k, err := s.hsm.ImportKey(ctx, signer, usageOf(meta.Ops))
	if err != nil {
		return Key{}, err
	}
	return s.addVersion(ctx, c, v, st, name, newVersion{meta: meta, hsm: &k}, addOptions{action: actKeyImport})
}

// addOptions say how addVersion adds a version.
type addOptions struct {
	action, reason string
	mustExist      bool       // refuse (KeyNotFound) instead of creating the key
	rotation       bool       // a rotation: the policy's expiryTime sets exp
	due            *time.Time // an automatic rotation: only if still due at this time
}

// errNotDue stops an automatic rotation that another node did first.
var errNotDue = errors.New("vault: the rotation is no longer due")

// addVersion stores nv as the new latest version of key name: created when
// missing unless o.mustExist. It takes ownership of nv.signer, which ends up
// in the cache (or wiped), and of nv.hsm, the HSM object of an -HSM
// version, which is destroyed when the version cannot be stored: a key is
// visible only once its HSM object exists, and no object outlives a
// failed create.
func (s *Service) addVersion(ctx context.Context, c directory.Caller, v Vault, st cachedSub, name string, nv newVersion,
	o addOptions) (Key, error) {
	var priv privateKey = nv.signer
	var mat secret.Bytes
	if nv.hsm != nil {
		priv = &hsmKey{id: nv.hsm.ID, pub: nv.hsm.Public}
		nv.meta.HSM = &hsmRef{ID: nv.hsm.ID}
	}
	stored := false
	defer func() {
		switch {
		case stored:
		case nv.hsm != nil:
			s.discardHSM(ctx, nv.hsm.ID)
		default:
			wipeSigner(priv)
		}
	}()
	if nv.hsm == nil {
		var err error
		if mat, err = kcrypto.MarshalPrivate(nv.signer); err != nil {
			return Key{}, err
		}
		defer mat.Wipe()
	}
	pub, err := jwk.FromPublic("", priv.Public(), nil)
	if err != nil {
		return Key{}, err
	}
	id, err := s.newVersionID()
	if err != nil {
		return Key{}, err
	}
	var meta versionRecord
	var rec keyRecord
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		if err := sameVault(tx, v); err != nil {
			return err
		}
		now := s.now().UTC().Truncate(time.Second)
		meta = nv.meta
		meta.Version, meta.Public, meta.CreatedBy = id, pub, actor(c, v.TenantID)
		meta.Created, meta.Updated = now, now
		rec = keyRecord{}
		recVer, err := storage.GetJSON(tx, keyKey(v.UID, name), &rec)
		switch {
		case isNotFound(err):
			if o.mustExist {
				return errKeyNotFound(name)
			}
			if _, err := tx.Get(delKeyKey(v.UID, name)); err == nil {
				return errKeyIsDeleted(name)
			} else if !isNotFound(err) {
				return err
			}
			rec = keyRecord{Name: name, Created: now}
			recVer = storage.MustNotExist
		case err != nil:
			return err
		}
		if o.due != nil && (rec.NextRotation == nil || !rec.NextRotation.Equal(*o.due)) {
			return errNotDue
		}
		meta.Name = rec.Name
		if o.rotation && rec.Policy != nil && rec.Policy.ExpiryTime != "" {
			if d, err := parseDuration(rec.Policy.ExpiryTime); err == nil {
				exp := d.addTo(now)
				meta.Expires = &exp
			}
		}
		rec.Latest = meta.Version
		if err := storage.PutJSON(tx, verKey(v.UID, name, meta.Version), meta, storage.MustNotExist); err != nil {
			return err
		}
		if nv.hsm == nil {
			if _, err := tx.Put(matKey(v.UID, name, meta.Version), mat.Reveal(), storage.MustNotExist); err != nil {
				return err
			}
		}
		if err := s.scheduleRotation(tx, v, &rec, meta); err != nil {
			return err
		}
		if err := storage.PutJSON(tx, keyKey(v.UID, name), rec, recVer); err != nil {
			return err
		}
		return s.recordKey(ctx, tx, c, v, ref(v, rec.Name, meta.Version), o.action, o.reason)
	})
	if err != nil {
		return Key{}, err
	}
	stored = true
	nk := nameKey{uid: v.UID, name: fold(name)}
	gen := s.forgetKey(ctx, nk, false)
	// Warm the cache with the new version: the seed's next step uses it.
	e := s.keys.put(gen, verCacheKey{nk, fold(meta.Version)}, meta, priv, true, s.now())
	s.keys.release(e)
	return bundle(v, st, rec.Name, meta), nil
}

// Reading and listing.

func pageSize(max int) int {
	if max <= 0 || max > MaxKeyPage {
		return MaxKeyPage
	}
	return max
}

var errBadCursor = errBadParameter("The page token is not valid; start the listing again without one.")

// ListKeys returns a page of the live keys of vault, by name, after the
// cursor after ("" for the first page), at most max (1 to 25; other values
// mean 25). Items carry no version in Ref and no key material; their
// attributes and tags are the latest version's.
func (s *Service) ListKeys(ctx context.Context, vault, after string, max int) (KeyPage, error) {
	return s.listKeys(ctx, vault, after, max, false)
}

// ListDeletedKeys returns a page of the soft-deleted keys of vault, like
// ListKeys; every item has Deleted set.
func (s *Service) ListDeletedKeys(ctx context.Context, vault, after string, max int) (KeyPage, error) {
	return s.listKeys(ctx, vault, after, max, true)
}

func (s *Service) listKeys(ctx context.Context, vault, after string, max int, deleted bool) (KeyPage, error) {
	if after != "" && !ValidKeyName(after) {
		return KeyPage{}, errBadCursor
	}
	v, st, err := s.keyVault(ctx, vault)
	if err != nil {
		return KeyPage{}, err
	}
	n := pageSize(max)
	prefix := dataPrefix(v.UID) + "key/"
	if deleted {
		prefix = dataPrefix(v.UID) + "deleted/"
	}
	from := ""
	if after != "" {
		from = prefix + fold(after)
	}
	var page KeyPage
	err = s.store.View(ctx, func(tx storage.Tx) error {
		page = KeyPage{}
		entries, err := tx.List(prefix, from, n+1)
		if err != nil {
			return err
		}
		for i, e := range entries {
			if i == n {
				page.Next = fold(page.Items[n-1].Ref.Name)
				break
			}
			var rec keyRecord
			if _, err := storage.GetJSON(tx, e.Key, &rec); err != nil {
				return err
			}
			var meta versionRecord
			if _, err := storage.GetJSON(tx, verKey(v.UID, rec.Name, rec.Latest), &meta); err != nil {
				return fmt.Errorf("vault: latest version of %s: %w", e.Key, err)
			}
			p := properties(v, st, rec.Name, meta)
			p.Ref.Version = ""
			p.Deleted = deletion(rec.Deleted)
			page.Items = append(page.Items, p)
		}
		return nil
	})
	return page, err
}

// ListKeyVersions returns a page of the versions of the live key name, in
// version-id order, after the version after ("" for the first page). Items
// carry the version in Ref and no key material.
func (s *Service) ListKeyVersions(ctx context.Context, vault, name, after string, max int) (KeyPage, error) {
	if after != "" && !validVersion(after) {
		return KeyPage{}, errBadCursor
	}
	v, st, err := s.keyVault(ctx, vault)
	if err != nil {
		return KeyPage{}, err
	}
	if !ValidKeyName(name) {
		return KeyPage{}, errKeyNotFound(name)
	}
	n := pageSize(max)
	prefix := verPrefix(v.UID, name)
	from := ""
	if after != "" {
		from = prefix + fold(after)
	}
	var page KeyPage
	err = s.store.View(ctx, func(tx storage.Tx) error {
		page = KeyPage{}
		var rec keyRecord
		if _, err := storage.GetJSON(tx, keyKey(v.UID, name), &rec); err != nil {
			if isNotFound(err) {
				return errKeyNotFound(name)
			}
			return err
		}
		entries, err := tx.List(prefix, from, n+1)
		if err != nil {
			return err
		}
		for i, e := range entries {
			if i == n {
				page.Next = page.Items[n-1].Ref.Version
				break
			}
			var meta versionRecord
			if _, err := storage.GetJSON(tx, e.Key, &meta); err != nil {
				return err
			}
			page.Items = append(page.Items, properties(v, st, rec.Name, meta))
		}
		return nil
	})
	return page, err
}

// Updating.

// UpdateKey changes the attributes, operations or tags of version of the
// live key name (the latest when version is empty). An expiry date once set
// can be changed, for example to 9999-12-31, but never removed.
func (s *Service) UpdateKey(ctx context.Context, c directory.Caller, vault, name, version string, u KeyUpdate) (Key, error) {
	if u.Expires != nil && u.Expires.IsZero() {
		return Key{}, errBadParameter("An expiration date, once set, can't be removed, only changed: give a date " +
			"(for example 9999-12-31T00:00:00Z for a key that must keep working).")
	}
	nbf, err := keyTime("nbf", u.NotBefore)
	if err != nil {
		return Key{}, err
	}
	exp, err := keyTime("exp", u.Expires)
	if err != nil {
		return Key{}, err
	}
	var tags map[string]string
	if u.Tags != nil {
		if tags, err = checkKeyTags(u.Tags); err != nil {
			return Key{}, err
		}
	}
	v, st, err := s.keyVaultFresh(ctx, vault)
	if err != nil {
		return Key{}, err
	}
	if !ValidKeyName(name) {
		return Key{}, errKeyNotFound(name)
	}
	if version != "" && !validVersion(version) {
		return Key{}, errKeyVersionNotFound(name, version)
	}
	var rec keyRecord
	var meta versionRecord
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		if err := sameVault(tx, v); err != nil {
			return err
		}
		rec, meta = keyRecord{}, versionRecord{}
		recVer, err := storage.GetJSON(tx, keyKey(v.UID, name), &rec)
		if isNotFound(err) {
			return errKeyNotFound(name)
		} else if err != nil {
			return err
		}
		ver := version
		if ver == "" {
			ver = rec.Latest
		}
		metaVer, err := storage.GetJSON(tx, verKey(v.UID, name, ver), &meta)
		if isNotFound(err) {
			return errKeyVersionNotFound(name, version)
		} else if err != nil {
			return err
		}
		if u.Ops != nil {
			was := isKEK(meta.Ops)
			if meta.Ops, err = checkOps(meta.Type, u.Ops); err != nil {
				return err
			}
			if was != isKEK(meta.Ops) {
				return errBadParameter("The key operation 'import' can neither be added to nor removed from a key: " +
					"the HSM fixed at creation whether the key is a key exchange key. Create a new key instead.")
			}
		}
		if u.Enabled != nil {
			meta.Enabled = *u.Enabled
		}
		if nbf != nil {
			meta.NotBefore = nbf
		}
		expChanged := exp != nil && (meta.Expires == nil || !meta.Expires.Equal(*exp))
		if exp != nil {
			meta.Expires = exp
		}
		if err := checkWindow(meta.NotBefore, meta.Expires); err != nil {
			return err
		}
		if u.Tags != nil {
			meta.Tags = tags
		}
		meta.Updated = s.now().UTC().Truncate(time.Second)
		if err := storage.PutJSON(tx, verKey(v.UID, name, meta.Version), meta, metaVer); err != nil {
			return err
		}
		if expChanged && fold(meta.Version) == fold(rec.Latest) {
			if err := s.scheduleRotation(tx, v, &rec, meta); err != nil {
				return err
			}
			if err := storage.PutJSON(tx, keyKey(v.UID, name), rec, recVer); err != nil {
				return err
			}
		}
		return s.recordKey(ctx, tx, c, v, ref(v, rec.Name, meta.Version), actKeyUpdate, "")
	})
	if err != nil {
		return Key{}, err
	}
	s.forgetKey(ctx, nameKey{uid: v.UID, name: fold(name)}, false)
	return bundle(v, st, rec.Name, meta), nil
}

// Deleting, recovering, purging.

// DeleteKey deletes the live key name with all its versions. With soft
// delete (every vault since 2025) the key stays recoverable until
// deletion plus the vault's retention days, when SweepKeys purges it; a
// vault without soft delete purges it at once. It returns the latest
// version with Deleted set.
func (s *Service) DeleteKey(ctx context.Context, c directory.Caller, vault, name string) (Key, error) {
	v, st, err := s.keyVaultFresh(ctx, vault)
	if err != nil {
		return Key{}, err
	}
	if !ValidKeyName(name) {
		return Key{}, errKeyNotFound(name)
	}
	var rec keyRecord
	var meta versionRecord
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		if err := sameVault(tx, v); err != nil {
			return err
		}
		rec, meta = keyRecord{}, versionRecord{}
		recVer, err := storage.GetJSON(tx, keyKey(v.UID, name), &rec)
		if isNotFound(err) {
			return errKeyNotFound(name)
		} else if err != nil {
			return err
		}
		if _, err := storage.GetJSON(tx, verKey(v.UID, name, rec.Latest), &meta); err != nil {
			return err
		}
		now := s.now().UTC().Truncate(time.Second)
		if !v.EnableSoftDelete {
			rec.Deleted = &keyDeleted{DeletedDate: now, DeletedBy: actor(c, v.TenantID)}
			if err := s.purgeKeyTx(tx, v, rec); err != nil {
				return err
			}
			return s.recordKey(ctx, tx, c, v, ref(v, rec.Name, rec.Latest), actKeyPurge,
				"soft delete is off: deleting purges at once")
		}
		if err := dropRotation(tx, v, &rec); err != nil {
			return err
		}
		days := v.SoftDeleteRetentionInDays
		if days <= 0 {
			days = DefaultRetentionDays
		}
		rec.Deleted = &keyDeleted{DeletedDate: now, ScheduledPurgeDate: now.Add(time.Duration(days) * 24 * time.Hour),
			DeletedBy: actor(c, v.TenantID)}
		if err := tx.Delete(keyKey(v.UID, name), recVer); err != nil {
			return err
		}
		if err := storage.PutJSON(tx, delKeyKey(v.UID, name), rec, storage.MustNotExist); err != nil {
			return err
		}
		if _, err := tx.Put(keyDueKey(rec.Deleted.ScheduledPurgeDate, v, duePurge, name), nil, storage.AnyVersion); err != nil {
			return err
		}
		return s.recordKey(ctx, tx, c, v, ref(v, rec.Name, rec.Latest), actKeyDelete, "")
	})
	if err != nil {
		return Key{}, err
	}
	s.forgetKey(ctx, nameKey{uid: v.UID, name: fold(name)}, !v.EnableSoftDelete)
	if !v.EnableSoftDelete {
		_, _ = s.collectHSM(ctx) // purged at once; leftovers go on the next SweepKeys
	}
	k := bundle(v, st, rec.Name, meta)
	k.Deleted = deletion(rec.Deleted)
	return k, nil
}

// purgeKeyTx removes every trace of key rec (live or deleted) from v.
func (s *Service) purgeKeyTx(tx storage.Tx, v Vault, rec keyRecord) error {
	for _, prefix := range []string{verPrefix(v.UID, rec.Name), matPrefix(v.UID, rec.Name)} {
		entries, err := tx.List(prefix, "", 0)
		if err != nil {
			return err
		}
		if err := queueHSMTx(tx, entries, verPrefix(v.UID, rec.Name)); err != nil {
			return err
		}
		for _, e := range entries {
			if err := tx.Delete(e.Key, storage.AnyVersion); err != nil {
				return err
			}
		}
	}
	if err := dropRotation(tx, v, &rec); err != nil {
		return err
	}
	if rec.Deleted != nil && !rec.Deleted.ScheduledPurgeDate.IsZero() {
		if err := tx.Delete(keyDueKey(rec.Deleted.ScheduledPurgeDate, v, duePurge, rec.Name), storage.AnyVersion); err != nil {
			return err
		}
	}
	if err := tx.Delete(keyKey(v.UID, rec.Name), storage.AnyVersion); err != nil {
		return err
	}
	return tx.Delete(delKeyKey(v.UID, rec.Name), storage.AnyVersion)
}

// loadDeletedKey reads the soft-deleted key name of v.
func loadDeletedKey(tx storage.Tx, v Vault, name string) (keyRecord, int64, error) {
	var rec keyRecord
	if !ValidKeyName(name) {
		return rec, 0, errDeletedKeyNotFound(name)
	}
	ver, err := storage.GetJSON(tx, delKeyKey(v.UID, name), &rec)
	if isNotFound(err) {
		return rec, 0, errDeletedKeyNotFound(name)
	}
	return rec, ver, err
}

// GetDeletedKey returns the latest version of the soft-deleted key name,
// with Deleted set.
func (s *Service) GetDeletedKey(ctx context.Context, vault, name string) (Key, error) {
	v, st, err := s.keyVault(ctx, vault)
	if err != nil {
		return Key{}, err
	}
	var rec keyRecord
	var meta versionRecord
	err = s.store.View(ctx, func(tx storage.Tx) error {
		var err error
		if rec, _, err = loadDeletedKey(tx, v, name); err != nil {
			return err
		}
		_, err = storage.GetJSON(tx, verKey(v.UID, name, rec.Latest), &meta)
		return err
	})
	if err != nil {
		return Key{}, err
	}
	k := bundle(v, st, rec.Name, meta)
	k.Deleted = deletion(rec.Deleted)
	return k, nil
}

// RecoverDeletedKey brings back the soft-deleted key name with all its
// versions and returns its latest version.
func (s *Service) RecoverDeletedKey(ctx context.Context, c directory.Caller, vault, name string) (Key, error) {
	v, st, err := s.keyVaultFresh(ctx, vault)
	if err != nil {
		return Key{}, err
	}
	var rec keyRecord
	var meta versionRecord
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		if err := sameVault(tx, v); err != nil {
			return err
		}
		var recVer int64
		var err error
		if rec, recVer, err = loadDeletedKey(tx, v, name); err != nil {
			return err
		}
		meta = versionRecord{}
		if _, err := storage.GetJSON(tx, verKey(v.UID, name, rec.Latest), &meta); err != nil {
			return err
		}
		if err := tx.Delete(keyDueKey(rec.Deleted.ScheduledPurgeDate, v, duePurge, name), storage.AnyVersion); err != nil {
			return err
		}
		if err := tx.Delete(delKeyKey(v.UID, name), recVer); err != nil {
			return err
		}
		rec.Deleted = nil
		if err := s.scheduleRotation(tx, v, &rec, meta); err != nil {
			return err
		}
		if err := storage.PutJSON(tx, keyKey(v.UID, name), rec, storage.MustNotExist); err != nil {
			return err
		}
		return s.recordKey(ctx, tx, c, v, ref(v, rec.Name, rec.Latest), actKeyRecover, "")
	})
	if err != nil {
		return Key{}, err
	}
	s.forgetKey(ctx, nameKey{uid: v.UID, name: fold(name)}, false)
	return bundle(v, st, rec.Name, meta), nil
}

// PurgeDeletedKey removes the soft-deleted key name for good. It is refused
// (PermissionDenied) while the vault's recovery level has no "Purgeable":
// purge protection ("PurgeProtectionEnabled") or a subscription protected
// by a mandatory retention period ("SubscriptionProtected"); the scheduled
// purge by SweepKeys happens regardless.
func (s *Service) PurgeDeletedKey(ctx context.Context, c directory.Caller, vault, name string) error {
	v, _, err := s.keyVaultFresh(ctx, vault)
	if err != nil {
		return err
	}
	var rec keyRecord
	err = s.store.View(ctx, func(tx storage.Tx) error {
		var err error
		rec, _, err = loadDeletedKey(tx, v, name)
		return err
	})
	if err != nil {
		return err
	}
	protected, err := s.subs.Protected(ctx, v.SubscriptionID)
	if err != nil {
		return err
	}
	r := ref(v, rec.Name, rec.Latest)
	level, _ := RecoveryLevel(v, protected)
	if !PurgeAllowed(level) && s.now().Before(rec.Deleted.ScheduledPurgeDate) {
		when := rec.Deleted.ScheduledPurgeDate.UTC().Format(time.RFC3339)
		var err error
		if protected {
			err = errkind.Errorf(errkind.PermissionDenied, "Operation 'purge' is not allowed on key '%s': the recovery "+
				"level of vault '%s' is %s (subscription '%s' is protected by a mandatory retention period), so a deleted "+
				"key cannot be purged before its scheduled purge date %s, when it is purged automatically.",
				rec.Name, v.Name, level, v.SubscriptionID, when).WithCode("SubscriptionProtected")
		} else {
			err = errkind.Errorf(errkind.PermissionDenied, "Operation 'purge' is not allowed on key '%s': the recovery "+
				"level of vault '%s' is %s (purge protection is enabled), so a deleted key cannot be purged before its "+
				"scheduled purge date %s, when it is purged automatically.", rec.Name, v.Name, level, when).
				WithCode("PurgeProtectionEnabled")
		}
		s.recordKeyRefused(ctx, c, v, r, actKeyPurge, err)
		return err
	}
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		if err := sameVault(tx, v); err != nil {
			return err
		}
		cur, _, err := loadDeletedKey(tx, v, name)
		if err != nil {
			return err
		}
		if !cur.Deleted.DeletedDate.Equal(rec.Deleted.DeletedDate) {
			return errkind.New(errkind.Conflict, "the key changed while it was being purged; try again")
		}
		if err := s.purgeKeyTx(tx, v, cur); err != nil {
			return err
		}
		return s.recordKey(ctx, tx, c, v, r, actKeyPurge, "")
	})
	if err != nil {
		return err
	}
	s.forgetKey(ctx, nameKey{uid: v.UID, name: fold(name)}, true)
	// The purge is done; what the HSM still holds of it goes now, or, if
	// the HSM is down, on the next SweepKeys.
	_, _ = s.collectHSM(ctx)
	return nil
}

// dropKeyDueTx removes the due-index entries of the keys among a purged
// vault's contents (Service.purgeTx calls it before deleting them).
func dropKeyDueTx(tx storage.Tx, v Vault, contents []storage.Entry) error {
	live, del := dataPrefix(v.UID)+"key/", dataPrefix(v.UID)+"deleted/"
	for _, e := range contents {
		if !strings.HasPrefix(e.Key, live) && !strings.HasPrefix(e.Key, del) {
			continue
		}
		var rec keyRecord
		if _, err := storage.GetJSON(tx, e.Key, &rec); err != nil {
			continue // leaves at most a stale due entry, which SweepKeys drops
		}
		if err := dropRotation(tx, v, &rec); err != nil {
			return err
		}
		if rec.Deleted != nil && !rec.Deleted.ScheduledPurgeDate.IsZero() {
			if err := tx.Delete(keyDueKey(rec.Deleted.ScheduledPurgeDate, v, duePurge, rec.Name), storage.AnyVersion); err != nil {
				return err
			}
		}
	}
	return nil
}

// DataPlaneVault returns the live vault called name for the data plane,
// from the cache when it is fresh: every request needs its tenant, its
// authorization model and its access policies before anything else. A
// vault whose subscription is not usable is refused here, with the reason.
func (s *Service) DataPlaneVault(ctx context.Context, name string) (Vault, error) {
	v, _, err := s.keyVault(ctx, name)
	return v, err
}
