// Package app is the composition root: it opens the store behind the
// barrier, builds every domain service and API surface, performs the first
// start (CA, root key, operator tenant, first-party applications,
// operator.json) and serves HTTPS until its context ends. Nothing imports it
// but cmd/customerkey.
package app

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/customerkey/customerkey/internal/akv"
	"github.com/customerkey/customerkey/internal/arm"
	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/barrier"
	"github.com/customerkey/customerkey/internal/ckapi"
	"github.com/customerkey/customerkey/internal/config"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/graph"
	"github.com/customerkey/customerkey/internal/heapgoal"
	"github.com/customerkey/customerkey/internal/hsm"
	"github.com/customerkey/customerkey/internal/httpx"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/notify"
	"github.com/customerkey/customerkey/internal/oauthapi"
	"github.com/customerkey/customerkey/internal/onboarding"
	"github.com/customerkey/customerkey/internal/pki"
	"github.com/customerkey/customerkey/internal/rbac"
	"github.com/customerkey/customerkey/internal/resources"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/vault"
	"github.com/customerkey/customerkey/internal/workload/encryption"
	"github.com/customerkey/customerkey/internal/workload/files"
	"github.com/customerkey/customerkey/internal/workload/mail"
)

// File names in the data directory.
const (
	storeFile   = "customerkey.db"
	rootKeyFile = "barrier.key"
	caFile      = "ca.pem"
)

// operatorTenantName names the operator tenant; its automation application
// is "<name> automation", which is how a lost operator.json is recovered.
const operatorTenantName = "customerkey operator"

// Server is a running customerkey.
type Server struct {
	cfg   config.Config
	log   *slog.Logger
	raw   storage.Backend
	hsm   *hsm.HSM // nil without an HSM, or when it failed to start (see hsmErr)
	store *barrier.Barrier
	audit *audit.Log
	batch *audit.Batcher
	dir   *directory.Directory
	ids   *identity.Service
	rbac  *rbac.Service
	res   *resources.Service
	kv    *vault.Service
	onb   *onboarding.Service
	dep   *dep.Service
	mail  *mail.Service
	files *files.Service
	enc   *encryption.Service
	tls   *tls.Config
	h     http.Handler
	ready atomic.Bool

	// bus carries cache invalidations between the nodes on the store;
	// listen, when set, delivers other nodes' notifications until its
	// context ends (PostgreSQL). jobs decides which node runs the
	// background jobs.
	bus    notify.Bus
	listen func(context.Context) error
	jobs   jobLock

	// hsmErr is why the configured HSM failed to start: premium vaults
	// answer HSM key requests with it.
	hsmErr error

	// Credentials are the operator's, as written to operator.json.
	Credentials config.Credentials
	// CAFile is the absolute path of the CA certificate clients must trust.
	CAFile string

	closeOnce sync.Once
}

// Options tunes a server beyond its configuration; tests use it.
type Options struct {
	// KDF overrides the password hashing cost (tests make it cheap).
	KDF directory.KDFParams
	// DeviceCodeInterval overrides how often device-code clients poll.
	DeviceCodeInterval time.Duration
	// Now overrides the clock of the resource manager (tests of the
	// retention period and soft-delete schedules).
	Now func() time.Time
}

// Open prepares a server: on first start it creates the data directory, the
// root key, the CA and server certificate, the operator tenant with its
// admin application and the first-party applications, and operator.json.
// Later starts reuse all of it.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger, o Options) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("configuration:\n%w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the data directory: %w", err)
	}
	s := &Server{cfg: cfg, log: log, CAFile: filepath.Join(cfg.DataDir, caFile)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.raw, err = openStore(ctx, cfg, log); err != nil {
		return nil, err
	}
	if err := s.openCluster(ctx); err != nil {
		return nil, err
	}
	if err := s.openHSM(ctx); err != nil {
		return nil, err
	}
	sealer, err := s.openSealer(ctx)
	if err != nil {
		return nil, err
	}
	if s.store, err = barrier.Open(ctx, s.raw, sealer, rand.Reader); err != nil {
		return nil, err
	}
	if err := s.setupTLS(ctx); err != nil {
		return nil, err
	}
	al := audit.New(audit.Options{Store: s.store})
	s.audit = al
	// Records that commit with no other change (key operations, tokens)
	// share group commits through the journal; Close drains it.
	s.batch = audit.NewBatcher(al, audit.BatchOptions{Journal: filepath.Join(cfg.DataDir, "audit-journal"), Sealer: s.store})
	s.dir = directory.New(directory.Options{Store: s.store, Audit: al, KDF: o.KDF})
	s.wireResources(cfg, o)
	s.ids, err = identity.New(ctx, identity.Options{
		Store: s.store, Directory: s.dir, Audit: al, Recorder: s.batch, Log: log,
		PublicURL: cfg.PublicURL, VaultResource: cfg.VaultResource(),
		TokenLifetime: cfg.TokenLifetime, KeyRotation: cfg.SigningKeyRotation,
		DeviceCodeInterval: o.DeviceCodeInterval, Bus: s.bus,
	})
	if err != nil {
		return nil, err
	}
	if err := s.bootstrap(ctx); err != nil {
		return nil, err
	}
	if err := s.wirePolicies(cfg, o); err != nil {
		return nil, err
	}
	s.h = s.routes(al)
	return s, nil
}

