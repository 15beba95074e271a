package dep

import (
	"context"
	"encoding/json"

	"github.com/customerkey/customerkey/internal/envelope"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
)

// HSMKeys keeps availability keys in a hardware security module: AES-256
// keys generated inside it that never leave it, named by their CKA_ID, with
// which the module itself seals and opens the policy keys (AES-GCM).
// *hsm.HSM implements it.
//
// Why: a purge deletes the availability key from the store, but neither
// bbolt nor PostgreSQL clears freed pages or dead tuples, so the deleted
// record may linger on disk under the barrier, whose key the operator
// holds. A key that only ever existed in the HSM is destroyed there, which
// leaves nothing to recover from such remains.
type HSMKeys interface {
	// GenerateSecretKey generates a sensitive, never extractable AES-256
	// key object and returns its CKA_ID.
	GenerateSecretKey(ctx context.Context) ([]byte, error)
	// EncryptGCM seals plaintext under the key keyID, binding aad.
	EncryptGCM(ctx context.Context, keyID, aad, plaintext []byte) ([]byte, error)
	// DecryptGCM opens what EncryptGCM sealed; the caller wipes the result.
	DecryptGCM(ctx context.Context, keyID, aad, sealed []byte) ([]byte, error)
	// DestroyKey destroys the key object id; one already gone is not an
	// error.
	DestroyKey(ctx context.Context, id []byte) error
}

// availabilityKey is a policy's availability key as dep holds it: the key
// itself, kept in the store (no HSM), or the CKA_ID of a key object in the
// HSM (Options.HSM). A policy keeps the kind it was created with.
type availabilityKey struct {
	key   secret.Bytes // kept in the store
	hsmID []byte       // kept in the HSM
}

func (a *availabilityKey) Wipe() { a.key.Wipe() }

// akRecord is the stored form of an availability key kept in the HSM. A key
// kept in the store is stored as its 32 raw bytes, as before HSM keys
// existed, so a record of exactly akLen bytes is such a key; the JSON form
// is never akLen bytes long (its base64 id makes its length 22 plus a
// multiple of 4).
type akRecord struct {
	Kind string `json:"kind"` // akInHSM
	ID   []byte `json:"id"`   // the key object's CKA_ID
}

const (
	akLen   = 32
	akInHSM = "hsm"
)

// newAK makes the availability key of a new policy: in the HSM when there
// is one, otherwise in memory for the store.
func (s *Service) newAK(ctx context.Context) (availabilityKey, error) {
	if s.hsm == nil {
		k, err := envelope.NewKey()
		return availabilityKey{key: k}, err
	}
	id, err := s.hsm.GenerateSecretKey(ctx)
	if err != nil {
		return availabilityKey{}, err
	}
	return availabilityKey{hsmID: id}, nil
}

// discardAK destroys the HSM key object of a policy that was not created
// after all. A failure only leaves an unused object behind, so it is
// logged, not returned.
func (s *Service) discardAK(ctx context.Context, ak availabilityKey) {
	if ak.hsmID == nil {
		return
	}
	if err := s.hsm.DestroyKey(context.WithoutCancel(ctx), ak.hsmID); err != nil {
		s.log.Error("dep: destroying the availability key object of a policy that was not created; it stays unused in the HSM",
			"err", err)
	}
}

// record is what the store keeps of ak.
func (a availabilityKey) record() ([]byte, error) {
	if a.hsmID == nil {
		return a.key.Reveal(), nil
	}
	b, err := json.Marshal(akRecord{Kind: akInHSM, ID: a.hsmID})
	if err != nil {
		return nil, errkind.Wrap(errkind.Internal, "dep: encoding an availability key record", err)
	}
	return b, nil
}

// parseAK reads a stored availability key record.
func parseAK(v []byte) (availabilityKey, error) {
	if len(v) == akLen {
		return availabilityKey{key: secret.Copy(v)}, nil
	}
	var r akRecord
	if err := json.Unmarshal(v, &r); err != nil || r.Kind != akInHSM || len(r.ID) == 0 {
		return availabilityKey{}, errkind.New(errkind.Internal,
			"dep: a stored availability key record is neither a key nor an HSM key reference; the store is damaged")
	}
	return availabilityKey{hsmID: r.ID}, nil
}

