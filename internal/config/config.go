// Package config owns the server's typed configuration: defaults, the YAML
// file (whose keys are the flag names), ${ENV} expansion, and validation
// that reports every problem at once. It imports nothing from this module.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is everything `customerkey serve` needs.
type Config struct {
	// DataDir holds the store, the barrier root key, the CA certificate and
	// operator.json. Created if missing.
	DataDir string `yaml:"data-dir"`
	// Store is "bolt" (the embedded file in DataDir) or a postgres:// URL
	// of a database that several nodes may share. The password belongs in
	// StorePasswordFile or PGPASSWORD, not here.
	Store string `yaml:"store"`
	// StorePasswordFile holds the database password (one line); it wins
	// over PGPASSWORD and a password in the URL.
	StorePasswordFile string `yaml:"store-password-file"`
	// StoreConnectTimeout bounds how long start-up retries a database it
	// cannot reach before giving up.
	StoreConnectTimeout time.Duration `yaml:"store-connect-timeout"`
	// Listen is the TCP address to serve HTTPS on.
	Listen string `yaml:"listen"`
	// PublicURL is how clients reach the server; token issuers and
	// discovery documents use it. Default https://localhost:<listen port>.
	PublicURL string `yaml:"public-url"`
	// VaultDNSSuffix: vault {name} is served at https://{name}.{suffix}:{port}.
	VaultDNSSuffix string `yaml:"vault-dns-suffix"`
	// LogLevel is debug, info, warn or error; LogFormat is text or json.
	LogLevel  string `yaml:"log-level"`
	LogFormat string `yaml:"log-format"`
	// TokenLifetime is how long access tokens live.
	TokenLifetime time.Duration `yaml:"token-lifetime"`
	// SigningKeyRotation is how often token signing keys are replaced.
	SigningKeyRotation time.Duration `yaml:"signing-key-rotation"`
	// ShutdownTimeout bounds the graceful shutdown on SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown-timeout"`
	// FeatureRegistrationDelay is how long registering a subscription
	// feature (the mandatory retention period) stays Registering. Azure
	// says "up to an hour"; the default is a minute.
	FeatureRegistrationDelay time.Duration `yaml:"feature-registration-delay"`
	// VaultRequestsPerSecond throttles each vault's data plane, like
	// Azure's service limits (which allow a few thousand key operations per
	// 10 s); 0 turns throttling off.
	VaultRequestsPerSecond float64 `yaml:"vault-requests-per-second"`
	// Seal is how the barrier's keyring is sealed: SealFile (the root key
	// file barrier.key in DataDir) or SealPKCS11 (a key held in the HSM the
	// hsm- keys name, so that a copy of the data directory reveals
	// nothing). `customerkey seal migrate` moves a store between the two.
	Seal string `yaml:"seal"`
	// HSMModule is the absolute path of the HSM vendor's PKCS#11 library.
	// Setting it lets premium vaults hold RSA-HSM and EC-HSM keys.
	HSMModule string `yaml:"hsm-module"`
	// HSMToken is the label of the token to use.
	HSMToken string `yaml:"hsm-token"`
	// HSMPINFile is a file holding the token's user PIN; empty means the
	// environment variable CUSTOMERKEY_HSM_PIN. The PIN itself is never a
	// configuration value.
	HSMPINFile string `yaml:"hsm-pin-file"`
	// HSMMaxSessions bounds the HSM sessions used at once; 0 picks twice
	// the number of CPUs (at least 4), within what the token admits.
	HSMMaxSessions int `yaml:"hsm-max-sessions"`
	// PolicyKeyCacheLifetime is how long an unwrapped policy key stays in
	// memory before the root keys are asked again. It is the revocation
	// latency: once a customer removes the service's access to both root
	// keys, user requests fail within this time.
	PolicyKeyCacheLifetime time.Duration `yaml:"policy-key-cache-lifetime"`
	// HeapHeadroomMiB is how far the garbage collector lets the heap grow
	// above what its last collection found live (package heapgoal); 0
	// leaves GOGC alone, as does setting GOGC in the environment.
	HeapHeadroomMiB int `yaml:"heap-headroom-mib"`
}

