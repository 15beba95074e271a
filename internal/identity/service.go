package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/notify"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
)

// Directory is what the token service reads from the directory. The
// *directory.Directory satisfies it; the interface keeps this package's
// dependency to the calls it makes.
type Directory interface {
	ResolveTenant(ctx context.Context, idOrDomain string) (directory.Tenant, error)
	Tenant(ctx context.Context, id string) (directory.Tenant, error)
	Application(ctx context.Context, appID string) (directory.Application, error)
	VerifyClientSecret(ctx context.Context, appID string, s secret.String) (directory.Application, error)
	CertificateFor(ctx context.Context, appID, x5t, x5tS256 string) (*x509.Certificate, error)
	ServicePrincipalByAppID(ctx context.Context, tid, appID string) (directory.ServicePrincipal, error)
	VerifyPassword(ctx context.Context, tid, upn string, password secret.String) (directory.User, error)
	User(ctx context.Context, c directory.Caller, tid, idOrUPN string) (directory.User, error)
}

var _ Directory = (*directory.Directory)(nil)

// Options configures a Service.
type Options struct {
	Store     storage.Backend
	Directory Directory
	// Audit receives a record of every token issued and every refusal.
	// Nil disables auditing (tests of other packages only).
	Audit *audit.Log
	// Recorder, when set, writes the records that commit with no other
	// change (client-credentials and first-party tokens, refusals) with
	// group commit instead of a store transaction each; the server passes
	// its audit.Batcher. Records that must commit with a grant still go
	// through Audit in the grant's transaction.
	Recorder Recorder
	Log      *slog.Logger     // default: discard
	Now      func() time.Time // default time.Now
	Rand     io.Reader        // default crypto/rand
	// PublicURL is the server's base URL without a trailing slash, e.g.
	// "https://localhost:8443". Issuers and endpoints are built from it.
	PublicURL string
	// VaultResource is the resource the key vault challenge names, e.g.
	// "https://vault.localhost:8443".
	VaultResource string
	// TokenLifetime is the lifetime of access and ID tokens; default 1h.
	TokenLifetime time.Duration
	// KeyRotation is the age after which a new signing key is made;
	// default 24h.
	KeyRotation time.Duration
	// DeviceCodeInterval is the polling interval a device code asks for;
	// default 5s. Polling faster gets slow_down.
	DeviceCodeInterval time.Duration
	// ThrottleFailures failed sign-ins within ThrottleWindow lock a
	// client, a user or an address for the rest of the window. Defaults:
	// 10 and 5 minutes.
	ThrottleFailures int
	ThrottleWindow   time.Duration
	// Bus tells the other nodes on the store that this one rotated the
	// signing keys, and this one that they did, so that every node
	// publishes and signs with the new key at once instead of within a
	// minute. nil means this Service is alone.
	Bus notify.Bus
}

// Defaults and fixed lifetimes.
const (
	DefaultTokenLifetime = time.Hour
	DefaultKeyRotation   = 24 * time.Hour
	// ClockSkew is tolerated on every time check of a token or assertion.
	ClockSkew = 5 * time.Minute
	// RefreshTokenLifetime is Entra ID's default inactivity lifetime.
	RefreshTokenLifetime = 90 * 24 * time.Hour
	// DeviceCodeLifetime and AuthCodeLifetime are Entra ID's.
	DeviceCodeLifetime = 15 * time.Minute
	AuthCodeLifetime   = 10 * time.Minute
	// MaxAssertionLifetime bounds how far ahead a client assertion may
	// expire (plus ClockSkew), so the replay set stays small.
	MaxAssertionLifetime = 10 * time.Minute

	defaultDeviceInterval   = 5 * time.Second
	defaultThrottleFailures = 10
	defaultThrottleWindow   = 5 * time.Minute
)

// Service is the token service. It is safe for concurrent use, and several
// processes may share one store.
type Service struct {
	store     storage.Backend
	dir       Directory
	audit     *audit.Log
	recorder  Recorder
	log       *slog.Logger
	now       func() time.Time
	rand      io.Reader
	publicURL string
	vaultRes  string

	tokenLife    time.Duration
	keyRotation  time.Duration
	devInterval  time.Duration
	throttle     *throttle
	keys         atomic.Pointer[keyring]
	keyMu        sync.Mutex // serializes reloads and rotations in this process
	bus          notify.Bus
	lastKidMiss  atomic.Int64                                    // unix nanos of the last store read for an unknown kid
	keyRetry     atomic.Int64                                    // unix nanos before which a failed refresh is not retried
	keysStale    atomic.Bool                                     // another node rotated: read the keyring before the next use
	verified     *boundedCache[[sha256.Size]byte, verifiedToken] // by SHA-256 of the token
	tenantsKnown *boundedCache[string, struct{}]
}