// loadAK reads the availability key of policy p.
func (s *Service) loadAK(ctx context.Context, p Policy) (availabilityKey, error) {
	var ak availabilityKey
	err := s.store.View(ctx, func(tx storage.Tx) error {
		e, err := tx.Get(akKey(p.TenantID, p.ID))
		if err != nil {
			return err
		}
		ak.Wipe()
		ak, err = parseAK(e.Value)
		return err
	})
	if errkind.Is(err, errkind.NotFound) {
		return availabilityKey{}, errkind.Errorf(errkind.NotFound, "the availability key of the %s no longer exists (it was purged)", p.label())
	}
	if err != nil {
		return availabilityKey{}, err
	}
	if ak.hsmID != nil && s.hsm == nil {
		return availabilityKey{}, errNoHSM(p)
	}
	return ak, nil
}

func errNoHSM(p Policy) error {
	return errkind.Errorf(errkind.FailedPrecondition,
		"the availability key of the %s is kept in an HSM, but this server has no HSM (none is configured, or it failed "+
			"to start): start it with the hsm-module, hsm-token and hsm-pin-file the policy was created with", p.label()).
		WithCode("HSMUnavailable")
}

// sealAK seals version v of policy p's key under ak.
func (s *Service) sealAK(ctx context.Context, ak availabilityKey, p Policy, v int, key secret.Bytes) ([]byte, error) {
	aad := akAAD(p.TenantID, p.ID, v)
	if ak.hsmID == nil {
		return envelope.Seal(ak.key, akID(p.ID), uint32(v), key.Reveal(), aad)
	}
	return s.hsm.EncryptGCM(ctx, ak.hsmID, aad, key.Reveal())
}

// unwrapAvailable opens version kv of policy p with its availability key.
func (s *Service) unwrapAvailable(ctx context.Context, p Policy, kv keyVersion) (secret.Bytes, error) {
	ak, err := s.loadAK(ctx, p)
	if err != nil {
		return secret.Bytes{}, err
	}
	defer ak.Wipe()
	aad := akAAD(p.TenantID, p.ID, kv.Version)
	if ak.hsmID != nil {
		key, err := s.hsm.DecryptGCM(ctx, ak.hsmID, aad, kv.Available)
		if errkind.Is(err, errkind.Internal) {
			return secret.Bytes{}, errkind.Wrap(errkind.Internal, "dep: the availability key copy of "+p.label()+" does not open in the HSM", err)
		}
		if err != nil {
			return secret.Bytes{}, err
		}
		return secret.New(key), nil
	}
	key, err := envelope.Open(ak.key, kv.Available, aad)
	if err != nil {
		return secret.Bytes{}, errkind.Wrap(errkind.Internal, "dep: the availability key copy of "+p.label()+" does not open", err)
	}
	return secret.New(key), nil
}

// destroyAK destroys the HSM key object of a purged policy, recorded in its
// purge job after the store forgot it.
func (s *Service) destroyAK(ctx context.Context, job purgeJob) error {
	if s.hsm == nil {
		return errkind.Errorf(errkind.Unavailable,
			"the purge of policy %s deleted its data and keys from the store, but its availability key is an object in an HSM "+
				"and this server has no HSM (none is configured, or it failed to start); start it with the HSM the policy was "+
				"created in and the purge finishes on the next ResumePurges", job.PolicyID).WithCode("HSMUnavailable")
	}
	if err := s.hsm.DestroyKey(ctx, job.AKObject); err != nil {
		return errkind.Wrap(errkind.Unavailable, "the purge of policy "+job.PolicyID+" deleted its data and keys from the "+
			"store, but destroying its availability key in the HSM failed ("+errkind.Public(err)+"); it resumes on the next "+
			"ResumePurges", err)
	}
	return nil
}
