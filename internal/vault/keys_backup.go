package vault

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/hsm"
	"github.com/customerkey/customerkey/internal/jwk"
	"github.com/customerkey/customerkey/internal/kcrypto"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
)

// Key backup blobs.
//
//	"CKKB" | format (1 byte, 0x01) | key id (8) | nonce (12) | AES-256-GCM(payload) with tag (16)
//
// The AES key is derived per subscription with HKDF-SHA-256 from a
// service-wide secret kept in the store (vault/secret/backup, encrypted by
// the barrier like every value) and the lowercased subscription id; the key
// id is 8 bytes derived the same way, so that a blob of another
// subscription is told apart from a damaged one. The header up to the nonce
// is the additional data. The payload is JSON: the key's name, latest
// version, creation time and rotation policy, and every version with its
// attributes, tags, operations and private key (kcrypto.MarshalPrivate
// bytes). A blob therefore restores only into a vault of the same
// subscription (Azure's rule for key backups), on any vault of it, and any
// change to it is detected.
//
// The private key of an -HSM version never leaves the HSM in the clear:
// the payload holds it wrapped under the HSM's backup key (an AES key in
// the token that never leaves it) and names that key, so the blob restores
// only where that HSM is, as a new HSM object; elsewhere it is refused
// before anything is stored.
const (
	backupMagic   = "CKKB"
	backupFormat1 = 0x01
	backupKeyID   = 8
	backupNonce   = 12
	backupHeader  = len(backupMagic) + 1 + backupKeyID
	// MaxBackupLen bounds a backup blob.
	MaxBackupLen = 8 << 20
)

type backupPayload struct {
	Vault    string          `json:"vault"` // where the backup was made; informational
	Name     string          `json:"name"`
	Latest   string          `json:"latest"`
	Created  time.Time       `json:"created"`
	Policy   *RotationPolicy `json:"policy,omitempty"`
	Versions []backupVersion `json:"versions"`
}

type backupVersion struct {
	Meta     versionRecord `json:"meta"`
	Material []byte        `json:"material"`
	// HSMBackupKey, for an -HSM version, is the id of the HSM backup key
	// Material is wrapped under.
	HSMBackupKey []byte `json:"hsmBackupKey,omitempty"`
}

func (p *backupPayload) wipe() {
	for i := range p.Versions {
		secret.Wipe(p.Versions[i].Material)
		p.Versions[i].Material = nil
	}
}

var errBadBlob = errBadParameter("The backup blob is not valid: it is damaged or was not made by this service.")

func errBlobOtherSubscription() error {
	return errBadParameter("The backup blob is not valid here: it was made in a vault of another subscription, and a " +
		"key backup can be restored only into a vault of the subscription it was made in.")
}

// backupSecret returns the service-wide backup secret, creating it on
// first use.
func (s *Service) backupSecret(ctx context.Context) (secret.Bytes, error) {
	var out secret.Bytes
	err := s.store.Update(ctx, func(tx storage.Tx) error {
		e, err := tx.Get(kBackupSecret)
		if err == nil {
			if len(e.Value) != 32 {
				return fmt.Errorf("vault: the backup secret has %d bytes, want 32", len(e.Value))
			}
			out = secret.Copy(e.Value)
			return nil
		}
		if !isNotFound(err) {
			return err
		}
		b := make([]byte, 32)
		if _, err := io.ReadFull(s.rand, b); err != nil {
			return fmt.Errorf("vault: reading random: %w", err)
		}
		out = secret.New(b)
		_, err = tx.Put(kBackupSecret, b, storage.MustNotExist)
		return err
	})
	return out, err
}

