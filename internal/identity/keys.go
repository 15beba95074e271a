package identity

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/customerkey/customerkey/internal/notify"
	"github.com/customerkey/customerkey/internal/storage"
)

// Signing keys live in one record, so that a rotation is one versioned
// write: two nodes rotating at once cannot both win, and the loser adopts
// the winner's key.
const keyringKey = "identity/keys"

// topicKeys is what a node publishes after it stored a new keyring.
const topicKeys = "identity/keys"

const (
	rsaBits = 2048
	// keyringTTL is how long a process signs with its cached keyring
	// before reading the store again, so that it notices a rotation made
	// by another node within this time.
	keyringTTL = time.Minute
	// kidMissInterval limits store reads caused by tokens naming a kid
	// this process does not know (a rotation elsewhere, or kid spraying).
	kidMissInterval = time.Second
	kidLen          = 16
	// keyRetryDelay spaces out refresh attempts while the store fails, so
	// that issuance does not queue on it.
	keyRetryDelay = 10 * time.Second
)

// keyringRecord is the stored form. Private keys are PKCS#8 DER; the
// barrier under the storage port encrypts the value.
type keyringRecord struct {
	Keys []storedKey `json:"keys"` // oldest first; the last one signs
}

type storedKey struct {
	KID     string    `json:"kid"`
	Created time.Time `json:"created"`
	// Retired is when a newer key replaced this one; the key stays
	// published until every token it signed has expired.
	Retired time.Time `json:"retired,omitzero"`
	PKCS8   []byte    `json:"pkcs8"`
}

// keyring is the parsed, immutable in-memory form, swapped atomically.
type keyring struct {
	version int64
	loaded  time.Time
	current signingKey
	public  map[string]*rsa.PublicKey
	jwks    jose.JSONWebKeySet
}

type signingKey struct {
	kid     string
	created time.Time
	signer  jose.Signer
}

// retention is how long a retired key stays published: the lifetime of
// the last token it may have signed (a process can sign with it for up to
// keyringTTL after the rotation) plus the clock skew verifiers allow.
func (s *Service) retention() time.Duration { return s.tokenLife + keyringTTL + ClockSkew }

// RotateKeysIfDue makes a new signing key when the current one is older
// than Options.KeyRotation, drops retired keys whose tokens have all
// expired, and refreshes this process's copy of the keyring. The app's
// scheduler calls it periodically; token issuance also checks lazily.
// Safe to call from several processes at once.
func (s *Service) RotateKeysIfDue(ctx context.Context) error {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	return s.rotateLocked(ctx)
}

func (s *Service) rotateLocked(ctx context.Context) error {
	for range 5 {
		rec, version, err := s.readKeyring(ctx)
		if err != nil {
			return err
		}
		now := s.now()
		next, changed, err := s.nextKeyring(rec, now)
		if err != nil {
			return err
		}
		if !changed {
			return s.install(rec, version, now)
		}
		b, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("identity: encoding keyring: %w", err)
		}
		var newVersion int64
		err = s.store.Update(ctx, func(tx storage.Tx) error {
			v, err := tx.Put(keyringKey, b, version) // 0 is storage.MustNotExist
			newVersion = v
			return err
		})
		if errors.Is(err, storage.ErrConflict) {
			continue // another process rotated first: adopt its keyring
		}
		if err != nil {
			return fmt.Errorf("identity: storing keyring: %w", err)
		}
		if len(next.Keys) > 0 && (len(rec.Keys) == 0 || next.Keys[len(next.Keys)-1].KID != rec.Keys[len(rec.Keys)-1].KID) {
			s.log.InfoContext(ctx, "identity: new token signing key", "kid", next.Keys[len(next.Keys)-1].KID)
		}
		if err := s.install(next, newVersion, now); err != nil {
			return err
		}
		s.bus.Publish(ctx, topicKeys, notify.All)
		return nil
	}
	return errors.New("identity: keyring kept changing under concurrent rotation")
}

// readKeyring returns the stored keyring and its version (0 when absent).
func (s *Service) readKeyring(ctx context.Context) (keyringRecord, int64, error) {
	var rec keyringRecord
	e, err := storage.Get(ctx, s.store, keyringKey)
	if errors.Is(err, storage.ErrNotFound) {
		return rec, 0, nil
	}
	if err != nil {
		return rec, 0, fmt.Errorf("identity: reading keyring: %w", err)
	}
	if err := json.Unmarshal(e.Value, &rec); err != nil {
		return rec, 0, fmt.Errorf("identity: decoding keyring: %w", err)
	}
	return rec, e.Version, nil
}

// nextKeyring returns rec with expired keys dropped and a new key added
// when the current one is due, and whether anything changed.
func (s *Service) nextKeyring(rec keyringRecord, now time.Time) (keyringRecord, bool, error) {
	var next keyringRecord
	changed := false
	for _, k := range rec.Keys {
		if !k.Retired.IsZero() && now.Sub(k.Retired) > s.retention() {
			changed = true
			continue
		}
		next.Keys = append(next.Keys, k)
	}
	n := len(next.Keys)
	if n > 0 && now.Sub(next.Keys[n-1].Created) < s.keyRotation {
		return next, changed, nil
	}
	k, err := s.newKey(now)
	if err != nil {
		return rec, false, err
	}
	if n > 0 {
		next.Keys[n-1].Retired = now
	}
	next.Keys = append(next.Keys, k)
	return next, true, nil
}

