// Package files owns SharePoint sites and the files in them: the SharePoint
// and OneDrive data that Customer Key protects. A site has a site key (its
// scope key), kept only wrapped by the policy key of its geo's effective
// data encryption policy (the geo's SharePoint policy, whose key is the
// tenant intermediate key, else what dep says applies); a file is split
// into chunks, each sealed under its own fresh AES-256 chunk key, and the
// chunk keys are wrapped by the site key. A background job rewraps site keys
// whose geo policy changed (Kick, Run, Sweep) and reports its progress per
// geo to dep (Progress); PurgePolicy destroys every site under a purged
// policy.
//
// A site key is unwrapped through dep for each operation and wiped when the
// operation ends; nothing here caches it, so a revocation takes effect as
// soon as dep's policy-key cache lets it. User requests unwrap with a user
// purpose (and fail with dep's error once the root keys are revoked); only
// the rewrap job unwraps as system work.
//
// As in SharePoint, Customer Key covers file content, not metadata: site
// URLs, file paths and sizes are plain records. The storage barrier encrypts
// record values at rest, but not storage keys, and site URLs and file paths
// are part of storage keys: they are on disk in the clear (and a deleted
// one may linger in the store's free pages). Keyed-hash indexes would close
// that; they are not built yet.
//
// Of its own level it imports dep (the policy service, reached only through
// the interface Policies declared here, and the PolicyRef, Purpose and
// Workload types of its contract), envelope (the sealed format of chunk
// keys and chunks), directory (Caller, Tenant, User and the role ids, read
// through the interface Directory) and workload/scope (who administers
// sites, how their changes are audited, and the rewrap job that moves site
// keys onto their geo's effective policy: what it shares with mail). Below
// that it uses errkind, secret, the storage port and audit. It owns the
// storage prefix "files/" and records every site change in the tenant's
// audit log in the same transaction. It must not import net/http or any
// storage implementation.
package files

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/workload/scope"
)

// Policies is what this package asks of the data encryption policies.
// *dep.Service implements it.
type Policies interface {
	// EffectiveGeo returns the ref the sites of a geo are wrapped under.
	EffectiveGeo(ctx context.Context, tenantID, geo string) (dep.PolicyRef, error)
	WrapScopeKey(ctx context.Context, ref dep.PolicyRef, key secret.Bytes, aad []byte) ([]byte, error)
	// UnwrapScopeKey fails for user purposes once the customer revoked the
	// root keys (PermissionDenied, with a message saying so).
	UnwrapScopeKey(ctx context.Context, tenantID string, wrapped []byte, aad []byte, p dep.Purpose) (secret.Bytes, error)
}

// Directory is what this package asks of the directory.
// *directory.Directory implements it.
type Directory interface {
	Tenant(ctx context.Context, id string) (directory.Tenant, error)
	User(ctx context.Context, c directory.Caller, tid, idOrUPN string) (directory.User, error)
	RolesOf(ctx context.Context, tid, principalID string) ([]string, error)
}

var (
	_ Policies   = (*dep.Service)(nil)
	_ Directory  = (*directory.Directory)(nil)
	_ dep.Scopes = (*Service)(nil)
)

// Sizes.
const (
	// DefaultChunkSize is the plaintext size of every chunk but a file's
	// last; MinChunkSize and MaxChunkSize bound Options.ChunkSize.
	DefaultChunkSize = 256 << 10
	MinChunkSize     = 1 << 10
	MaxChunkSize     = 4 << 20
	// DefaultMaxFileSize bounds a file unless Options.MaxFileSize says
	// otherwise; a whole file is written in one transaction, so the bound
	// cannot exceed MaxMaxFileSize.
	DefaultMaxFileSize = 64 << 20
	MaxMaxFileSize     = 256 << 20
	// MaxOwners bounds a site's owners.
	MaxOwners = 100
)

// Options configures a Service. Store, Policies and Directory are required.
type Options struct {
	Store     storage.Backend
	Policies  Policies
	Directory Directory
	// Audit records site changes; nil records nothing (tests).
	Audit *audit.Log
	// Log receives the failures of background rewrap work; nil discards.
	Log *slog.Logger
	// ChunkSize is the plaintext size of a chunk; zero means
	// DefaultChunkSize.
	ChunkSize int
	// MaxFileSize bounds a file; zero means DefaultMaxFileSize.
	MaxFileSize int64
	Now         func() time.Time // default time.Now
	Rand        io.Reader        // ids; default crypto/rand
}

// Service owns sites and files. It is safe for concurrent use.
type Service struct {
	store     storage.Backend
	dep       Policies
	dir       Directory
	audit     scope.Audit
	log       *slog.Logger
	chunkSize int
	maxSize   int64
	now       func() time.Time
	rand      io.Reader

	rewrapper *scope.Rewrapper[siteRecord]
}

// New returns a Service. It panics when a required option is missing or a
// size is out of bounds, which is a wiring mistake.
func New(o Options) *Service {
	if o.Store == nil || o.Policies == nil || o.Directory == nil {
		panic("files: Options.Store, Policies and Directory are required")
	}
	s := &Service{store: o.Store, dep: o.Policies, dir: o.Directory, log: o.Log,
		chunkSize: o.ChunkSize, maxSize: o.MaxFileSize, now: o.Now, rand: o.Rand}
	if s.chunkSize == 0 {
		s.chunkSize = DefaultChunkSize
	}
	if s.maxSize == 0 {
		s.maxSize = DefaultMaxFileSize
	}
	if s.chunkSize < MinChunkSize || s.chunkSize > MaxChunkSize || s.maxSize < 0 || s.maxSize > MaxMaxFileSize {
		panic(fmt.Sprintf("files: Options.ChunkSize must be %d to %d bytes and MaxFileSize at most %d", MinChunkSize, MaxChunkSize, MaxMaxFileSize))
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.audit = scope.Audit{Log: o.Audit, Warn: s.log, Scope: "site"}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	s.rewrapper = s.newRewrapper()
	return s
}

// Workload is dep.Files: the workload whose scopes this package keeps.
func (s *Service) Workload() dep.Workload { return dep.Files }

// Storage layout; tenant, site and chunk ids are lowercase GUIDs.
//
//	files/site/{tid}/{id}              -> siteRecord
//	files/url/{tid}/{url}              -> site id (the normalized URL, lowercased)
//	files/file/{tid}/{site}/{path}     -> fileRecord (path lowercased: paths are case-insensitive)
//	files/chunk/{tid}/{site}/{chunkId} -> one sealed chunk, raw
const (
	pfx    = "files/"
	kSite  = pfx + "site/"
	kURL   = pfx + "url/"
	kFile  = pfx + "file/"
	kChunk = pfx + "chunk/"
)

// Errors.
var (
	ErrSiteNotFound = errkind.New(errkind.NotFound, "the site was not found").WithCode("SiteNotFound")
	ErrFileNotFound = errkind.New(errkind.NotFound, "the file was not found").WithCode("FileNotFound")
)

func lower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func isGUID(s string) bool { return directory.IsGUID(s) }

// newID returns a random GUID.
func (s *Service) newID() (string, error) {
	u, err := uuid.NewRandomFromReader(s.rand)
	if err != nil {
		return "", fmt.Errorf("files: reading random: %w", err)
	}
	return u.String(), nil
}

// notFound turns storage.ErrNotFound into the domain's error.
func notFound(err, domainErr error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return domainErr
	}
	return err
}