// backupKeys derives the AEAD and key id of subscription sub.
func (s *Service) backupKeys(ctx context.Context, sub string) (cipher.AEAD, []byte, error) {
	sec, err := s.backupSecret(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer sec.Wipe()
	info := "customerkey vault key backup v1 " + fold(sub)
	k, err := hkdf.Key(sha256.New, sec.Reveal(), nil, info+" aes-256-gcm", 32)
	if err != nil {
		return nil, nil, err
	}
	defer secret.Wipe(k)
	id, err := hkdf.Key(sha256.New, sec.Reveal(), nil, info+" key id", backupKeyID)
	if err != nil {
		return nil, nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	return aead, id, nil
}

// BackupKey returns a blob holding every version of the live key name
// (attributes, tags, operations, rotation policy and private keys, those
// of -HSM versions wrapped by the HSM), sealed so that it restores only into
// a vault of the same subscription.
func (s *Service) BackupKey(ctx context.Context, vault, name string) ([]byte, error) {
	v, _, err := s.keyVault(ctx, vault)
	if err != nil {
		return nil, err
	}
	aead, id, err := s.backupKeys(ctx, v.SubscriptionID)
	if err != nil {
		return nil, err
	}
	var p backupPayload
	defer p.wipe()
	err = s.store.View(ctx, func(tx storage.Tx) error {
		p.wipe()
		rec, _, _, err := liveKey(tx, v, name)
		if err != nil {
			return err
		}
		p = backupPayload{Vault: fold(v.Name), Name: rec.Name, Latest: rec.Latest, Created: rec.Created, Policy: rec.Policy}
		vers, err := tx.List(verPrefix(v.UID, name), "", 0)
		if err != nil {
			return err
		}
		for _, e := range vers {
			var meta versionRecord
			if err := json.Unmarshal(e.Value, &meta); err != nil {
				return fmt.Errorf("vault: decoding %s: %w", e.Key, err)
			}
			if meta.HSM != nil {
				p.Versions = append(p.Versions, backupVersion{Meta: meta}) // wrapped by the HSM below
				continue
			}
			m, err := tx.Get(matKey(v.UID, name, meta.Version))
			if err != nil {
				return fmt.Errorf("vault: the private key of %s/%s: %w", name, meta.Version, err)
			}
			p.Versions = append(p.Versions, backupVersion{Meta: meta, Material: append([]byte(nil), m.Value...)})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range p.Versions {
		bv := &p.Versions[i]
		if bv.Meta.HSM == nil {
			continue
		}
		if err := s.hsmReady(); err != nil {
			return nil, err
		}
		if bv.HSMBackupKey, bv.Material, err = s.hsm.BackupWrap(ctx, bv.Meta.HSM.ID); err != nil {
			return nil, err
		}
		bv.Meta.HSM = nil // the object id means nothing to a restore, which makes a new object
	}
	plain, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("vault: encoding a backup: %w", err)
	}
	defer secret.Wipe(plain)
	out := make([]byte, 0, backupHeader+backupNonce+len(plain)+aead.Overhead())
	out = append(out, backupMagic...)
	out = append(out, backupFormat1)
	out = append(out, id...)
	nonce := make([]byte, backupNonce)
	if _, err := io.ReadFull(s.rand, nonce); err != nil {
		return nil, fmt.Errorf("vault: reading random: %w", err)
	}
	out = append(out, nonce...)
	return aead.Seal(out, nonce, plain, out[:backupHeader]), nil
}

// openBackup checks and decrypts blob for subscription sub.
func (s *Service) openBackup(ctx context.Context, sub string, blob []byte) (backupPayload, error) {
	if len(blob) > MaxBackupLen {
		return backupPayload{}, errBadParameter("The backup blob is larger than %d bytes.", MaxBackupLen)
	}
	if len(blob) < backupHeader+backupNonce+16 || string(blob[:len(backupMagic)]) != backupMagic {
		return backupPayload{}, errBadBlob
	}
	if blob[len(backupMagic)] != backupFormat1 {
		return backupPayload{}, errBadParameter("The backup blob has format version %d, which this service does not know.",
			blob[len(backupMagic)])
	}
	aead, id, err := s.backupKeys(ctx, sub)
	if err != nil {
		return backupPayload{}, err
	}
	if !bytes.Equal(blob[len(backupMagic)+1:backupHeader], id) {
		return backupPayload{}, errBlobOtherSubscription()
	}
	nonce := blob[backupHeader : backupHeader+backupNonce]
	plain, err := aead.Open(nil, nonce, blob[backupHeader+backupNonce:], blob[:backupHeader])
	if err != nil {
		return backupPayload{}, errBadBlob
	}
	defer secret.Wipe(plain)
	var p backupPayload
	if err := json.Unmarshal(plain, &p); err != nil {
		p.wipe()
		return backupPayload{}, errkind.Wrap(errkind.Invalid, errBadBlob.Msg, err).WithCode("BadParameter")
	}
	return p, nil
}

// checkBackup validates a decrypted payload and rebuilds each version's
// public key from its private key.
func checkBackup(p *backupPayload) error {
	bad := func(why string) error {
		return errkind.Wrap(errkind.Invalid, errBadBlob.Msg, fmt.Errorf("vault: backup payload: %s", why)).WithCode("BadParameter")
	}
	if !ValidKeyName(p.Name) || len(p.Versions) == 0 {
		return bad("no name or no versions")
	}
	seen := map[string]bool{}
	for i := range p.Versions {
		m := &p.Versions[i].Meta
		if !validVersion(m.Version) || seen[fold(m.Version)] {
			return bad("a bad or repeated version id")
		}
		seen[fold(m.Version)] = true
		if _, ok := keyOpsByType[m.Type]; !ok {
			return bad("an unknown key type")
		}
		if _, err := checkOps(m.Type, m.Ops); err != nil {
			return bad("bad key operations")
		}
		if m.Type != baseType(m.Type) {
			if _, err := m.Public.Public(); err != nil || m.Public.Kty != baseType(m.Type) ||
				len(p.Versions[i].Material) == 0 || len(p.Versions[i].HSMBackupKey) == 0 {
				return bad("an HSM key without its wrapped key or public key")
			}
			m.Name, m.HSM = p.Name, nil
			continue
		}
		if len(p.Versions[i].HSMBackupKey) > 0 {
			return bad("a software key that names an HSM backup key")
		}
		k, err := kcrypto.ParsePrivate(p.Versions[i].Material)
		if err != nil {
			return bad("a private key that does not parse")
		}
		pub, err := jwk.FromPublic("", k.Public(), nil)
		wipeSigner(k)
		if err != nil || pub.Kty != m.Type {
			return bad("a private key of the wrong type")
		}
		m.Name, m.Public = p.Name, pub
	}
	if !seen[fold(p.Latest)] {
		return bad("the latest version is missing")
	}
	if p.Policy != nil {
		for _, a := range p.Policy.LifetimeActions {
			if a.Type != ActionRotate && a.Type != ActionNotify {
				return bad("a bad rotation policy")
			}
		}
	}
	return nil
}

// RestoreKey restores a blob made by BackupKey into vault, which must be in
// the subscription the backup was made in: the key gets all its versions
// back with the same version ids, attributes, tags and rotation policy;
// its kid host becomes this vault's; -HSM versions become new objects in
// the HSM. It is refused (Conflict) when a key of that name exists here,
// live or soft-deleted, and (Invalid, BadParameter) when the blob is
// damaged, of another subscription, or holds HSM keys of another HSM
// deployment.
func (s *Service) RestoreKey(ctx context.Context, c directory.Caller, vault string, blob []byte) (Key, error) {
	v, st, err := s.keyVaultFresh(ctx, vault)
	if err != nil {
		return Key{}, err
	}
	p, err := s.openBackup(ctx, v.SubscriptionID, blob)
	if err != nil {
		return Key{}, err
	}
	defer p.wipe()
	if err := checkBackup(&p); err != nil {
		return Key{}, err
	}
	name := p.Name
	// Refuse a taken name before the HSM makes objects for nothing; the
	// transaction checks again.
	if err := s.store.View(ctx, func(tx storage.Tx) error { return nameFree(tx, v, name) }); err != nil {
		return Key{}, err
	}
	created, err := s.restoreHSM(ctx, &p)
	if err != nil {
		return Key{}, err
	}
	stored := false
	defer func() {
		if !stored && len(created) > 0 {
			s.discardHSM(ctx, created...)
		}
	}()
	var latest versionRecord
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		if err := sameVault(tx, v); err != nil {
			return err
		}
		if err := nameFree(tx, v, name); err != nil {
			return err
		}
		rec := keyRecord{Name: name, Latest: fold(p.Latest), Created: p.Created}
		if p.Policy != nil {
			pol := clonePolicy(*p.Policy)
			rec.Policy = &pol
		}
		for _, bv := range p.Versions {
			m := bv.Meta
			m.Version = fold(m.Version)
			if err := storage.PutJSON(tx, verKey(v.UID, name, m.Version), m, storage.MustNotExist); err != nil {
				return err
			}
			if m.HSM == nil {
				if _, err := tx.Put(matKey(v.UID, name, m.Version), bv.Material, storage.MustNotExist); err != nil {
					return err
				}
			}
			if m.Version == rec.Latest {
				latest = m
			}
		}
		if err := s.scheduleRotation(tx, v, &rec, latest); err != nil {
			return err
		}
		if err := storage.PutJSON(tx, keyKey(v.UID, name), rec, storage.MustNotExist); err != nil {
			return err
		}
		reason := fmt.Sprintf("%d versions", len(p.Versions))
		if !slices.Contains([]string{"", fold(v.Name)}, p.Vault) {
			reason += " from a backup of vault " + p.Vault
		}
		return s.recordKey(ctx, tx, c, v, ref(v, name, rec.Latest), actKeyRestore, reason)
	})
	if err != nil {
		return Key{}, err
	}
	stored = true
	s.forgetKey(ctx, nameKey{uid: v.UID, name: fold(name)}, false)
	return bundle(v, st, name, latest), nil
}

// nameFree refuses a restore under a name taken in v, live or deleted.
func nameFree(tx storage.Tx, v Vault, name string) error {
	for _, k := range []string{keyKey(v.UID, name), delKeyKey(v.UID, name)} {
		if _, err := tx.Get(k); err == nil {
			return errkind.Errorf(errkind.Conflict, "A key named '%s' already exists in vault '%s' (live or in a "+
				"deleted but recoverable state); a backup can be restored only under a free name: recover or "+
				"purge the deleted key, or restore into another vault of the subscription.", name, v.Name).
				WithCode("Conflict")
		} else if !isNotFound(err) {
			return err
		}
	}
	return nil
}

// restoreHSM unwraps the -HSM versions of p into new HSM objects and
// records their ids in the versions; it returns the ids, for the caller to
// destroy if storing fails. Nothing is left in the HSM when it fails.
func (s *Service) restoreHSM(ctx context.Context, p *backupPayload) ([][]byte, error) {
	var created [][]byte
	for i := range p.Versions {
		bv := &p.Versions[i]
		m := &bv.Meta
		if m.Type == baseType(m.Type) {
			continue
		}
		err := s.hsmReady()
		var k hsm.Key
		if err == nil {
			pub, _ := m.Public.Public() // checkBackup parsed it
			k, err = s.hsm.BackupUnwrap(ctx, bv.HSMBackupKey, bv.Material, baseType(m.Type), usageOf(m.Ops), pub)
		}
		if err != nil {
			if len(created) > 0 {
				s.discardHSM(ctx, created...)
			}
			return nil, err
		}
		created = append(created, k.ID)
		m.HSM = &hsmRef{ID: k.ID}
	}
	return created, nil
}
