package identity

import (
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
)

// maxTokenLen bounds what Verify parses; our tokens are about 1.5 KiB.
const maxTokenLen = 16 << 10

// verifiedToken is a token whose signature and fixed claims were checked;
// the time and audience checks are repeated on every use.
type verifiedToken struct {
	p         Principal
	notBefore time.Time
	issuedAt  time.Time
}

// Verify checks an access token for surface sf and returns its subject.
// In the common case it reads nothing from the store: keys, verified
// tokens and known tenants are cached in memory (bounded), and a token
// sent again on the same client connection (WithConnectionMemo) is not
// even hashed. Every failure
// is errkind.Unauthenticated with Code "invalid_token" and a message that
// says what is wrong, never the token.
func (s *Service) Verify(ctx context.Context, token string, sf Surface) (Principal, error) {
	if token == "" {
		return Principal{}, errInvalidToken("no access token was presented")
	}
	if len(token) > maxTokenLen {
		return Principal{}, errInvalidToken("the token is longer than %d bytes", maxTokenLen)
	}
	now := s.now()
	memo, _ := ctx.Value(connMemoKey{}).(*connMemo)
	vt, ok := memo.get(token)
	if !ok {
		cacheKey := sha256.Sum256([]byte(token))
		if vt, ok = s.verified.get(cacheKey, now); !ok {
			var err error
			if vt, err = s.verifySignature(ctx, token); err != nil {
				return Principal{}, err
			}
			// Cached until expiry plus skew; the time checks below still run.
			s.verified.put(cacheKey, vt, vt.p.ExpiresAt.Add(ClockSkew), now)
		}
		memo.put(token, vt)
	}
	p := vt.p
	switch {
	case !now.Before(p.ExpiresAt.Add(ClockSkew)):
		return Principal{}, errInvalidToken("the token has expired (at %s); request a new one", p.ExpiresAt.UTC().Format(time.RFC3339))
	case now.Add(ClockSkew).Before(vt.notBefore):
		return Principal{}, errInvalidToken("the token is not valid yet (nbf %s)", vt.notBefore.UTC().Format(time.RFC3339))
	case now.Add(ClockSkew).Before(vt.issuedAt):
		return Principal{}, errInvalidToken("the token was issued in the future (iat %s)", vt.issuedAt.UTC().Format(time.RFC3339))
	}
	if !s.acceptsAudience(sf, p.Audience) {
		want := s.audiences(sf)
		return Principal{}, errInvalidToken("the token's audience %s is not accepted by %s; request a token for %s/.default",
			clip(p.Audience), sf, strings.TrimSuffix(want[0], "/"))
	}
	if err := s.tenantExists(ctx, p.TenantID, now); err != nil {
		return Principal{}, err
	}
	return p, nil
}

func (s *Service) acceptsAudience(sf Surface, aud string) bool {
	for _, a := range s.audiences(sf) {
		if sameResource(a, aud) {
			return true
		}
	}
	return false
}

// verifySignature parses the token, checks its signature with one of our
// keys and its fixed claims (issuer, tenant, version), and returns it.
func (s *Service) verifySignature(ctx context.Context, token string) (verifiedToken, error) {
	var vt verifiedToken
	// Only RS256: "none", HS* (a public key used as an HMAC secret) and
	// everything else fail to parse.
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		if strings.Count(token, ".") == 2 {
			return vt, errInvalidToken("the token is not signed with RS256 or is malformed").withCause(err)
		}
		return vt, errInvalidToken("the token is not a JWT").withCause(err)
	}
	if len(tok.Headers) != 1 || tok.Headers[0].KeyID == "" {
		return vt, errInvalidToken("the token names no signing key (kid)")
	}
	key, ok := s.publicKey(ctx, tok.Headers[0].KeyID)
	if !ok {
		return vt, errInvalidToken("the token was not signed by a key of this server (unknown kid)")
	}
	var std jwt.Claims
	var ac accessClaims
	if err := tok.Claims(key, &std, &ac); err != nil {
		if errors.Is(err, jose.ErrCryptoFailure) {
			return vt, errInvalidToken("the token's signature is not valid")
		}
		return vt, errInvalidToken("the token's claims are malformed").withCause(err)
	}
	if std.Expiry == nil || std.IssuedAt == nil {
		return vt, errInvalidToken("the token lacks exp or iat")
	}
	if !directory.IsGUID(ac.TenantID) {
		return vt, errInvalidToken("the token's tenant (tid) is not a tenant id")
	}
	if std.Issuer != s.Issuer(ac.TenantID) {
		return vt, errInvalidToken("the token's issuer %s is not this server's issuer for tenant %s (%s)",
			clip(std.Issuer), ac.TenantID, s.Issuer(ac.TenantID))
	}
	if ac.Version != "2.0" || len(std.Audience) != 1 || ac.ObjectID == "" || ac.AppID == "" {
		return vt, errInvalidToken("the token is not a version 2.0 access token of this server")
	}
	typ := PrincipalType(ac.IDType)
	name := ac.AppDisplayName
	switch typ {
	case AppPrincipal:
	case UserPrincipal:
		name = ac.UPN
	default:
		return vt, errInvalidToken("the token's idtyp must be app or user")
	}
	vt.p = Principal{TenantID: ac.TenantID, ObjectID: ac.ObjectID, AppID: ac.AppID, Type: typ, Name: name,
		Audience: std.Audience[0], ExpiresAt: std.Expiry.Time(), TokenID: std.ID}
	vt.issuedAt = std.IssuedAt.Time()
	vt.notBefore = std.NotBefore.Time() // zero when absent
	return vt, nil
}

// tenantExists checks the token's tenant, caching positive answers for a
// minute so the hot path does not read the directory per request.
func (s *Service) tenantExists(ctx context.Context, tid string, now time.Time) error {
	if _, ok := s.tenantsKnown.get(tid, now); ok {
		return nil
	}
	_, err := s.dir.Tenant(ctx, tid)
	if errors.Is(err, directory.ErrTenantNotFound) {
		return errInvalidToken("the token's tenant %s does not exist", tid)
	}
	if err != nil {
		return errkind.Wrap(errkind.Unavailable, "the directory is unavailable; retry later", err)
	}
	s.tenantsKnown.put(tid, struct{}{}, now.Add(tenantCacheTTL), now)
	return nil
}

// connMemo is the last token verified on one client connection. Clients
// send the same token with every request of a connection until it
// expires, and comparing it with the one verified before costs a few
// nanoseconds where hashing it for the shared cache costs a microsecond.
// It holds what the shared cache holds (a token whose signature was
// checked), so Verify's time, audience and tenant checks still run on
// every use. The comparison is not constant-time: what varies with it is
// how long a prefix matches, and a token's prefix is its public header
// and claims; its signature, at the end, cannot be guessed a block at a
// time.
type connMemo struct {
	mu    sync.Mutex // HTTP/2 serves a connection's requests concurrently
	token string
	vt    verifiedToken
}

type connMemoKey struct{}

// WithConnectionMemo returns ctx with room for the last token verified on
// one client connection: an HTTP server sets it as http.Server.ConnContext.
func WithConnectionMemo(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connMemoKey{}, &connMemo{})
}

func (m *connMemo) get(token string) (verifiedToken, bool) {
	if m == nil {
		return verifiedToken{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.token == "" || m.token != token {
		return verifiedToken{}, false
	}
	return m.vt, true
}

func (m *connMemo) put(token string, vt verifiedToken) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.token, m.vt = token, vt
	m.mu.Unlock()
}
