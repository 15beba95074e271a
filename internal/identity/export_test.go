package identity

import (
	"context"

	"github.com/go-jose/go-jose/v4/jwt"
)

// MintForTest signs arbitrary claims with the service's current key, so
// that tests can build tokens the service would never issue (wrong
// issuer, future dates) and check that Verify refuses them.
func MintForTest(s *Service, claims ...any) (string, error) {
	kr, err := s.signingKeyring(context.Background())
	if err != nil {
		return "", err
	}
	b := jwt.Signed(kr.current.signer)
	for _, c := range claims {
		b = b.Claims(c)
	}
	return b.Serialize()
}

// ParseAssertionForTest exposes the first parser of client assertions to
// the fuzz test.
func ParseAssertionForTest(raw string) error {
	_, _, err := parseAssertion(raw)
	return err
}

// VerifiedCacheLen reports the size of the verified-token cache.
func VerifiedCacheLen(s *Service) int { return s.verified.len() }