func (s *Service) newKey(now time.Time) (storedKey, error) {
	// Go ignores the reader for key generation and always uses the
	// system's secure source; passing s.rand keeps the intent visible.
	priv, err := rsa.GenerateKey(s.rand, rsaBits)
	if err != nil {
		return storedKey{}, fmt.Errorf("identity: generating signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storedKey{}, fmt.Errorf("identity: encoding signing key: %w", err)
	}
	kid, err := keyID(&priv.PublicKey)
	if err != nil {
		return storedKey{}, err
	}
	return storedKey{KID: kid, Created: now.UTC(), PKCS8: der}, nil
}

// keyID is a prefix of the key's RFC 7638 SHA-256 thumbprint, base64url:
// stable, derived from the public key alone, and short.
func keyID(pub *rsa.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("identity: key thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)[:kidLen], nil
}

// install parses rec and makes it this process's keyring.
func (s *Service) install(rec keyringRecord, version int64, now time.Time) error {
	if len(rec.Keys) == 0 {
		return errors.New("identity: the keyring is empty")
	}
	// Cleared before reading rec's keys: a notification that arrives
	// meanwhile marks this keyring stale again.
	s.keysStale.Store(false)
	kr := &keyring{version: version, loaded: now, public: make(map[string]*rsa.PublicKey, len(rec.Keys))}
	for i, k := range rec.Keys {
		parsed, err := x509.ParsePKCS8PrivateKey(k.PKCS8)
		if err != nil {
			return fmt.Errorf("identity: decoding signing key %s: %w", k.KID, err)
		}
		priv, ok := parsed.(*rsa.PrivateKey)
		if !ok {
			return fmt.Errorf("identity: signing key %s is not RSA", k.KID)
		}
		kr.public[k.KID] = &priv.PublicKey
		kr.jwks.Keys = append(kr.jwks.Keys, jose.JSONWebKey{Key: &priv.PublicKey, KeyID: k.KID, Algorithm: string(jose.RS256), Use: "sig"})
		if i == len(rec.Keys)-1 {
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: priv, KeyID: k.KID}},
				(&jose.SignerOptions{}).WithType("JWT"))
			if err != nil {
				return fmt.Errorf("identity: signer for key %s: %w", k.KID, err)
			}
			kr.current = signingKey{kid: k.KID, created: k.Created, signer: signer}
		}
	}
	s.keys.Store(kr)
	return nil
}

// signingKeyring returns the keyring to sign with, refreshing it from the
// store when it is stale and rotating when the current key is due.
func (s *Service) signingKeyring(ctx context.Context) (*keyring, error) {
	kr := s.keys.Load()
	now := s.now()
	fresh := !s.keysStale.Load() && now.Sub(kr.loaded) < keyringTTL && now.Sub(kr.current.created) < s.keyRotation
	if fresh || now.UnixNano() < s.keyRetry.Load() {
		return kr, nil
	}
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if kr2 := s.keys.Load(); kr2 != kr {
		return kr2, nil // refreshed while we waited
	}
	if err := s.rotateLocked(ctx); err != nil {
		// Keep signing with the keyring we have: a store hiccup must not
		// stop issuance, and the key stays published for its retention.
		s.log.WarnContext(ctx, "identity: refreshing the signing keyring failed", "err", err)
		s.keyRetry.Store(now.Add(keyRetryDelay).UnixNano())
		return kr, nil
	}
	return s.keys.Load(), nil
}

// publicKey returns the verification key named kid. An unknown kid makes
// at most one store read per kidMissInterval per process.
func (s *Service) publicKey(ctx context.Context, kid string) (*rsa.PublicKey, bool) {
	if k, ok := s.keys.Load().public[kid]; ok {
		return k, true
	}
	now := s.now().UnixNano()
	last := s.lastKidMiss.Load()
	if now-last < int64(kidMissInterval) || !s.lastKidMiss.CompareAndSwap(last, now) {
		return nil, false
	}
	rec, version, err := s.readKeyring(ctx)
	if err != nil || version == 0 {
		return nil, false
	}
	if version != s.keys.Load().version {
		s.keyMu.Lock()
		err = s.install(rec, version, s.now())
		s.keyMu.Unlock()
		if err != nil {
			s.log.WarnContext(ctx, "identity: reloading the keyring failed", "err", err)
			return nil, false
		}
	}
	k, ok := s.keys.Load().public[kid]
	return k, ok
}

// JWKS returns the public signing keys: the current one and those retired
// keys whose tokens may still be valid.
func (s *Service) JWKS(ctx context.Context) (jose.JSONWebKeySet, error) {
	kr, err := s.signingKeyring(ctx)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	return kr.jwks, nil
}
