package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/customerkey/customerkey/internal/config"
)

// bindFunc defines a command's configuration flags on f, bound to the
// fields of c and defaulting to their values.
type bindFunc func(f *pflag.FlagSet, c *config.Config)

// bindStore binds the flags that say where the store is and what seals it.
func bindStore(f *pflag.FlagSet, c *config.Config) {
	f.StringVar(&c.DataDir, "data-dir", c.DataDir, "data directory (created if missing)")
	f.StringVar(&c.Store, "store", c.Store, "bolt (the file in --data-dir) or postgres://USER@HOST:PORT/DB?sslmode=… shared by every node")
	f.StringVar(&c.StorePasswordFile, "store-password-file", c.StorePasswordFile, "file whose first line is the database password (else PGPASSWORD)")
	f.StringVar(&c.Seal, "seal", c.Seal, "what seals the store's keyring: file (barrier.key) or pkcs11 (the HSM)")
	f.StringVar(&c.HSMModule, "hsm-module", c.HSMModule, "PKCS#11 library of the HSM (enables RSA-HSM and EC-HSM keys in premium vaults)")
	f.StringVar(&c.HSMToken, "hsm-token", c.HSMToken, "label of the HSM token to use")
	f.StringVar(&c.HSMPINFile, "hsm-pin-file", c.HSMPINFile, "file holding the token's user PIN (mode 0600; default: $CUSTOMERKEY_HSM_PIN)")
	f.IntVar(&c.HSMMaxSessions, "hsm-max-sessions", c.HSMMaxSessions, "HSM sessions used at once (0: twice the CPUs, at least 4)")
}

// bindServe binds every flag of serve.
func bindServe(f *pflag.FlagSet, c *config.Config) {
	bindStore(f, c)
	f.StringVar(&c.Listen, "listen", c.Listen, "address to serve HTTPS on")
	f.StringVar(&c.PublicURL, "public-url", c.PublicURL, "URL clients use (default https://localhost:<listen port>)")
	f.StringVar(&c.VaultDNSSuffix, "vault-dns-suffix", c.VaultDNSSuffix, "vaults are served at https://<name>.<suffix>:<port>")
	f.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	f.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json")
	f.DurationVar(&c.FeatureRegistrationDelay, "feature-registration-delay", c.FeatureRegistrationDelay,
		"how long registering the mandatory retention period takes (Azure: up to an hour)")
	f.DurationVar(&c.PolicyKeyCacheLifetime, "policy-key-cache-lifetime", c.PolicyKeyCacheLifetime,
		"how long an unwrapped policy key is cached; revoking the root keys takes effect within this time")
	f.IntVar(&c.HeapHeadroomMiB, "heap-headroom-mib", c.HeapHeadroomMiB,
		"MiB the heap may grow above the live heap between garbage collections (0, or GOGC in the environment: Go's default pacing)")
}

// configFrom is the configuration a command runs with: the defaults, then
// the YAML file (if any), then every flag given on the command line, which
// wins. set holds the parsed flags; bind is how the command defined them,
// applied again to the merged configuration so that each given flag sets
// the same field it set there.
func configFrom(file string, set *pflag.FlagSet, bind bindFunc) (config.Config, error) {
	merged := config.Default()
	if file != "" {
		if err := merged.LoadFile(file); err != nil {
			return merged, err
		}
	}
	over := pflag.NewFlagSet("overrides", pflag.ContinueOnError)
	bind(over, &merged)
	var err error
	set.Visit(func(f *pflag.Flag) {
		if err == nil && over.Lookup(f.Name) != nil {
			err = over.Set(f.Name, f.Value.String())
		}
	})
	if err != nil {
		return merged, err
	}
	if err := merged.Complete(); err != nil {
		return merged, err
	}
	if err := merged.Validate(); err != nil {
		return merged, fmt.Errorf("configuration:\n%w", err)
	}
	return merged, nil
}