// Default returns the defaults; PublicURL is derived from Listen by Complete.
func Default() Config {
	return Config{
		DataDir:            defaultDataDir(),
		Store:              StoreBolt,
		Seal:               SealFile,
		Listen:             "127.0.0.1:8443",
		VaultDNSSuffix:     "vault.localhost",
		LogLevel:           "info",
		LogFormat:          "text",
		TokenLifetime:      time.Hour,
		SigningKeyRotation: 24 * time.Hour,
		ShutdownTimeout:    15 * time.Second,

		StoreConnectTimeout: 30 * time.Second,

		FeatureRegistrationDelay: time.Minute,
		VaultRequestsPerSecond:   0,
		PolicyKeyCacheLifetime:   10 * time.Minute,
		HeapHeadroomMiB:          64,
	}
}

// Seal values.
const (
	SealFile   = "file"
	SealPKCS11 = "pkcs11"
)

// StoreBolt is the Store value of the embedded file in the data directory.
const StoreBolt = "bolt"

// StoreIsPostgres reports whether Store names a PostgreSQL database.
func (c Config) StoreIsPostgres() bool {
	return strings.HasPrefix(c.Store, "postgres://") || strings.HasPrefix(c.Store, "postgresql://")
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "customerkey")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "customerkey")
	}
	return "customerkey-data"
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// LoadFile merges the YAML file at path over c. Unknown keys are errors,
// and ${NAME} is replaced by the environment variable NAME (an unset one
// is an error, so that a typo does not silently become "").
func (c *Config) LoadFile(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var missing []string
	expanded := envRef.ReplaceAllStringFunc(string(raw), func(m string) string {
		name := envRef.FindStringSubmatch(m)[1]
		v, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return fmt.Errorf("config: %s refers to unset environment variables: %s", path, strings.Join(missing, ", "))
	}
	dec := yaml.NewDecoder(bytes.NewReader([]byte(expanded)))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF: it sets nothing, which is fine.
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	return nil
}

// Complete fills derived defaults and makes paths absolute.
func (c *Config) Complete() error {
	if c.DataDir != "" {
		abs, err := filepath.Abs(c.DataDir)
		if err != nil {
			return fmt.Errorf("config: data-dir: %w", err)
		}
		c.DataDir = abs
	}
	if c.PublicURL == "" {
		if _, port, err := net.SplitHostPort(c.Listen); err == nil {
			c.PublicURL = "https://localhost:" + port
		}
	}
	if c.HSMPINFile != "" {
		abs, err := filepath.Abs(c.HSMPINFile)
		if err != nil {
			return fmt.Errorf("config: hsm-pin-file: %w", err)
		}
		c.HSMPINFile = abs
	}
	if c.StorePasswordFile != "" {
		abs, err := filepath.Abs(c.StorePasswordFile)
		if err != nil {
			return fmt.Errorf("config: store-password-file: %w", err)
		}
		c.StorePasswordFile = abs
	}
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	c.VaultDNSSuffix = strings.ToLower(strings.Trim(c.VaultDNSSuffix, "."))
	return nil
}

var dnsName = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if c.DataDir == "" {
		bad("data-dir", "is required")
	}
	switch {
	case c.Store == StoreBolt:
		if c.StorePasswordFile != "" {
			bad("store-password-file", "is set, but store is %s; it is the password of a postgres:// store", StoreBolt)
		}
	case c.StoreIsPostgres():
		if u, err := url.Parse(c.Store); err != nil || u.Host == "" {
			// The URL may hold a password: never echo it.
			bad("store", "is not a valid URL; use postgres://user@host:port/database?sslmode=verify-full")
		}
	default:
		bad("store", "must be %s or a postgres:// URL", StoreBolt)
	}
	switch c.Seal {
	case SealFile:
	case SealPKCS11:
		if c.HSMModule == "" {
			bad("seal", "is %s, which needs hsm-module, hsm-token and hsm-pin-file (or CUSTOMERKEY_HSM_PIN)", SealPKCS11)
		}
	default:
		bad("seal", "%q must be %s or %s", c.Seal, SealFile, SealPKCS11)
	}
	if c.HSMModule != "" && !filepath.IsAbs(c.HSMModule) {
		bad("hsm-module", "%q must be the absolute path of the PKCS#11 library, such as /usr/lib/softhsm/libsofthsm2.so", c.HSMModule)
	}
	if c.HSMModule != "" && c.HSMToken == "" {
		bad("hsm-token", "is required with hsm-module: the label of the token to use")
	}
	if c.HSMModule == "" && (c.HSMToken != "" || c.HSMPINFile != "") {
		bad("hsm-module", "is required when hsm-token or hsm-pin-file is set")
	}
	if c.HeapHeadroomMiB < 0 || c.HeapHeadroomMiB > 1<<20 {
		bad("heap-headroom-mib", "%d must be between 0 (GOGC alone decides) and 1048576 (1 TiB)", c.HeapHeadroomMiB)
	}
	if c.HSMMaxSessions < 0 {
		bad("hsm-max-sessions", "%d must not be negative", c.HSMMaxSessions)
	}
	if c.StoreConnectTimeout < time.Second || c.StoreConnectTimeout > time.Hour {
		bad("store-connect-timeout", "%s must be between 1s and 1h", c.StoreConnectTimeout)
	}
	if host, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not host:port (for example 127.0.0.1:8443)", c.Listen)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		bad("listen", "port %q is not a number from 0 to 65535", port)
	} else if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		bad("listen", "host %q must be an IP address or localhost", host)
	}
	if u, err := url.Parse(c.PublicURL); err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		bad("public-url", "%q must be an https URL with no path, such as https://localhost:8443", c.PublicURL)
	}
	if !dnsName.MatchString(c.VaultDNSSuffix) {
		bad("vault-dns-suffix", "%q is not a DNS name such as vault.localhost", c.VaultDNSSuffix)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level", "%q must be debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("log-format", "%q must be text or json", c.LogFormat)
	}
	if c.TokenLifetime < 5*time.Minute || c.TokenLifetime > 24*time.Hour {
		bad("token-lifetime", "%s must be between 5m and 24h", c.TokenLifetime)
	}
	if c.SigningKeyRotation < time.Hour {
		bad("signing-key-rotation", "%s must be at least 1h", c.SigningKeyRotation)
	}
	if c.FeatureRegistrationDelay < 0 || c.FeatureRegistrationDelay > 24*time.Hour {
		bad("feature-registration-delay", "%s must be between 0s and 24h", c.FeatureRegistrationDelay)
	}
	if c.VaultRequestsPerSecond < 0 {
		bad("vault-requests-per-second", "%v must not be negative", c.VaultRequestsPerSecond)
	}
	if c.PolicyKeyCacheLifetime < time.Second || c.PolicyKeyCacheLifetime > 24*time.Hour {
		bad("policy-key-cache-lifetime", "%s must be between 1s and 24h", c.PolicyKeyCacheLifetime)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown-timeout", "%s must be positive", c.ShutdownTimeout)
	}
	return errors.Join(errs...)
}

// Port is the port of PublicURL (443 when it names none).
func (c Config) Port() string {
	u, err := url.Parse(c.PublicURL)
	if err != nil || u.Port() == "" {
		return "443"
	}
	return u.Port()
}

// Host is the host name of PublicURL.
func (c Config) Host() string {
	u, err := url.Parse(c.PublicURL)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// VaultResource is the resource the vault challenge names and vault tokens
// carry as audience: https://{vault-dns-suffix}:{port}.
func (c Config) VaultResource() string {
	if p := c.Port(); p != "443" {
		return "https://" + c.VaultDNSSuffix + ":" + p
	}
	return "https://" + c.VaultDNSSuffix
}