// wireResources builds the resource manager's domain services, which
// depend on each other through the interfaces each declares.
func (s *Server) wireResources(cfg config.Config, o Options) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	// rbac and resources need to know of vaults, and vaults of resources:
	// the adapters reach s's fields when called, after all are built.
	s.rbac = rbac.New(rbac.Options{Store: s.store, Audit: s.audit, Directory: s.dir, Scopes: scopes{s}, Now: now, Bus: s.bus})
	delay := cfg.FeatureRegistrationDelay
	if delay == 0 {
		delay = -1 // resources reads zero as its default and a negative value as "at once"
	}
	s.res = resources.New(resources.Options{Store: s.store, Audit: s.audit, Directory: s.dir, Now: now,
		Owners: ownerGranter{s.rbac}, Contents: contents{s}, FeatureRegistrationDelay: delay})
	s.kv = vault.New(vault.Options{Store: s.store, Audit: s.audit, Subscriptions: s.res, Locations: s.res, Now: now,
		HSM: s.vaultHSM(), HSMError: s.hsmErr, Bus: s.bus,
		VaultURI: func(name string) string {
			return "https://" + strings.ToLower(name) + "." + cfg.VaultDNSSuffix + portSuffix(cfg.Port()) + "/"
		},
		OnPurge: func(ctx context.Context, tx storage.Tx, v vault.Vault) error {
			return s.rbac.RemoveScopeTx(ctx, tx, v.ResourceID())
		},
	})
}

// wirePolicies builds onboarding, the data encryption policies and the
// workloads whose data they protect. dep reaches root keys through the
// vault API as the workload identities (keyprovider, over HTTPS to this
// server), and the workloads register with dep for rewrap and purge.
func (s *Server) wirePolicies(cfg config.Config, o Options) error {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	s.onb = onboarding.New(onboarding.Options{Store: s.store, Audit: s.audit, Directory: s.dir, Resources: s.res, Vaults: s.kv, RBAC: s.rbac})
	roots, err := s.RootKeys()
	if err != nil {
		return err
	}
	// The configured lifetime is the documented revocation latency: the
	// encryption API keeps unwrapped scope keys for a tenth of it on top of
	// dep's policy key cache, so dep keeps policy keys for the rest.
	life := cfg.PolicyKeyCacheLifetime
	s.dep = dep.New(dep.Options{Store: s.store, Audit: s.audit, Directory: s.dir, Scenarios: s.onb, Vaults: s.kv,
		Subscriptions: s.res, RootKeys: roots, CacheLifetime: life - life/10, Now: now, Logger: s.log, Bus: s.bus,
		HSM: s.depHSM()})
	s.mail = mail.New(mail.Options{Store: s.store, Policies: s.dep, Directory: s.dir, Audit: s.audit, Log: s.log, Now: now})
	s.files = files.New(files.Options{Store: s.store, Policies: s.dep, Directory: s.dir, Audit: s.audit, Log: s.log, Now: now})
	s.enc = encryption.New(encryption.Options{Store: s.store, Audit: s.audit, Policies: s.dep, Directory: s.dir,
		KeyCacheLifetime: life / 10, Log: s.log, Now: now, Bus: s.bus})
	s.dep.AddScopes(s.mail, s.files, s.enc)
	return nil
}

func portSuffix(port string) string {
	if port == "443" {
		return ""
	}
	return ":" + port
}