// New returns a Service with its signing keys loaded, creating the first
// key when the store has none.
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Store == nil || o.Directory == nil {
		return nil, errors.New("identity: Options.Store and Options.Directory are required")
	}
	u, err := url.Parse(o.PublicURL)
	if err != nil || u.Scheme == "" || u.Host == "" || strings.HasSuffix(o.PublicURL, "/") || u.Path != "" {
		return nil, fmt.Errorf("identity: Options.PublicURL %q must be an absolute URL without a path or trailing slash", o.PublicURL)
	}
	s := &Service{store: o.Store, dir: o.Directory, audit: o.Audit, recorder: o.Recorder, log: o.Log, now: o.Now, rand: o.Rand,
		publicURL: o.PublicURL, vaultRes: strings.TrimSuffix(o.VaultResource, "/"),
		tokenLife: o.TokenLifetime, keyRotation: o.KeyRotation, devInterval: o.DeviceCodeInterval}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.tokenLife <= 0 {
		s.tokenLife = DefaultTokenLifetime
	}
	if s.keyRotation <= 0 {
		s.keyRotation = DefaultKeyRotation
	}
	if s.devInterval <= 0 {
		s.devInterval = defaultDeviceInterval
	}
	failures, window := o.ThrottleFailures, o.ThrottleWindow
	if failures <= 0 {
		failures = defaultThrottleFailures
	}
	if window <= 0 {
		window = defaultThrottleWindow
	}
	s.throttle = newThrottle(failures, window, maxThrottleEntries)
	bus := o.Bus
	if bus == nil {
		bus = notify.Nop{}
	}
	s.bus = bus
	s.bus.Subscribe(topicKeys, func(string) { s.keysStale.Store(true) })
	s.verified = newBoundedCache[[sha256.Size]byte, verifiedToken](maxVerifiedCache)
	s.tenantsKnown = newBoundedCache[string, struct{}](maxTenantCache)
	if err := s.RotateKeysIfDue(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Now is the service's clock, for surfaces that stamp responses.
func (s *Service) Now() time.Time { return s.now() }

// PublicURL is the base URL the service issues tokens under.
func (s *Service) PublicURL() string { return s.publicURL }

// Issuer is the issuer of tokens of tenant tid.
func (s *Service) Issuer(tid string) string { return s.publicURL + "/" + tid + "/v2.0" }

// TokenEndpoint is the token endpoint URL of a tenant as named in a path.
func (s *Service) TokenEndpoint(tenant string) string {
	return s.publicURL + "/" + tenant + "/oauth2/v2.0/token"
}

// DeviceLoginURL is where a user enters a device code.
func (s *Service) DeviceLoginURL() string { return s.publicURL + "/devicelogin" }

// ResolveTenant finds a tenant by GUID or domain, for the discovery
// documents. An unknown tenant is errkind.NotFound with Code
// "invalid_tenant".
func (s *Service) ResolveTenant(ctx context.Context, idOrDomain string) (directory.Tenant, error) {
	t, err := s.dir.ResolveTenant(ctx, idOrDomain)
	if errors.Is(err, directory.ErrTenantNotFound) {
		return t, newErr(errkind.NotFound, "invalid_tenant", 90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", clip(idOrDomain))
	}
	return t, err
}

// tenantForGrant resolves the tenant of a token-endpoint style request;
// there Entra answers an unknown tenant with 400 invalid_request.
func (s *Service) tenantForGrant(ctx context.Context, idOrDomain string) (directory.Tenant, error) {
	t, err := s.dir.ResolveTenant(ctx, idOrDomain)
	if errors.Is(err, directory.ErrTenantNotFound) {
		return t, newErr(errkind.Invalid, "invalid_request", 90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", clip(idOrDomain))
	}
	if err != nil {
		return t, errkind.Wrap(errkind.Unavailable, "the directory is unavailable; retry later", err)
	}
	return t, nil
}

// clip bounds caller-supplied text echoed in messages and audit records.
func clip(s string) string {
	const max = 128
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
