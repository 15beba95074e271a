package vault

import (
	"context"
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/hsm"
	"github.com/customerkey/customerkey/internal/kcrypto"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
)

// HSM keeps the private keys of RSA-HSM and EC-HSM key versions: generated
// inside it, imported into it, used inside it, and wrapped under its own
// backup key for key backups. Package hsm implements it; the composition
// root wires it in. The store keeps an object's id (CKA_ID), never key
// material.
type HSM interface {
	GenerateKey(ctx context.Context, spec hsm.KeySpec) (hsm.Key, error)
	// ImportKey copies a software key into the HSM; the caller wipes priv.
	ImportKey(ctx context.Context, priv crypto.Signer, u hsm.Usage) (hsm.Key, error)
	// ImportTransfer unwraps a Bring Your Own Key transfer ciphertext with
	// the key exchange key kek.
	ImportTransfer(ctx context.Context, kek, ciphertext []byte, u hsm.Usage) (hsm.Key, error)
	// DestroyKey destroys an object; one already gone is not an error.
	DestroyKey(ctx context.Context, id []byte) error
	Decrypt(ctx context.Context, id []byte, alg string, ct []byte) (secret.Bytes, error)
	Sign(ctx context.Context, id []byte, alg string, digest []byte) ([]byte, error)
	BackupWrap(ctx context.Context, id []byte) (backupKeyID, wrapped []byte, err error)
	BackupUnwrap(ctx context.Context, backupKeyID, wrapped []byte, keyType string, u hsm.Usage, pub crypto.PublicKey) (hsm.Key, error)
}

// hsmKey stands in for the private key of an -HSM version in the key cache:
// the object's id and the public key. It holds no secret.
type hsmKey struct {
	id  []byte
	pub crypto.PublicKey
}

func (k *hsmKey) Public() crypto.PublicKey { return k.pub }

// hsmKeyOf builds the cache entry of the -HSM version m.
func hsmKeyOf(m versionRecord) (*hsmKey, error) {
	pub, err := m.Public.Public()
	if err != nil {
		return nil, fmt.Errorf("vault: the public key of %s/%s: %w", m.Name, m.Version, err)
	}
	return &hsmKey{id: m.HSM.ID, pub: pub}, nil
}

// usageOf is what the HSM object of a version with ops may do.
func usageOf(ops []string) hsm.Usage {
	if isKEK(ops) {
		return hsm.UseKeyExchange
	}
	return hsm.UseOperations
}

