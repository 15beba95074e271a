// Package mail owns mailboxes and their messages: the Exchange data that
// Customer Key protects. A mailbox has a mailbox key (its scope key), kept
// only wrapped by the policy key of the mailbox's effective data encryption
// policy (its own Exchange policy if one is assigned, else the tenant's
// multi-workload policy, else the service-managed default); every message
// has its own AES-256 data key, wrapped by the mailbox key, and is stored
// sealed under it. A background job rewraps mailbox keys whose policy
// changed (Kick, Run, Sweep) and reports its progress to dep (Progress);
// PurgePolicy destroys every mailbox under a purged policy.
//
// A mailbox key is unwrapped through dep for each operation and wiped when
// the operation ends; nothing here caches it, so a revocation takes effect
// as soon as dep's policy-key cache lets it. User requests unwrap with a
// user purpose (and fail with dep's error once the root keys are revoked);
// only the rewrap job unwraps as system work.
//
// Of its own level it imports dep (the policy service, reached only through
// the interface Policies declared here, and the PolicyRef, Purpose and
// Workload types of its contract), envelope (the sealed format of data keys
// and messages), directory (Caller, Tenant, User, the role ids and the
// service plans of licences, read through the interface Directory) and
// workload/scope (who administers mailboxes, how their changes are audited,
// and the rewrap job that moves mailbox keys onto their effective policy:
// what it shares with files). Below that it uses errkind, secret, the
// storage port and audit. It owns the storage prefix "mail/" and records
// every mailbox change in the tenant's audit log in the same transaction.
// It must not import net/http or any storage implementation.
package mail

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
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
	// Effective returns the ref a new or unassigned scope of workload w is
	// wrapped under: the assigned multi-workload policy, else the
	// service-managed default.
	Effective(ctx context.Context, tenantID string, w dep.Workload) (dep.PolicyRef, error)
	// ExchangePolicy resolves a Set-Mailbox -DataEncryptionPolicy argument
	// (name or id); it refuses disabled, purge-requested and foreign
	// policies.
	ExchangePolicy(ctx context.Context, tenantID, identity string) (dep.PolicyRef, error)
	// Current returns the current version of a policy.
	Current(ctx context.Context, tenantID, policyID string) (dep.PolicyRef, error)
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

// Limits.
const (
	// MaxMessageSize bounds a message: its body plus subject and addresses.
	MaxMessageSize = 4 << 20
	// MaxSubjectLen bounds a subject, in bytes.
	MaxSubjectLen = 998
	// MaxRecipients bounds the To list, as Exchange's default recipient limit.
	MaxRecipients = 500
)

// Options configures a Service. Store, Policies and Directory are required.
type Options struct {
	Store     storage.Backend
	Policies  Policies
	Directory Directory
	// Audit records mailbox changes; nil records nothing (tests).
	Audit *audit.Log
	// Log receives the failures of background rewrap work; nil discards.
	Log  *slog.Logger
	Now  func() time.Time // default time.Now
	Rand io.Reader        // ids; default crypto/rand
}

// Service owns mailboxes and messages. It is safe for concurrent use.
type Service struct {
	store storage.Backend
	dep   Policies
	dir   Directory
	audit scope.Audit
	log   *slog.Logger
	now   func() time.Time
	rand  io.Reader

	idMu   sync.Mutex
	lastMs int64  // the millisecond of the last message id
	seq    uint16 // the counter within it

	rewrapper *scope.Rewrapper[mailboxRecord]
}

// New returns a Service. It panics when a required option is missing,
// which is a wiring mistake.
func New(o Options) *Service {
	if o.Store == nil || o.Policies == nil || o.Directory == nil {
		panic("mail: Options.Store, Policies and Directory are required")
	}
	s := &Service{store: o.Store, dep: o.Policies, dir: o.Directory, log: o.Log, now: o.Now, rand: o.Rand}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.audit = scope.Audit{Log: o.Audit, Warn: s.log, Scope: "mailbox"}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	s.rewrapper = s.newRewrapper()
	return s
}

// Workload is dep.Mail: the workload whose scopes this package keeps.
func (s *Service) Workload() dep.Workload { return dep.Mail }

// Storage layout; tenant, mailbox and message ids are lowercase GUIDs.
//
//	mail/mbx/{tid}/{id}          -> mailboxRecord
//	mail/smtp/{tid}/{address}    -> mailbox id (address lowercased)
//	mail/owner/{tid}/{userId}    -> mailbox id (UserMailbox, MailUser)
//	mail/stat/{tid}/{id}         -> stats
//	mail/msg/{tid}/{mbx}/{id}    -> messageRecord (wrapped data key, sealed header)
//	mail/body/{tid}/{mbx}/{id}   -> the sealed body, raw
//
// Bodies are records of their own so that listing messages never loads
// them; stats are records of their own so that message writes never race
// the rewrap job's compare-and-set on the mailbox record.
const (
	pfx    = "mail/"
	kMbx   = pfx + "mbx/"
	kSMTP  = pfx + "smtp/"
	kOwner = pfx + "owner/"
	kStat  = pfx + "stat/"
	kMsg   = pfx + "msg/"
	kBody  = pfx + "body/"
)

// Errors.
var (
	ErrMailboxNotFound = errkind.New(errkind.NotFound, "the mailbox was not found").WithCode("ManagementObjectNotFound")
	ErrMessageNotFound = errkind.New(errkind.NotFound, "the message was not found").WithCode("ItemNotFound")
)

func lower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// newID returns a random GUID.
func (s *Service) newID() (string, error) {
	u, err := uuid.NewRandomFromReader(s.rand)
	if err != nil {
		return "", fmt.Errorf("mail: reading random: %w", err)
	}
	return u.String(), nil
}

// newTimeID returns a UUIDv7 (RFC 9562) from the injected clock, so that
// the ids of a mailbox's messages, and with them its storage keys, sort in
// the order the messages arrived. Within one millisecond the 12 bits after
// the version count up (RFC 9562 §6.2, method 1), and a clock that steps
// back keeps the last millisecond, so the ids this process makes never go
// backwards.
func (s *Service) newTimeID() (string, error) {
	var u uuid.UUID
	if _, err := io.ReadFull(s.rand, u[8:]); err != nil {
		return "", fmt.Errorf("mail: reading random: %w", err)
	}
	s.idMu.Lock()
	ms := max(s.now().UnixMilli(), s.lastMs)
	if ms == s.lastMs {
		s.seq++
		if s.seq > 0xfff {
			ms, s.seq = ms+1, 0
		}
	} else {
		s.seq = 0
	}
	s.lastMs = ms
	seq := s.seq
	s.idMu.Unlock()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(ms))
	copy(u[:6], b[2:])
	binary.BigEndian.PutUint16(u[6:], 0x7000|seq) // version 7, then the counter
	u[8] = 0x80 | u[8]&0x3f                       // variant RFC 9562
	return u.String(), nil
}

func isGUID(s string) bool { return directory.IsGUID(s) }

// notFound turns storage.ErrNotFound into the domain's error.
func notFound(err, domainErr error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return domainErr
	}
	return err
}