func (s *Server) setupTLS(ctx context.Context) error {
	dns := []string{"localhost", "*." + s.cfg.VaultDNSSuffix}
	if h := s.cfg.Host(); h != "" && h != "localhost" && net.ParseIP(h) == nil {
		dns = append(dns, h)
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	if h := s.cfg.Host(); net.ParseIP(h) != nil && !net.ParseIP(h).IsLoopback() {
		ips = append(ips, net.ParseIP(h))
	}
	b, err := pki.LoadOrCreate(ctx, s.store, pki.Options{DNSNames: dns, IPs: ips, Now: time.Now, Rand: rand.Reader})
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.CAFile, b.CAPEM, 0o644); err != nil {
		return fmt.Errorf("writing the CA certificate: %w", err)
	}
	cert := b.Server
	s.tls = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	return nil
}

// bootstrap makes sure the operator tenant, the first-party applications and
// operator.json exist. If operator.json was lost, a new client secret is
// added to the operator's application and the file is written again.
func (s *Server) bootstrap(ctx context.Context) error {
	credPath := filepath.Join(s.cfg.DataDir, config.CredentialsFile)
	op, err := s.dir.OperatorTenant(ctx)
	switch {
	case errors.Is(err, directory.ErrTenantNotFound):
		p, err := s.dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{
			DisplayName: operatorTenantName, Domain: "operator.onmicrosoft.com", Operator: true})
		if err != nil {
			return fmt.Errorf("creating the operator tenant: %w", err)
		}
		if err := s.dir.RegisterFirstPartyApps(ctx, p.Tenant.ID); err != nil {
			return err
		}
		s.log.Info("first start: created the operator tenant", "tenant", p.Tenant.ID, "admin_app", p.AdminApp.AppID)
		return s.writeCredentials(credPath, p.Tenant.ID, p.AdminApp.AppID, p.ClientSecret.Reveal())
	case err != nil:
		return err
	}
	if err := s.dir.RegisterFirstPartyApps(ctx, op.ID); err != nil {
		return err
	}
	if c, err := config.ReadCredentials(credPath); err == nil && c.TenantID == op.ID {
		c.Endpoint, c.CAFile = s.cfg.PublicURL, s.CAFile
		s.Credentials = c
		return config.WriteCredentials(credPath, c)
	}
	apps, err := s.dir.Applications(ctx, directory.System, op.ID)
	if err != nil {
		return err
	}
	for _, a := range apps {
		if a.DisplayName == operatorTenantName+" automation" {
			_, sec, err := s.dir.AddPassword(ctx, directory.System, op.ID, a.AppID, "recreated operator.json", directory.MaxSecretLife)
			if err != nil {
				return err
			}
			s.log.Warn("operator.json was missing or unreadable: issued a new client secret for the operator application", "admin_app", a.AppID)
			return s.writeCredentials(credPath, op.ID, a.AppID, sec.Reveal())
		}
	}
	return errors.New("the operator tenant has no automation application; the data directory is damaged")
}

func (s *Server) writeCredentials(path, tenant, client, secret string) error {
	s.Credentials = config.Credentials{Endpoint: s.cfg.PublicURL, CAFile: s.CAFile, TenantID: tenant, ClientID: client, ClientSecret: secret}
	if err := config.WriteCredentials(path, s.Credentials); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func (s *Server) routes(al *audit.Log) http.Handler {
	mux := http.NewServeMux()
	oauthapi.Register(mux, s.ids, s.log)
	graph.New(graph.Options{Directory: s.dir, Verifier: s.ids, Log: s.log, PublicURL: s.cfg.PublicURL}).Register(mux)
	ckapi.New(ckapi.Options{Directory: s.dir, Audit: al, Verifier: s.ids, Subscriptions: s.res, Onboarding: s.onb, Log: s.log, PublicURL: s.cfg.PublicURL,
		Encryption: s.enc, Policies: s.dep, Mail: s.mail, Files: s.files,
		VaultDNSSuffix: s.cfg.VaultDNSSuffix, VaultResource: s.cfg.VaultResource()}).Register(mux)
	armAPI := arm.New(arm.Options{Verifier: s.ids, RBAC: s.rbac, Roles: s.rbac, Subscriptions: s.res, Vaults: s.kv,
		Log: s.log, PublicURL: s.cfg.PublicURL})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	vaults := akv.New(akv.Options{Verifier: s.ids, RBAC: s.rbac, Keys: keysOf{s.kv}, Audit: s.batch, Log: s.log,
		PublicURL: s.cfg.PublicURL, VaultDNSSuffix: s.cfg.VaultDNSSuffix, VaultResource: s.cfg.VaultResource(),
		RatePerVault: s.cfg.VaultRequestsPerSecond, BurstPerVault: int(s.cfg.VaultRequestsPerSecond)})
	// Vault hosts ({name}.{vault-dns-suffix}) are the key vault data
	// plane. Resource Manager paths are case-insensitive and nest scopes;
	// they go to arm before ServeMux, which would treat them by its own rules.
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := vaults.VaultName(r.Host); ok {
			vaults.ServeHTTP(w, r)
			return
		}
		if arm.Owns(r.URL.Path) {
			armAPI.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
	return httpx.WithRequestID(s.accessLog(root))
}

// accessLog logs one line per request: never the query string, which may
// carry codes, and never a header.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.log.Enabled(r.Context(), slog.LevelDebug) {
			// The line is logged at debug only: below it, do not pay
			// for its clock reads and status recorder on every request.
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "request",
			slog.String("method", r.Method), slog.String("host", r.Host), slog.String("path", r.URL.Path),
			slog.Int("status", sw.status), slog.Duration("duration", time.Since(start)),
			slog.String("request_id", httpx.RequestID(r.Context())))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int)        { w.status = code; w.ResponseWriter.WriteHeader(code) }
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Handler is the server's HTTP handler (without TLS), for tests.
func (s *Server) Handler() http.Handler { return s.h }

