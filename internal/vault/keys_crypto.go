package vault

import (
	"context"
	"crypto"
	"slices"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/kcrypto"
	"github.com/customerkey/customerkey/internal/secret"
)

// OpResult is the outcome of Encrypt, WrapKey and Sign: the version used
// (the kid the REST surface returns) and the ciphertext or signature.
type OpResult struct {
	Ref   KeyRef
	Value []byte
}

// PlainResult is the outcome of Decrypt and UnwrapKey. The caller owns
// Value and should Wipe it once sent.
type PlainResult struct {
	Ref   KeyRef
	Value secret.Bytes
}

// VerifyResult is the outcome of Verify.
type VerifyResult struct {
	Ref   KeyRef
	Valid bool
}

// Algorithms by key type and operation class.
var (
	rsaEncAlgs  = []string{"RSA-OAEP", "RSA-OAEP-256", "RSA1_5"}
	rsaSignAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	ecSignAlg   = map[string]string{"P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "P-256K": "ES256K"}
)

// digestLen is the digest length a signature algorithm signs.
func digestLen(alg string) int {
	switch {
	case strings.HasSuffix(alg, "256"), alg == "ES256K":
		return 32
	case strings.HasSuffix(alg, "384"):
		return 48
	case strings.HasSuffix(alg, "512"):
		return 64
	}
	return 0
}

func canonAlg(alg string, valid []string) (string, bool) {
	for _, a := range valid {
		if strings.EqualFold(a, alg) {
			return a, true
		}
	}
	return "", false
}

// checkAlg checks that alg suits op on version m and returns it canonical.
func checkAlg(m versionRecord, op, alg string) (string, error) {
	var valid []string
	switch base := baseType(m.Type); {
	case base == KeyTypeRSA && (op == OpSign || op == OpVerify):
		valid = rsaSignAlgs
	case base == KeyTypeRSA:
		valid = rsaEncAlgs
	case base == KeyTypeEC && (op == OpSign || op == OpVerify):
		valid = []string{ecSignAlg[m.Curve]}
	}
	if alg == "" {
		return "", errBadParameter("The algorithm (alg) is required.")
	}
	c, ok := canonAlg(alg, valid)
	if !ok {
		kind := m.Type
		if baseType(m.Type) == KeyTypeEC {
			kind = m.Type + " " + m.Curve
		}
		if len(valid) == 0 {
			return "", errBadParameter("Operation %s is not supported by %s keys.", op, kind)
		}
		return "", errBadParameter("The algorithm '%s' is not valid for operation %s with an %s key; valid: %s.",
			alg, op, kind, strings.Join(valid, ", "))
	}
	return c, nil
}

// checkUse applies a version's state to operation op at now, in this
// order: enabled, the nbf/exp window, key_ops. The window follows Key
// Vault's documented rule: outside [nbf, exp) encrypt, wrapKey and sign
// are refused, while decrypt, unwrapKey and verify still work, so that
// data protected while the key was valid stays recoverable (a key
// expiring must not destroy data; disabling it is the way to stop all use).
func checkUse(m versionRecord, op string, now time.Time) error {
	if !m.Enabled {
		return errkind.Errorf(errkind.PermissionDenied, "Operation %s is not allowed on a disabled key.", op).
			WithCode("KeyDisabled")
	}
	if op == OpEncrypt || op == OpWrapKey || op == OpSign {
		if m.NotBefore != nil && now.Before(*m.NotBefore) {
			return errkind.Errorf(errkind.PermissionDenied, "Operation %s is not allowed before the key's activation "+
				"date (nbf) %s.", op, m.NotBefore.UTC().Format(time.RFC3339)).WithCode("KeyNotYetValid")
		}
		if m.Expires != nil && !now.Before(*m.Expires) {
			return errkind.Errorf(errkind.PermissionDenied, "Operation %s is not allowed on an expired key: it expired "+
				"at %s.", op, m.Expires.UTC().Format(time.RFC3339)).WithCode("KeyExpired")
		}
	}
	if !slices.Contains(m.Ops, op) {
		return errkind.Errorf(errkind.PermissionDenied, "Operation %s is not permitted on this key: it is not in the "+
			"key's key_ops (%s).", op, strings.Join(m.Ops, ", ")).WithCode("OperationNotAllowed")
	}
	return nil
}

// use resolves the version for op and checks it may do op with alg. The
// entry is held: release it when done.
func (s *Service) use(ctx context.Context, vault, name, version, op, alg string) (*cachedVersion, KeyRef, string, error) {
	v, _, err := s.keyVault(ctx, vault)
	if err != nil {
		return nil, KeyRef{}, "", err
	}
	e, meta, err := s.version(ctx, v, name, version)
	if err != nil {
		return nil, KeyRef{}, "", err
	}
	r := ref(v, meta.Name, meta.Version)
	if err := checkUse(meta, op, s.now()); err != nil {
		s.keys.release(e)
		return nil, r, "", err
	}
	c, err := checkAlg(meta, op, alg)
	if err != nil {
		s.keys.release(e)
		return nil, r, "", err
	}
	return e, r, c, nil
}

// opErr classifies a failure of the crypto itself. Wrong key, bad padding
// and damaged ciphertext give one message (STYLE habit 4).
func opErr(op string, err error) error {
	if e, ok := errkind.As(err); ok && e.Kind != errkind.Internal {
		if e.Code == "" {
			return e.WithCode("BadParameter")
		}
		return e
	}
	switch op {
	case OpDecrypt, OpUnwrapKey:
		return errkind.Wrap(errkind.Invalid, "The operation failed: the value could not be decrypted with this key "+
			"and algorithm.", err).WithCode("BadParameter")
	}
	return err
}

func (s *Service) encrypt(ctx context.Context, op, vault, name, version, alg string, plaintext []byte) (OpResult, error) {
	e, r, alg, err := s.use(ctx, vault, name, version, op, alg)
	if err != nil {
		return OpResult{}, err
	}
	defer s.keys.release(e)
	ct, err := kcrypto.Encrypt(e.signer.Public(), alg, plaintext, s.rand)
	if err != nil {
		return OpResult{}, opErr(op, err)
	}
	return OpResult{Ref: r, Value: ct}, nil
}

func (s *Service) decrypt(ctx context.Context, op, vault, name, version, alg string, ciphertext []byte) (PlainResult, error) {
	e, r, alg, err := s.use(ctx, vault, name, version, op, alg)
	if err != nil {
		return PlainResult{}, err
	}
	defer s.keys.release(e)
	var pt secret.Bytes
	if k, ok := e.signer.(*hsmKey); ok {
		pt, err = s.hsmDecrypt(ctx, k, alg, ciphertext)
	} else {
		pt, err = kcrypto.Decrypt(e.signer.(crypto.Signer), alg, ciphertext)
	}
	if err != nil {
		return PlainResult{}, opErr(op, err)
	}
	return PlainResult{Ref: r, Value: pt}, nil
}

// Encrypt encrypts plaintext with version of key name (the latest when
// version is empty) using alg (RSA-OAEP, RSA-OAEP-256, RSA1_5). It fails
// with a PermissionDenied error coded KeyDisabled, KeyNotYetValid,
// KeyExpired or OperationNotAllowed when the key's state forbids it (see
// checkUse), NotFound KeyNotFound when there is no such key or version, and
// Invalid BadParameter for an algorithm that does not suit the key. It reads
// the store only when its cache is stale.
func (s *Service) Encrypt(ctx context.Context, vault, name, version, alg string, plaintext []byte) (OpResult, error) {
	return s.encrypt(ctx, OpEncrypt, vault, name, version, alg, plaintext)
}

// Decrypt decrypts ciphertext, like Encrypt.
func (s *Service) Decrypt(ctx context.Context, vault, name, version, alg string, ciphertext []byte) (PlainResult, error) {
	return s.decrypt(ctx, OpDecrypt, vault, name, version, alg, ciphertext)
}

// WrapKey wraps key (a symmetric key) like Encrypt, as operation wrapKey.
func (s *Service) WrapKey(ctx context.Context, vault, name, version, alg string, key []byte) (OpResult, error) {
	return s.encrypt(ctx, OpWrapKey, vault, name, version, alg, key)
}

// UnwrapKey unwraps a wrapped key like Decrypt, as operation unwrapKey.
func (s *Service) UnwrapKey(ctx context.Context, vault, name, version, alg string, wrapped []byte) (PlainResult, error) {
	return s.decrypt(ctx, OpUnwrapKey, vault, name, version, alg, wrapped)
}

// Sign signs digest with alg (RS/PS 256, 384, 512 for RSA; ES256, ES384,
// ES512 or ES256K by curve for EC; the digest must have the algorithm's
// hash length). EC signatures are r||s, as JWS has them.
func (s *Service) Sign(ctx context.Context, vault, name, version, alg string, digest []byte) (OpResult, error) {
	e, r, alg, err := s.use(ctx, vault, name, version, OpSign, alg)
	if err != nil {
		return OpResult{}, err
	}
	defer s.keys.release(e)
	if err := checkDigest(alg, digest); err != nil {
		return OpResult{}, err
	}
	var sig []byte
	if k, ok := e.signer.(*hsmKey); ok {
		sig, err = s.hsmSign(ctx, k, alg, digest)
	} else {
		sig, err = kcrypto.Sign(e.signer.(crypto.Signer), alg, digest, s.rand)
	}
	if err != nil {
		return OpResult{}, opErr(OpSign, err)
	}
	return OpResult{Ref: r, Value: sig}, nil
}

// Verify checks signature over digest with alg. A signature that does not
// verify is Valid false, not an error.
func (s *Service) Verify(ctx context.Context, vault, name, version, alg string, digest, signature []byte) (VerifyResult, error) {
	e, r, alg, err := s.use(ctx, vault, name, version, OpVerify, alg)
	if err != nil {
		return VerifyResult{}, err
	}
	defer s.keys.release(e)
	if err := checkDigest(alg, digest); err != nil {
		return VerifyResult{}, err
	}
	ok, err := kcrypto.Verify(e.signer.Public(), alg, digest, signature)
	if err != nil {
		return VerifyResult{}, opErr(OpVerify, err)
	}
	return VerifyResult{Ref: r, Valid: ok}, nil
}

func checkDigest(alg string, digest []byte) error {
	if n := digestLen(alg); n != 0 && len(digest) != n {
		return errBadParameter("The digest for %s must be %d bytes; %d were given.", alg, n, len(digest))
	}
	return nil
}