// generateHSM generates the key pair of the new -HSM version meta.
func (s *Service) generateHSM(ctx context.Context, meta versionRecord) (*hsm.Key, error) {
	if err := s.hsmReady(); err != nil {
		return nil, err
	}
	k, err := s.hsm.GenerateKey(ctx, hsm.KeySpec{Type: baseType(meta.Type), Bits: meta.Size, Curve: meta.Curve,
		Usage: usageOf(meta.Ops)})
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// discardHSM destroys HSM objects that no stored version names (a create or
// restore that failed after the HSM made them). One that cannot be
// destroyed now is queued for collectHSM, so it is not forgotten.
func (s *Service) discardHSM(ctx context.Context, ids ...[]byte) {
	ctx = context.WithoutCancel(ctx)
	var left [][]byte
	for _, id := range ids {
		if err := s.hsm.DestroyKey(ctx, id); err != nil {
			left = append(left, id)
		}
	}
	if len(left) == 0 {
		return
	}
	_ = s.store.Update(ctx, func(tx storage.Tx) error {
		for _, id := range left {
			if _, err := tx.Put(kHSMGarbage+hex.EncodeToString(id), nil, storage.AnyVersion); err != nil {
				return err
			}
		}
		return nil
	})
}

// queueHSMTx queues, in tx, the HSM objects of the version records among
// entries whose keys start with under: they are being purged, and their
// objects are destroyed once the purge has committed (collectHSM). Doing it
// afterwards means a failed purge never destroys a key still in use.
func queueHSMTx(tx storage.Tx, entries []storage.Entry, under string) error {
	for _, e := range entries {
		if !strings.HasPrefix(e.Key, under) {
			continue
		}
		var m versionRecord
		if err := json.Unmarshal(e.Value, &m); err != nil {
			return fmt.Errorf("vault: decoding %s: %w", e.Key, err)
		}
		if m.HSM == nil {
			continue
		}
		if _, err := tx.Put(kHSMGarbage+hex.EncodeToString(m.HSM.ID), nil, storage.AnyVersion); err != nil {
			return err
		}
	}
	return nil
}

// collectHSM destroys the HSM objects of purged versions and returns how
// many it destroyed. Objects it cannot destroy now (the HSM is down) stay
// queued for the next call; SweepKeys calls it on every run.
func (s *Service) collectHSM(ctx context.Context) (int, error) {
	if s.hsm == nil {
		return 0, nil // queued objects wait for the HSM to be back
	}
	var ids []string
	err := s.store.View(ctx, func(tx storage.Tx) error {
		ids = nil
		entries, err := tx.List(kHSMGarbage, "", 0)
		for _, e := range entries {
			ids = append(ids, strings.TrimPrefix(e.Key, kHSMGarbage))
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	done := 0
	var errs []error
	for _, h := range ids {
		id, err := hex.DecodeString(h)
		if err == nil {
			err = s.hsm.DestroyKey(ctx, id)
		} else {
			err = nil // not an id: drop the entry
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("vault: destroying the HSM object %s of a purged key: %w", h, err))
			continue
		}
		if err := s.store.Update(ctx, func(tx storage.Tx) error {
			return tx.Delete(kHSMGarbage+h, storage.AnyVersion)
		}); err != nil {
			errs = append(errs, err)
			continue
		}
		done++
	}
	return done, errors.Join(errs...)
}

// hsmDecrypt decrypts with the HSM object of k.
func (s *Service) hsmDecrypt(ctx context.Context, k *hsmKey, alg string, ct []byte) (secret.Bytes, error) {
	if err := s.hsmReady(); err != nil {
		return secret.Bytes{}, err
	}
	rp, ok := k.pub.(*rsa.PublicKey)
	if !ok {
		return secret.Bytes{}, errBadParameter("Elliptic-curve keys cannot decrypt or unwrap; use an RSA key.")
	}
	if len(ct) != rp.Size() {
		return secret.Bytes{}, kcrypto.ErrDecryption
	}
	return s.hsm.Decrypt(ctx, k.id, alg, ct)
}

// hsmSign signs with the HSM object of k.
func (s *Service) hsmSign(ctx context.Context, k *hsmKey, alg string, digest []byte) ([]byte, error) {
	if err := s.hsmReady(); err != nil {
		return nil, err
	}
	return s.hsm.Sign(ctx, k.id, alg, digest)
}

// Bring Your Own Key.

// transferBlob is the key_hsm of an import: the JSON of a ".byok" file as
// Azure's BYOK specification defines it, base64url-encoded on the wire.
type transferBlob struct {
	SchemaVersion string `json:"schema_version"`
	Header        struct {
		KID string `json:"kid"`
		Alg string `json:"alg"`
		Enc string `json:"enc"`
	} `json:"header"`
	Ciphertext string `json:"ciphertext"`
	Generator  string `json:"generator"`
}

// byokEnc is the one transfer mechanism accepted: RSA-OAEP (SHA-1) of an
// AES key, then AES key wrap with padding of the target key.
const byokEnc = "CKM_RSA_AES_KEY_WRAP"

// parseTransferBlob reads key_hsm; kid falls back to the key's own kid.
func parseTransferBlob(t []byte, kid string) (string, []byte, error) {
	var b transferBlob
	if err := json.Unmarshal(t, &b); err != nil {
		return "", nil, errkind.Wrap(errkind.Invalid, "The key_hsm value is not a key transfer blob: it must be the "+
			"content of the .byok file your HSM vendor's BYOK tool made (JSON with header and ciphertext).", err).
			WithCode("BadParameter")
	}
	if !strings.EqualFold(b.Header.Alg, "dir") || b.Header.Enc != byokEnc {
		return "", nil, errBadParameter("The key transfer blob uses alg '%s' and enc '%s'; this service accepts alg "+
			"'dir' with enc '%s' (RSA-OAEP of an AES key, then AES key wrap with padding of the target key).",
			b.Header.Alg, b.Header.Enc, byokEnc)
	}
	if b.Header.KID != "" {
		kid = b.Header.KID
	}
	if kid == "" {
		return "", nil, errBadParameter("The key transfer blob does not name its key exchange key (header.kid).")
	}
	ct, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(b.Ciphertext, "="))
	if err != nil || len(ct) == 0 {
		return "", nil, errBadParameter("The ciphertext of the key transfer blob is not base64url.")
	}
	return kid, ct, nil
}

// kekRef splits the kid of a key exchange key of v into name and version.
func kekRef(v Vault, kid string) (string, string, error) {
	u, err := url.Parse(kid)
	notOurs := errBadParameter("The key exchange key '%s' is not a key of vault '%s': a transfer blob must be made "+
		"for a key exchange key of the vault it is imported into.", kid, v.Name)
	if err != nil || u.Host == "" {
		return "", "", notOurs
	}
	label, _, _ := strings.Cut(u.Hostname(), ".")
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if !strings.EqualFold(label, v.Name) || len(parts) < 2 || len(parts) > 3 || parts[0] != "keys" {
		return "", "", notOurs
	}
	if len(parts) == 2 {
		return parts[1], "", nil
	}
	return parts[1], parts[2], nil
}

// importTransfer is ImportKey of a key transfer blob: the target key goes
// from the customer's HSM into this one without ever being in the clear
// outside an HSM.
func (s *Service) importTransfer(ctx context.Context, c directory.Caller, v Vault, st cachedSub, name, kty string,
	in KeyImport) (Key, error) {
	if kty != KeyTypeRSA {
		return Key{}, errBadParameter("Bring Your Own Key imports RSA keys (kty RSA-HSM) here: the HSM cannot report " +
			"the public key of an unwrapped EC key. Import EC keys in plaintext with Hsm true, or create EC-HSM keys " +
			"in the vault.")
	}
	if in.Key.HasPrivate() {
		return Key{}, errBadParameter("Give either key_hsm (a key transfer blob) or the private key members, not both.")
	}
	if err := s.checkHSM(v, KeyTypeRSAHSM); err != nil {
		return Key{}, err
	}
	kid, ct, err := parseTransferBlob(in.Key.T, in.Key.KID)
	if err != nil {
		return Key{}, err
	}
	kekName, kekVersion, err := kekRef(v, kid)
	if err != nil {
		return Key{}, err
	}
	e, kek, err := s.version(ctx, v, kekName, kekVersion)
	if err != nil {
		return Key{}, err
	}
	s.keys.release(e)
	if kek.HSM == nil || !isKEK(kek.Ops) {
		return Key{}, errBadParameter("The key '%s' is not a key exchange key: create one in this vault with kty "+
			"RSA-HSM and key_ops [\"import\"], and make the transfer blob with its public key.", kekName)
	}
	if err := checkUse(kek, OpImport, s.now()); err != nil {
		return Key{}, err
	}
	ops := in.Key.KeyOps
	if len(ops) == 0 {
		ops = nil
	}
	meta := versionRecord{Type: KeyTypeRSAHSM, Imported: true}
	if meta.Ops, err = checkOps(KeyTypeRSAHSM, ops); err != nil {
		return Key{}, err
	}
	if isKEK(meta.Ops) {
		return Key{}, errBadParameter("A key exchange key must be created in the vault, not imported.")
	}
	if err := prepare(&meta, in.Enabled, in.NotBefore, in.Expires, in.Exportable, in.Tags); err != nil {
		return Key{}, err
	}
	k, err := s.hsm.ImportTransfer(ctx, kek.HSM.ID, ct, usageOf(meta.Ops))
	if err != nil {
		return Key{}, err
	}
	meta.Size = k.Public.(*rsa.PublicKey).N.BitLen()
	return s.addVersion(ctx, c, v, st, name, newVersion{meta: meta, hsm: &k},
		addOptions{action: actKeyImport, reason: "Bring Your Own Key through key exchange key " + kekName + "/" + fold(kek.Version)})
}