// TLSConfig is the server's TLS configuration.
func (s *Server) TLSConfig() *tls.Config { return s.tls }

// Serve serves HTTPS on ln until ctx ends, then shuts down gracefully
// within the configured timeout.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.h,
		TLSConfig:         s.tls,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ConnContext:       identity.WithConnectionMemo,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if s.listen != nil {
		wg.Go(func() {
			if err := s.listen(bg); err != nil {
				s.log.Error("cache invalidation listener stopped", "err", err)
			}
		})
	}
	wg.Go(func() { s.jobs.run(bg, s.background) })
	wg.Go(func() { s.runWorkloads(bg) })
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(tls.NewListener(ln, s.tls)) }()
	s.ready.Store(true)
	s.log.Info("serving", "listen", ln.Addr().String(), "public_url", s.cfg.PublicURL,
		"vault_dns_suffix", s.cfg.VaultDNSSuffix, "data_dir", s.cfg.DataDir)
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
		s.ready.Store(false)
		s.log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		err = srv.Shutdown(sctx)
		cancel()
		if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
			err = e
		}
	}
	stopBG()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// background runs periodic work until ctx ends, on the node that holds the
// jobs lock (see jobs.go).
func (s *Server) background(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if err := s.ids.RotateKeysIfDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("rotating token signing keys", "err", err)
		}
		if err := s.res.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("sweeping subscription, feature and provider states", "err", err)
		}
		if _, err := s.kv.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("purging soft-deleted vaults past their retention", "err", err)
		}
		if _, err := s.kv.SweepKeys(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("purging deleted keys and rotating keys that are due", "err", err)
		}
		if _, err := s.dep.ResumePurges(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("resuming approved data purges", "err", err)
		}
		if _, err := s.mail.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("rewrapping mailbox keys onto their effective policies", "err", err)
		}
		if _, err := s.files.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("rewrapping site keys onto their effective policies", "err", err)
		}
		if n, err := s.ids.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("sweeping expired sign-in state", "err", err)
		} else if n > 0 {
			s.log.Debug("swept expired sign-in state", "records", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runWorkloads serves the workloads' rewrap requests (Kick) until ctx ends.
// It runs on every node: a Kick is made by the node that changed a policy,
// and rewraps are compare-and-set writes that nodes can race on safely.
func (s *Server) runWorkloads(ctx context.Context) {
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{s.mail.Run, s.files.Run, s.enc.Run} {
		wg.Go(func() {
			if err := run(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("workload rewrap loop stopped", "err", err)
			}
		})
	}
	wg.Wait()
}

// Close releases the store. It is safe to call more than once.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if s.dep != nil {
			s.dep.Close()
		}
		if s.batch != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = s.batch.Close(ctx)
			cancel()
		}
		if s.store != nil {
			err = s.store.Close()
		}
		if s.raw != nil {
			err = errors.Join(err, s.raw.Close())
		}
		if s.hsm != nil {
			err = errors.Join(err, s.hsm.Close())
		}
	})
	return err
}

// Run opens the server, listens on cfg.Listen and serves until ctx ends.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	pacing, stopKeeping := heapgoal.Keep(uint64(cfg.HeapHeadroomMiB) << 20)
	defer stopKeeping()
	log.Info("garbage collector", "pacing", pacing)
	s, err := Open(ctx, cfg, log, Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && string(old) == string(data) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+strings.TrimPrefix(filepath.Base(path), ".")+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
